"""Built-in heads (registered as the plugin ``hier.heads.plugin``), one per file, each with its default config.

classifier, arcface, spheremulti, spheremultihier, arcface-multihead. Build them through
``hier.plugins.create_head``; the contract is in ``hier.heads.base``, the cosine heads' base in
``hier.heads.cosine``. Importing this package does not import torch.
"""
