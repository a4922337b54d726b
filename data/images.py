"""Images: safe decoding, letterboxing, train/eval transforms, and a dataset that skips bad files.

Every image becomes a 3-channel tensor (grayscale is repeated, alpha dropped). Plankton
images range from a few dozen to thousands of pixels and are cropped to the object, so they
are letterboxed (aspect kept, padded with the image's own background) rather than stretched.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import default_collate
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as F

from hier.core.errors import InputError
from hier.core.files import read_regular_file

# 64 megapixels (8000 x 8000) is far above any plankton or ImageNet image and far below what
# would exhaust memory; larger headers are refused before any pixel is decoded.
MAX_PIXELS = 64_000_000
# No image file hier reads is larger; the bytes are read once, so this bounds the memory a file costs.
MAX_FILE_BYTES = 256 * 2**20
# PIL modes of more than 8 bits per pixel (16-bit and 32-bit integers, floats): scaled to 8 bits, not clipped.
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
# How image files begin: a file that starts like one but will not open is named as a damaged one.
MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"GIF8": "GIF", b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# What a backbone without its own preprocessing gets (torchvision's ImageNet recipe).
IMAGENET_PREPROCESS = {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "interpolation": "bilinear"}


class UnreadableImage(InputError):
    """An image file that cannot be decoded: missing, corrupt, truncated, not an image, or too large."""


def load_image(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """Decode an image file to a uint8 tensor [3, H, W], at a bounded cost.

    Only a regular file of at most MAX_FILE_BYTES is read (a FIFO or a link to /dev/zero is refused unread).
    The header is read first (PIL, no pixels decoded) to refuse decompression bombs: an animation's screen
    counts against ``max_pixels``, and only its first frame is decoded. JPEG and PNG (an APNG's default
    image) are decoded by torchvision, the rest by PIL; every format is turned upright by its EXIF
    orientation. Raises UnreadableImage for any file that does not give an image.
    """
    data = read_regular_file(path, MAX_FILE_BYTES, error=UnreadableImage)
    if not data:
        raise UnreadableImage("empty file", path=path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the pixel cap below decides
            header = Image.open(io.BytesIO(data))
        width, height = header.size
    except Image.DecompressionBombError:  # over PIL's own limit, which is above ours
        raise UnreadableImage(_too_large("the image", max_pixels), path=path) from None
    except Exception as e:  # PIL raises many types for a file that is not an image
        kind = next((name for magic, name in MAGIC.items() if data.startswith(magic)), None)
        problem = f"truncated or damaged {kind} file ({_reason(e)})" if kind else "not an image file (unknown format)"
        raise UnreadableImage(problem, path=path) from None
    if width * height > max_pixels:
        raise UnreadableImage(_too_large(f"{width} x {height} pixels", max_pixels), path=path)
    try:
        if header.format in ("JPEG", "PNG"):
            with warnings.catch_warnings():
                # torchvision 0.29 deprecates these decoders for TorchCodec (not a dependency); the pinned one has them
                warnings.simplefilter("ignore", DeprecationWarning)
                image = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB,
                                     apply_exif_orientation=True)
        else:
            image = _first_frame(header)
    except Exception as e:
        raise UnreadableImage(f"corrupt image ({_reason(e)})", path=path) from None
    if image.dtype != torch.uint8:  # 16-bit PNG
        image = F.to_dtype(image, torch.uint8, scale=True)
    return image


def _first_frame(image: Image.Image) -> torch.Tensor:
    """PIL's first frame only (GIF, WebP, TIFF, BMP), upright, with wide pixel values scaled to 8 bits."""
    image.seek(0)
    image = ImageOps.exif_transpose(image)
    if image.mode not in WIDE_MODES:
        return F.pil_to_tensor(image.convert("RGB"))
    values = np.asarray(image, dtype=np.float32)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if image.mode == "F" and 0 <= low and high <= 1:  # floats in [0, 1], as scientific cameras write them
        low, high = 0.0, 1.0
    elif image.mode != "F" and 0 <= low and high <= 65535:  # 16-bit values (PIL reads some as 32-bit "I")
        low, high = 0.0, 65535.0
    scaled = (values - low) * (255 / max(high - low, 1e-12))  # else the image's own range
    gray = torch.from_numpy(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
    return gray.expand(3, *gray.shape).clone()


def _too_large(what: str, max_pixels: int) -> str:
    return f"{what} is over the limit of {max_pixels:,} pixels (a decompression bomb, or an image to downscale first)"


def _reason(error: Exception) -> str:
    """The useful last line of a decoder message (torchvision's start with a C++ source location)."""
    return str(error).strip().splitlines()[-1].split(", ")[-1] if str(error).strip() else type(error).__name__


def border_colour(image: torch.Tensor) -> list[float]:
    """Per-channel median of the one-pixel border: the background of a plankton crop."""
    border = torch.cat([image[:, 0, :], image[:, -1, :], image[:, :, 0], image[:, :, -1]], dim=1)
    return border.float().median(dim=1).values.tolist()


def letterbox(image: torch.Tensor, size: int, *, keep_size: bool = False,
              interpolation: InterpolationMode = InterpolationMode.BILINEAR) -> torch.Tensor:
    """Resize so the longer side is ``size``, keeping the aspect; centre on a square of the border colour.

    With ``keep_size`` images are only ever shrunk: one smaller than ``size`` keeps its pixel
    size and is padded, so the network sees how big the object is (the size of plankton is a
    taxonomic trait); images larger than ``size`` are shrunk to fit, and their size saturates.
    """
    height, width = image.shape[-2:]
    scale = size / max(height, width)
    if keep_size:
        scale = min(scale, 1.0)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    if (new_h, new_w) != (height, width):
        image = F.resize(image, [new_h, new_w], interpolation=interpolation, antialias=True)
    left, top = (size - new_w) // 2, (size - new_h) // 2
    padding = [left, top, size - new_w - left, size - new_h - top]
    if not any(padding):
        return image
    return F.pad(image, padding, fill=border_colour(image))


class Letterbox(torch.nn.Module):
    def __init__(self, size: int, *, keep_size: bool = False, interpolation: str = "bilinear"):
        super().__init__()
        self.size, self.keep_size, self.interpolation = size, keep_size, InterpolationMode(interpolation)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return letterbox(image, self.size, keep_size=self.keep_size, interpolation=self.interpolation)


def rotate(image: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate counter-clockwise by ``angle`` degrees about the centre, corners filled with the border colour.

    Rotating (image - background) with zero padding, then adding the background back, blends
    the edges exactly; torchvision's bilinear ``fill`` darkens them (it weights by the mask twice).
    """
    background = torch.tensor(border_colour(image)).view(-1, 1, 1)
    rotated = F.rotate(image.float() - background, angle, interpolation=InterpolationMode.BILINEAR)
    return (rotated + background).round_().clamp_(0, 255).to(image.dtype)


class RandomRotation(torch.nn.Module):
    """Rotate by a uniform angle in [-degrees, degrees] (see :func:`rotate`).

    A letterboxed object fits the inscribed circle when it is thin, so little of it leaves the
    square; any angle is fair for plankton, which has no up or down.
    """

    def __init__(self, degrees: float = 180.0):
        super().__init__()
        self.degrees = degrees

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return rotate(image, float(torch.empty(()).uniform_(-self.degrees, self.degrees)))


def build_transform(image_size: int, *, train: bool, keep_size: bool = False, mean: Sequence[float] = IMAGENET_MEAN,
                    std: Sequence[float] = IMAGENET_STD, interpolation: str = "bilinear") -> v2.Compose:
    """uint8 [3, H, W] -> normalised float [3, image_size, image_size].

    Train adds horizontal and vertical flips and a rotation by any angle (plankton has no up
    or down); eval only letterboxes and normalises. The mean and std default to ImageNet's,
    which pretrained backbones expect.
    """
    steps = [Letterbox(image_size, keep_size=keep_size, interpolation=interpolation)]
    if train:
        steps += [v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(), RandomRotation(180.0)]
    steps.append(Normalized(mean, std))
    return v2.Compose(steps)


class Normalized(torch.nn.Module):
    """uint8 -> float in [0, 1] -> (x - mean) / std, in place on one new tensor: the values of ToDtype and
    Normalize, with a quarter less of the preprocessing's time (one allocation instead of three)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image.to(torch.float32).div_(255).sub_(self.mean).div_(self.std)


class ImageDataset(torch.utils.data.Dataset):
    """Images and their targets (node indices); unreadable images give None, which the collate drops.

    Unreadable samples are marked in a shared-memory flag per sample, so the count is right with
    DataLoader workers too, and a bad file is not read again in later epochs. Items are
    ``(image, target)``, or ``(image, target, index)`` with ``return_index`` (to line results
    up with samples when some are skipped). Without targets the target is -1.
    """

    def __init__(self, samples: Sequence, targets: Sequence[int] | None = None, transform=None, *,
                 max_pixels: int = MAX_PIXELS, return_index: bool = False):
        self.paths = [Path(getattr(s, "path", s)) for s in samples]
        if targets is not None and len(targets) != len(self.paths):
            raise ValueError(f"{len(targets)} targets for {len(self.paths)} samples")
        self.targets = torch.as_tensor(targets if targets is not None else [-1] * len(self.paths), dtype=torch.long)
        self.transform = transform
        self.max_pixels = max_pixels
        self.return_index = return_index
        self._unreadable = torch.zeros(len(self.paths), dtype=torch.bool).share_memory_()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        if self._unreadable[index]:
            return None
        try:
            image = load_image(self.paths[index], max_pixels=self.max_pixels)
        except UnreadableImage:
            self._unreadable[index] = True
            return None
        if self.transform is not None:
            image = self.transform(image)
        target = int(self.targets[index])
        return (image, target, index) if self.return_index else (image, target)

    @property
    def skipped(self) -> int:
        """Number of distinct samples found unreadable so far."""
        return int(self._unreadable.sum())

    @property
    def skipped_paths(self) -> list[Path]:
        return [self.paths[i] for i in self._unreadable.nonzero().flatten().tolist()]

    def warn_skipped(self) -> int:
        """Warn once with the count and the first few unreadable files; returns the count."""
        paths = self.skipped_paths
        if paths:
            shown = ", ".join(str(p) for p in paths[:5])
            warnings.warn(f"{len(paths)} of {len(self)} images could not be read and were skipped: {shown}"
                          + (", ..." if len(paths) > 5 else ""), stacklevel=2)
        return len(paths)


def image_transform(config: dict, *, train: bool = False):
    """What a run's images go through, from its config: letterbox to ``image_size``, augment when training,
    normalise with the run's mean and std (ImageNet's, bilinear, where the run names none)."""
    own = {**IMAGENET_PREPROCESS, **{k: config[k] for k in IMAGENET_PREPROCESS if config.get(k) is not None}}
    return build_transform(config["image_size"], train=train and config["augment"], keep_size=config["keep_size"],
                           mean=own["mean"], std=own["std"], interpolation=own["interpolation"])


def loader_workers(requested: int | None) -> int:
    """DataLoader worker processes: as asked, else one per CPU this process may use, up to 8.

    Decoding and letterboxing in workers overlap the forward pass; in the main process they cost a
    quarter of a frozen EfficientNet-Lite0's feature pass on 2 cores (docs/BENCHMARKS.md).
    """
    if requested is not None:
        return requested
    return min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def collate_skipping(batch: list):
    """``default_collate`` of the readable items; None when no item of the batch could be read."""
    items = [item for item in batch if item is not None]
    return default_collate(items) if items else None
