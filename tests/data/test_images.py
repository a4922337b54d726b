"""Image decoding, letterboxing, transforms, and skipping unreadable files."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from hier.data.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageDataset,
    RandomRotation,
    UnreadableImage,
    border_colour,
    build_transform,
    collate_skipping,
    letterbox,
    load_image,
    rotate,
)

PHYTO = Path(__file__).parents[1] / "data" / "phytoplankton" / "images"


def _save(path: Path, array: np.ndarray, fmt: str | None = None, mode: str | None = None) -> Path:
    Image.fromarray(array, mode).save(path, fmt)
    return path


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares its size but holds no pixel data: all a bomb check may look at."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.fixture
def bad_files(tmp_path) -> list[Path]:
    jpeg = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(jpeg, "JPEG")
    data = jpeg.getvalue()
    files = {"empty.png": b"", "text.jpg": b"this is not an image\n", "truncated.jpg": data[: len(data) // 2],
             "bomb.png": _png_header(30000, 30000)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return [tmp_path / name for name in files]


# ---- decoding ------------------------------------------------------------------------------------


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    image = load_image(_save(tmp_path / "g.png", gray))
    assert image.dtype == torch.uint8 and image.shape == (3, 3, 4)
    assert all(torch.equal(image[c], torch.from_numpy(gray)) for c in range(3))


def test_alpha_sixteen_bit_and_pil_only_formats(tmp_path):
    rgba = np.zeros((5, 6, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    assert load_image(_save(tmp_path / "a.png", rgba))[:, 0, 0].tolist() == [200, 0, 0]
    deep = np.full((4, 4), 65535, dtype=np.uint16)
    assert load_image(_save(tmp_path / "d.png", deep)).unique().tolist() == [255]
    rgb = np.full((7, 3, 3), (10, 20, 30), dtype=np.uint8)
    for suffix in ("tif", "bmp"):
        image = load_image(_save(tmp_path / f"c.{suffix}", rgb))
        assert image.shape == (3, 7, 3) and image[:, 3, 1].tolist() == [10, 20, 30]


def test_real_plankton_jpegs_decode_to_rgb(tmp_path):
    for path in sorted(PHYTO.glob("*/*.jpg")):
        image = load_image(path)
        with Image.open(path) as pil:
            assert image.shape == (3, pil.height, pil.width)


@pytest.mark.parametrize("name, reason", [("empty.png", "empty file"), ("text.jpg", "not an image file"),
                                          ("truncated.jpg", "corrupt image"), ("bomb.png", "over the limit")])
def test_unreadable_files_raise_unreadable_image(bad_files, name, reason):
    path = next(p for p in bad_files if p.name == name)
    with pytest.raises(UnreadableImage, match=reason):
        load_image(path)


def test_decompression_bomb_is_refused_from_its_header_quickly(tmp_path):
    (tmp_path / "bomb.png").write_bytes(_png_header(30000, 30000))
    started = time.perf_counter()
    with pytest.raises(UnreadableImage, match="over the limit of 64,000,000 pixels"):
        load_image(tmp_path / "bomb.png")
    assert time.perf_counter() - started < 0.5
    (tmp_path / "big.png").write_bytes(_png_header(200, 200))
    with pytest.raises(UnreadableImage, match="200 x 200"):
        load_image(tmp_path / "big.png", max_pixels=30_000)


# ---- letterbox and transforms ------------------------------------------------------------------------


def test_border_colour_is_the_median_of_the_border():
    image = torch.full((3, 4, 5), 9, dtype=torch.uint8)
    image[:, 1:3, 1:4] = 200  # interior
    image[0, 0, 0] = 100     # one odd border pixel does not move the median
    assert border_colour(image) == [9.0, 9.0, 9.0]


def test_letterbox_keeps_the_aspect_and_pads_with_the_border_colour():
    image = torch.full((3, 10, 20), 50, dtype=torch.uint8)
    image[:, 3:7, 5:15] = 250
    out = letterbox(image, 32)
    assert out.shape == (3, 32, 32)
    assert (out[:, :8] == 50).all() and (out[:, 24:] == 50).all()  # 20x10 -> 32x16, 8 rows of padding each side
    assert out[:, 16, 16].tolist() == [250, 250, 250]


def test_keep_size_never_enlarges_and_shrinks_what_is_too_big():
    small = torch.full((3, 10, 20), 7, dtype=torch.uint8)
    small[:, 2, 3] = 255
    out = letterbox(small, 32, keep_size=True)
    assert out.shape == (3, 32, 32)
    assert torch.equal(out[:, 11:21, 6:26], small)  # the 20x10 image, unscaled and centred
    big = torch.zeros((3, 50, 100), dtype=torch.uint8)
    assert letterbox(big, 32, keep_size=True).shape == (3, 32, 32)
    assert letterbox(big, 32, keep_size=False).shape == (3, 32, 32)


def test_eval_transform_letterboxes_and_normalises():
    transform = build_transform(16, train=False)
    out = transform(torch.full((3, 40, 10), 255, dtype=torch.uint8))
    assert out.dtype == torch.float32 and out.shape == (3, 16, 16)
    expected = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(out[:, 8, 8], expected)


def test_train_transform_rotates_and_flips_but_keeps_the_background():
    torch.manual_seed(0)
    transform = build_transform(24, train=True, mean=(0, 0, 0), std=(1, 1, 1))
    image = torch.full((3, 30, 12), 120, dtype=torch.uint8)
    image[:, 10:20, 4:8] = 10
    outputs = torch.stack([transform(image) for _ in range(8)])
    assert outputs.shape == (8, 3, 24, 24)
    assert torch.allclose(outputs[:, :, 0, 0], torch.tensor(120 / 255))  # rotated corners: the border colour
    assert not all(torch.equal(outputs[0], o) for o in outputs[1:])


def test_random_rotation_of_a_uniform_image_stays_uniform_even_at_the_edges():
    torch.manual_seed(1)
    image = torch.full((3, 9, 9), 77, dtype=torch.uint8)
    for _ in range(5):
        assert (RandomRotation(180)(image) == 77).all()


def test_rotate_by_a_right_angle_moves_the_pixels_and_zero_keeps_them():
    image = torch.full((3, 5, 5), 20, dtype=torch.uint8)
    image[:, 0, 2] = 220  # top middle
    turned = rotate(image, 90)  # counter-clockwise: top middle -> left middle
    assert turned[:, 2, 0].tolist() == [220] * 3 and (turned == 220).sum() == 3
    assert torch.equal(rotate(image, 0), image)


# ---- the dataset -------------------------------------------------------------------------------------


def _good_files(tmp_path: Path, count: int) -> list[Path]:
    return [_save(tmp_path / f"good{k}.png", np.full((6 + k, 9, 3), 30 * k, dtype=np.uint8)) for k in range(count)]


@pytest.mark.parametrize("workers", [0, 2])
def test_unreadable_images_are_skipped_and_counted_never_fatal(tmp_path, bad_files, workers):
    paths = _good_files(tmp_path, 5) + bad_files
    dataset = ImageDataset(paths, list(range(len(paths))), build_transform(8, train=False), return_index=True)
    loader = DataLoader(dataset, batch_size=3, num_workers=workers, collate_fn=collate_skipping)
    for _epoch in range(2):  # the second epoch skips the files already known unreadable
        batches = [b for b in loader if b is not None]
        images = torch.cat([b[0] for b in batches])
        indices = torch.cat([b[2] for b in batches])
        assert images.shape == (5, 3, 8, 8)
        assert indices.tolist() == [0, 1, 2, 3, 4]
        assert torch.equal(torch.cat([b[1] for b in batches]), indices)  # targets travel with their images
    assert dataset.skipped == 4
    assert sorted(dataset.skipped_paths) == sorted(bad_files)
    with pytest.warns(UserWarning, match=r"4 of 9 images could not be read and were skipped: .*empty.png"):
        assert dataset.warn_skipped() == 4


def test_a_batch_of_only_unreadable_images_collates_to_none(bad_files):
    dataset = ImageDataset(bad_files, [0] * len(bad_files))
    assert collate_skipping([dataset[i] for i in range(len(dataset))]) is None
    assert dataset.skipped == len(bad_files)


def test_samples_without_targets_and_real_images(tmp_path):
    from hier.data.readers import read_dataset

    samples = read_dataset(PHYTO).samples
    dataset = ImageDataset(samples, transform=build_transform(32, train=False))
    images, target = collate_skipping([dataset[i] for i in range(len(dataset))])
    assert images.shape == (25, 3, 32, 32) and (target == -1).all() and dataset.skipped == 0
    with pytest.raises(ValueError, match="2 targets for 25 samples"):
        ImageDataset(samples, [0, 1])
