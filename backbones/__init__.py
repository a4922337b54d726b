"""Built-in backbones (registered as the plugin ``hier.backbones.plugin``), their weights, and the device they run on.

EfficientNet-Lite0 (the default; weights installed with pip), a small CNN, torchvision and timm models.
Build them through ``hier.plugins.create_backbone``. Importing this package does not import torch.
"""
