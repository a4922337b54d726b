"""Images cost what their bounds say (issue 28, class 2): an animation's first frame only, against the cap
on its screen; only regular files, read up to a byte cap; wide TIFFs scaled; every format upright."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from hier.data.images import UnreadableImage, load_image


def animated_gif(path, screen: int, frames: int = 16):
    """A few hundred bytes: one-pixel frames on a large logical screen (written by hand: PIL merges them)."""
    head = b"GIF89a" + screen.to_bytes(2, "little") * 2 + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
    control = b"\x21\xf9\x04\x04\x0a\x00\x00\x00"  # 0.1 s, then leave the frame in place
    pixel = b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00" + b"\x02\x02\x44\x01\x00"  # 1 x 1 at (0, 0), colour 0
    path.write_bytes(head + (control + pixel) * frames + b"\x3b")
    assert Image.open(path).n_frames == frames
    return path


MEASURE = textwrap.dedent("""
    import resource, sys
    from hier.data.images import load_image
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    image = load_image(sys.argv[1])
    print(tuple(image.shape), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
""")


def test_an_animation_decodes_its_first_frame_only(tmp_path):
    gif = animated_gif(tmp_path / "a.gif", 4000)
    assert gif.stat().st_size < 1000
    done = subprocess.run([sys.executable, "-c", MEASURE, str(gif)], check=False, capture_output=True, text=True, timeout=300)
    shape, megabytes = done.stdout.split(")")
    assert shape == "(3, 4000, 4000" and int(megabytes) < 400, done.stdout + done.stderr  # 16 frames: over 750


def test_an_animations_screen_counts_against_the_cap(tmp_path):
    with pytest.raises(UnreadableImage, match="4000 x 4000 pixels is over the limit"):
        load_image(animated_gif(tmp_path / "a.gif", 4000), max_pixels=1_000_000)


def test_only_regular_files_are_read(tmp_path):
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "pipe.jpg")  # reading it would wait for a writer for ever
    for name in ("zero.jpg", "pipe.jpg"):
        with pytest.raises(UnreadableImage, match="not a regular file"):
            load_image(tmp_path / name)


def test_a_file_over_the_byte_cap_is_refused_unread(tmp_path, monkeypatch):
    from hier.data import images

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 1000)
    with pytest.raises(UnreadableImage, match="over the limit of 1,000"):
        load_image(tmp_path / "a.png")


def test_unreadable_files_in_a_folder_are_rows_of_predictions(trained, run_cli, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "zero.jpg").symlink_to("/dev/zero")
    animated_gif(folder / "screen.gif", 9000)
    good = next((trained.data / "test").rglob("*.png"))
    (folder / "good.png").write_bytes(good.read_bytes())
    code, _, err = run_cli("predict", trained.runs["classifier"], folder,
                           "--confidence", "0.5", "-o", tmp_path / "p.csv")
    assert code == 0, err
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert any("zero.jpg" in r and "not a regular file" in r for r in rows), rows
    assert any("screen.gif" in r and "over the limit" in r for r in rows), rows
    assert any("good.png" in r and r.split(",")[1] for r in rows), rows


@pytest.mark.parametrize("mode, values, expected", [
    ("I;16", np.full((8, 8), 32768, np.uint16), 128),  # 16-bit: half of 65535, not saturated at 255
    ("F", np.full((8, 8), 0.5, np.float32), 128),  # floats in [0, 1]: half, not black
    ("F", np.linspace(-3, 5, 64, dtype=np.float32).reshape(8, 8), None),  # another range: stretched to 0..255
])
def test_wide_tiffs_are_scaled_to_8_bits(tmp_path, mode, values, expected):
    Image.fromarray(values).save(tmp_path / "a.tif")
    assert Image.open(tmp_path / "a.tif").mode == mode
    image = load_image(tmp_path / "a.tif")
    assert image.shape == (3, 8, 8)
    if expected is None:
        assert image.min() == 0 and image.max() == 255
    else:
        assert abs(int(image[0, 0, 0]) - expected) <= 1


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_exif_orientation_is_honoured_in_every_format(tmp_path, suffix):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to view
    Image.new("RGB", (40, 20), (200, 30, 30)).save(tmp_path / f"a{suffix}", exif=exif)
    assert load_image(tmp_path / f"a{suffix}").shape == (3, 40, 20)
