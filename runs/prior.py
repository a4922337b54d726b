"""The class prior: which mix of classes a run's node probabilities are for, and logit adjustment in training.

A softmax trained on a long-tailed set learns its class prior pi: p(y|x) is proportional to p_bal(y|x) pi_y.
Logit adjustment (Menon et al. 2021, the logit-adjusted loss; Ren et al. 2020's balanced softmax is the same
loss at tau = 1) trains on ``scores + tau log pi``, so that the raw scores estimate the balanced posterior.
Any prior q is then put back by Bayes' rule for a change of class mix (Saerens et al. 2002): the scores plus
``log q - (1 - tau) log pi`` (tau = 0 without logit adjustment: the scores carry pi, which is taken off first).
Per-level softmaxes (score space "level") take the same shift per level with each level's class proportions;
per-node sigmoids (score space "node") in log-odds of each node's proportion, ``logit q_n - (1 - tau) logit
pi_n`` (the per-node logit adjustment). A head says which applies by its ``prior_link`` (``hier.heads.base``).

The shift is added after the temperature (``HierNet.node_probabilities`` gets ``scores / T``): T tempers what
the network learned; the prior is not learned. The training counts (images per labelled node in the training
part) and a prior file's proportions are kept in the run (``prior.json``), so the shift is computed again
wherever the run is loaded. ``long_tail: none`` with ``prior: train`` shifts nothing: runs behave as before.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hier.core.errors import InputError
from hier.losses.logit_adjusted import LogitAdjusted
from hier.taxo import Taxonomy
from hier.tree import TreeTensors

from .layout import PRIOR, read_prior
from .proportions import leaf_proportions, read_proportions

LINKS = ("log", "log_odds")
PSEUDO_COUNT = 1.0  # per leaf (Laplace): a leaf without training images keeps a finite log-prior
EPS = 1e-12  # keeps the log-odds of a certain node (the root, a single child) finite


def tau(config: dict) -> float:
    """How much of the training prior the loss took off the scores: long_tail_tau with logit_adjust, else 0."""
    return config["long_tail_tau"] if config["long_tail"] == "logit_adjust" else 0.0


def shifts(config: dict) -> bool:
    """Whether the config moves a head's scores at all (in training or at inference)."""
    return config["long_tail"] != "none" or config["prior"] != "train"


def prior_link(head) -> str:
    """The head's ``prior_link``; a head without one cannot take long_tail or a prior: an input error."""
    link = getattr(head, "prior_link", None)
    if link not in LINKS:
        raise InputError(f"the {head.name!r} head does not say how a class prior moves its scores (prior_link "
                         f"{link!r}); keep long_tail: none and prior: train with it", where="prior")
    return link


def train_counts(train_targets: torch.Tensor, taxonomy: Taxonomy) -> dict[str, int]:
    """The training images per labelled node, by node id."""
    counts = torch.bincount(train_targets, minlength=len(taxonomy)).tolist()
    return {taxonomy.ids[i]: n for i, n in enumerate(counts) if n}


def prior_record(train_targets: torch.Tensor, taxonomy: Taxonomy, config: dict) -> dict:
    """What ``prior.json`` keeps: the training counts, and a prior file's leaf proportions (read now, so that
    a bad file fails before any work and the run no longer needs it)."""
    record = {"train_counts": train_counts(train_targets, taxonomy), "proportions": None}
    if config["prior"] not in ("train", "uniform"):
        path = config["prior"]
        q = leaf_proportions(read_proportions(path, taxonomy), taxonomy, path)
        record["proportions"] = {taxonomy.ids[int(leaf)]: p for leaf, p in zip(taxonomy.leaves, q)}
    return record


def train_proportions(counts: dict[str, float], taxonomy: Taxonomy, tree: TreeTensors, config: dict) -> torch.Tensor:
    """Leaf proportions [num_leaves] (float64) of the mix the head was trained on: the counts (with
    ``balanced_sampler``, every class drawn equally often), an image labelled at an inner node spread evenly
    over the leaves under it (its label says no more), plus PSEUDO_COUNT per leaf."""
    nodes = torch.tensor([taxonomy.index(node) for node in counts], dtype=torch.long)
    values = torch.tensor(list(counts.values()), dtype=torch.float64)
    if config["balanced_sampler"]:
        values = torch.full_like(values, values.sum().item() / len(values))
    spread = tree.spread_to_leaves(nodes[None], (values / tree.leaves_under[nodes])[None])[0]
    return (spread + PSEUDO_COUNT) / (spread + PSEUDO_COUNT).sum()


def in_space(tree: TreeTensors, leaf_q: torch.Tensor, space: str) -> torch.Tensor:
    """Each column's proportion in a score space, from leaf proportions: the leaf's own, the sum under a node,
    or per level the sum over the leaves each class holds."""
    if space == "leaf":
        return leaf_q
    if space == "node":
        return tree.sum_up(leaf_q[None])[0]
    columns = tree.leaf_level_columns  # [leaves, depth]: each leaf's class at every level
    return leaf_q.new_zeros(tree.width("level")).index_add_(0, columns.flatten(),
                                                            leaf_q.repeat_interleave(columns.shape[1]))


def linked(head, leaf_q: torch.Tensor) -> torch.Tensor:
    """Leaf proportions in the head's score space, through its link: log, or log-odds (root column 0)."""
    p = in_space(head.tree, leaf_q.to(head.tree.leaves_under.device), head.score_space)
    if prior_link(head) == "log":
        return p.log()
    p = p.clamp(EPS, 1 - EPS)
    out = p.log() - (-p).log1p()
    if head.score_space == "node":
        out[head.tree.root] = 0.0  # the root is certain, whatever the mix
    return out


def adjusted_loss(loss, head, taxonomy: Taxonomy, train_targets: torch.Tensor, config: dict):
    """The loss on logit-adjusted scores (``long_tail: logit_adjust``), else the loss itself."""
    if config["long_tail"] == "none":
        return loss
    pi = train_proportions(train_counts(train_targets, taxonomy), taxonomy, head.tree, config)
    return LogitAdjusted(loss, (tau(config) * linked(head, pi)).float())


def prior_shift(run_dir: Path, head, taxonomy: Taxonomy, config: dict) -> torch.Tensor | None:
    """What to add to the head's tempered scores so that its probabilities are for the run's prior; None when
    nothing moves (long_tail none, prior train)."""
    if not shifts(config):
        return None
    prior_link(head)
    record = read_prior(run_dir)
    if record is None:
        raise InputError(f"no {PRIOR}, which long_tail and prior need (the training class counts); fit the run "
                         "again", path=run_dir)
    path = Path(run_dir) / PRIOR
    if config["prior"] not in ("train", "uniform") and record["proportions"] is None:
        raise InputError(f"holds no proportions for the prior {config['prior']!r}; the run is damaged", path=path)
    try:
        pi = train_proportions(record["train_counts"], taxonomy, head.tree, config)
        if config["prior"] == "train":
            q = pi
        elif config["prior"] == "uniform":
            q = torch.full_like(pi, 1 / len(pi))
        else:
            q = torch.tensor([record["proportions"][taxonomy.ids[int(leaf)]] for leaf in taxonomy.leaves],
                             dtype=torch.float64)
    except KeyError as e:
        raise InputError(f"does not fit the run's taxonomy ({e.args[0]}); the run is damaged", path=path) from None
    return (linked(head, q) - (1 - tau(config)) * linked(head, pi)).float()
