"""Built-in heads and losses (registered as the plugin ``hier.heads.plugin``).

Heads: classifier, arcface, spheremulti, spheremultihier, arcface-multihead; losses: ce, bce, focal,
asl, hbce, hxe, soft-labels. Build them through ``hier.plugins.create_head`` / ``create_loss``; the
contract is in ``hier.heads.base``, the cosine heads' base in ``hier.heads.cosine`` and the tree tensors
they all share in ``hier.heads.tree``.
Importing this package does not import torch.
"""
