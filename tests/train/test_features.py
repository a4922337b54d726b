"""The feature pass streamed to chunk files: the features of the in-memory pass (in half precision), read back
through memory maps, and a changed or missing chunk recomputed alone."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from hier.core.progress import Progress
from hier.data.images import ImageDataset, image_transform
from hier.runs.model import build_model
from hier.train import features as cache

PLANKTON = sorted((Path(__file__).parents[1] / "data" / "phytoplankton").rglob("*.jpg"))[:6]


def chunk_files(run_dir: Path) -> dict[str, int]:
    """Chunk file name -> inode: a chunk written again gets a new inode (an atomic rename)."""
    return {p.name: p.stat().st_ino for p in sorted(run_dir.glob("cache/features-train-*/*.pt"))}


def test_chunks_hold_the_features_and_only_what_changed_is_computed_again(taxonomy, tiny_config, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr(cache, "CHUNK_BATCHES", 1)  # chunks of one batch: two images
    config = tiny_config("feature_cache=file", "views=8", runtime="torch", batch_size=2)
    model, _ = build_model(config, taxonomy)
    paths = [Path(shutil.copy(p, tmp_path / f"{k}.jpg")) for k, p in enumerate(PLANKTON)]
    images = ImageDataset(paths, [2, 3, 4, 2, 3, 4], image_transform(config))
    run_dir = tmp_path / "run"

    def streamed():
        return cache.cached_features(model.backbone, images, config, torch.device("cpu"), run_dir,
                                     Progress(enabled=False), "train")

    features, targets = streamed()
    in_memory, _ = cache.compute_features(model.backbone, images, config, torch.device("cpu"),
                                          Progress(enabled=False), "t", views=8)
    rows = torch.arange(6)
    assert features[rows].dtype == torch.float32 and features[rows].shape == in_memory.shape == (6, 8, 16)
    assert torch.allclose(features[rows], in_memory, rtol=1e-3, atol=1e-3)  # half precision, kept on disk
    assert torch.equal(features[torch.tensor([5, 0, 3])], features[rows][[5, 0, 3]])  # rows gathered across chunks
    assert targets.tolist() == [2, 3, 4, 2, 3, 4]
    first = chunk_files(run_dir)
    assert len(first) == 3

    names = list(first)
    os.utime(paths[2], ns=(0, 0))  # an image of the second chunk changed
    (next(run_dir.glob("cache/features-train-*")) / names[0]).unlink()  # the first chunk lost (never finished)
    again, _ = streamed()
    now = chunk_files(run_dir)
    assert list(now)[0] == names[0] and list(now)[2] == names[2]  # the same images: the same names
    assert list(now)[1] != names[1] and len(now) == 3  # the changed image's chunk: a new one, the old removed
    assert now[names[2]] == first[names[2]]  # the untouched chunk was not written again
    assert torch.allclose(again[rows], features[rows])


def test_features_beyond_half_precision_stay_float32_and_a_chunk_of_both_is_float32():
    small, huge = torch.full((2, 3), 5.0), torch.full((2, 3), 1e6)  # float16 ends at 65,504
    assert cache._half(small).dtype == torch.float16 and cache._half(huge).dtype == torch.float32
    chunk = torch.cat([cache._half(small), cache._half(huge)])
    assert chunk.dtype == torch.float32 and chunk[2:].eq(1e6).all()
