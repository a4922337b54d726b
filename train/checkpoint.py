"""The run's checkpoints: ``last.pt`` (everything a resume needs), ``best.pt``, and the final weights."""

from __future__ import annotations

import torch

from hier import runs
from hier.train.epoch import TrainState
from hier.train.features import remove_streamed


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save_last(state: TrainState) -> None:
    """``checkpoints/last.pt`` after ``state.epoch`` finished epochs: a killed run resumes from here."""
    runs.save_checkpoint(state.run_dir / runs.LAST, {
        "epoch": state.epoch, "model": state.model.state_dict(), "loss": state.loss_fn.state_dict(),
        "optimizer": state.optimizer.state_dict(), "scheduler": state.schedule.state_dict(), "rng": rng_state(),
        "history": state.history, "best": state.best, "taxonomy_ids": list(state.taxonomy.ids),
        "head": state.config["head"],
    })


def save_best(state: TrainState) -> None:
    runs.save_checkpoint(state.run_dir / runs.BEST, {"epoch": state.best["epoch"], "model": state.model.state_dict(),
                                                     "best": state.best})


def restore(state: TrainState, checkpoint: dict) -> None:
    """Continue where ``checkpoint`` (a ``last.pt``) left off: weights, optimizer, schedule, random state, history."""
    state.model.load_state_dict(checkpoint["model"])
    state.loss_fn.load_state_dict(checkpoint["loss"])
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    state.schedule.load_state_dict(checkpoint["scheduler"])
    torch.set_rng_state(checkpoint["rng"]["torch"])
    if "cuda" in checkpoint["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(checkpoint["rng"]["cuda"])
    state.history, state.best, state.epoch = checkpoint["history"], checkpoint["best"], checkpoint["epoch"]


def finish(state: TrainState) -> None:
    """Final weights: those of the best epoch (what predict and evaluate use); the features streamed for training
    only (``feature_cache: auto``) removed."""
    if state.best is not None and (state.run_dir / runs.BEST).exists():
        state.model.load_state_dict(runs.load_checkpoint(state.run_dir / runs.BEST)["model"])
    runs.save_weights(state.run_dir, state.model, state.config)
    remove_streamed(state.run_dir, state.config)
