"""Built-in losses (registered as the plugin ``hier.losses.plugin``), one per file.

ce, bce, focal, asl, hbce, hxe, soft-labels. Build them through ``hier.plugins.create_loss``; the contract
is in ``hier.losses.base``. Importing this package does not import torch.
"""
