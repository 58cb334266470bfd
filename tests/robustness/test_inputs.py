"""Bad and unusual inputs to the readers, the Python API and the inference commands: each case
ends in a clear error naming the input and the reason, or in a valid result.

Covers the pixel limit of every decoder (``UNIHEMA_MAX_IMAGE_PIXELS``), decompression bombs
(PNG and TIFF, refused from their header), image modes that decode, arrays the API refuses,
and the command line: several images or folders, comma-separated names that never swallow the
image, ``--out`` and ``--device`` checked before the model loads.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import torch.nn.functional as F
from PIL import Image

from unihema.api import UniHemaPipeline
from unihema.api.pipeline import nearest_resize
from unihema.cli import main
from unihema.config import load_config
from unihema.data.io import ImageReadError, ImageTooLargeError, image_size, read_image, read_mask
from unihema.modeling.model import UniHema

LIMIT_ENV = "UNIHEMA_MAX_IMAGE_PIXELS"


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width x height`` 8-bit gray pixels but holds a few bytes of data:
    the shape of a decompression bomb, which must be refused from its header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="session")
def tiff_bomb(tmp_path_factory) -> Path:
    """A real TIFF bomb: 15000 x 15000 zero pixels (225 Mpx) in zlib tiles, about 1 MB (240 KB
    at zlib level 6; level 1 writes it faster)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.tif"
    side, tile = 15000, 1024
    zeros = np.zeros((tile, tile), np.uint8)
    n = (-(-side // tile)) ** 2
    tifffile.imwrite(path, (zeros for _ in range(n)), shape=(side, side), dtype=np.uint8,
                     tile=(tile, tile), compression="zlib", compressionargs={"level": 1})
    assert path.stat().st_size < 2_000_000
    return path


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, tiny) -> Path:
    torch.manual_seed(0)
    model = UniHema.from_config(load_config(None, tiny))
    return model.save_pretrained(tmp_path_factory.mktemp("inputs") / "model",
                                 extra={"image_size": 64})


@pytest.fixture(scope="session")
def pipe(model_dir) -> UniHemaPipeline:
    return UniHemaPipeline.from_pretrained(model_dir)


@pytest.fixture
def field(tmp_path) -> Path:
    path = tmp_path / "field.png"
    Image.fromarray(np.full((48, 64, 3), 180, np.uint8)).save(path)
    return path


# ------------------------------------------------------------------ formats that decode
def _cmyk_jpeg(p):
    Image.new("CMYK", (16, 12), (0, 255, 255, 0)).save(p / "cmyk.jpg", quality=100)
    return p / "cmyk.jpg", (255, 0, 0), 3


def _png16(p):
    Image.fromarray(np.full((12, 16), 257 * 100, np.uint16)).save(p / "deep.png")
    return p / "deep.png", (100, 100, 100), 0


def _rgba(p):
    Image.new("RGBA", (16, 12), (10, 20, 30, 0)).save(p / "clear.png")
    return p / "clear.png", (255, 255, 255), 0  # transparent is white glass


def _gray(p):
    Image.new("L", (16, 12), 77).save(p / "gray.png")
    return p / "gray.png", (77, 77, 77), 0


def _palette(p):
    img = Image.new("P", (16, 12), 1)
    img.putpalette([0, 0, 0, 200, 40, 90] + [0] * 762)
    img.save(p / "palette.png")
    return p / "palette.png", (200, 40, 90), 0


def _webp(p):
    Image.new("RGB", (16, 12), (30, 60, 90)).save(p / "x.webp", lossless=True)
    return p / "x.webp", (30, 60, 90), 0


def _bmp(p):
    Image.new("RGB", (16, 12), (1, 2, 3)).save(p / "x.bmp")
    return p / "x.bmp", (1, 2, 3), 0


def _tiff16_rgb(p):
    tifffile.imwrite(p / "x.tif", np.full((12, 16, 3), 257 * 50, np.uint16), photometric="rgb")
    return p / "x.tif", (50, 50, 50), 0


@pytest.mark.parametrize("make", [_cmyk_jpeg, _png16, _rgba, _gray, _palette, _webp, _bmp,
                                  _tiff16_rgb])
def test_modes_decode_to_rgb(tmp_path, make):
    path, colour, tol = make(tmp_path)
    arr = read_image(path)
    assert arr.shape == (12, 16, 3) and arr.dtype == np.uint8
    assert np.abs(arr[6, 8].astype(int) - colour).max() <= tol, arr[6, 8]


def test_large_genuine_image_decodes_exactly(tmp_path, monkeypatch):
    """Above a million pixels Pillow's pixels are copied a band of rows at a time."""
    monkeypatch.delenv(LIMIT_ENV, raising=False)
    noise = np.random.default_rng(0).integers(0, 256, (900, 1500, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "big.png", compress_level=0)
    arr = read_image(tmp_path / "big.png")
    assert arr.flags.writeable and np.array_equal(arr, noise)


# ------------------------------------------------------------------ files the readers refuse
def _missing(p):
    return p / "nope.png"


def _empty(p):
    (p / "empty.png").write_bytes(b"")
    return p / "empty.png"


def _folder(p):
    (p / "dir.png").mkdir()
    return p / "dir.png"


def _truncated(p):
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(p / "cut.png")
    data = (p / "cut.png").read_bytes()
    (p / "cut.png").write_bytes(data[: len(data) // 2])
    return p / "cut.png"


def _not_an_image(p):
    (p / "fake.png").write_bytes(b"this is a text file, not a PNG\n" * 4)
    return p / "fake.png"


def _png_bomb_pillow(p):  # above twice Pillow's threshold: Pillow's own check fires first
    return _png_header_only(p / "bomb20k.png", 20000, 20000)


def _png_bomb(p):  # between Pillow's warning and its error: only the pixel limit refuses it
    return _png_header_only(p / "bomb9500.png", 9500, 9500)


@pytest.mark.parametrize("make, reason", [
    (_missing, "file not found"),
    (_empty, "empty file"),
    (_folder, r"not a regular file \(a directory\)"),
    (_truncated, "cannot decode image .*truncated"),
    (_not_an_image, "cannot decode image .*UnidentifiedImageError"),
    (_png_bomb_pillow, r"400000000 pixels.*pixel limit 89,478,485.*UNIHEMA_MAX_IMAGE_PIXELS"),
    (_png_bomb, r"9500x9500 \(90,250,000 pixels\) is above the pixel limit of 89,478,485"),
])
def test_bad_files_are_named_with_the_reason(tmp_path, monkeypatch, make, reason):
    monkeypatch.delenv(LIMIT_ENV, raising=False)
    path = make(tmp_path)
    with pytest.raises(ImageReadError, match=reason) as err:
        read_image(path)
    assert str(path) in str(err.value)


def test_tiff_bomb_is_refused_before_decoding(tiff_bomb, monkeypatch):
    monkeypatch.delenv(LIMIT_ENV, raising=False)
    with pytest.raises(ImageTooLargeError) as err:
        read_image(tiff_bomb)
    msg = str(err.value)
    assert str(tiff_bomb) in msg and "15000x15000 (225,000,000 pixels)" in msg
    assert "pixel limit of 89,478,485" in msg and f"{LIMIT_ENV}=225000000" in msg
    assert image_size(tiff_bomb) == (15000, 15000)  # the header alone is still readable


def _save(fmt):
    def make(path: Path) -> Path:
        img = Image.new("RGB", (40, 40), (120, 30, 60))
        target = path.with_suffix(fmt)
        if fmt == ".tif":
            tifffile.imwrite(target, np.asarray(img))
        else:
            img.save(target)
        return target
    return make


@pytest.mark.parametrize("fmt", [".png", ".jpg", ".bmp", ".webp", ".gif", ".tif"])
def test_every_decoder_applies_the_one_limit(tmp_path, monkeypatch, fmt):
    path = _save(fmt)(tmp_path / "x")
    monkeypatch.setenv(LIMIT_ENV, "1000")
    with pytest.raises(ImageTooLargeError, match=r"40x40 \(1,600 pixels\) is above the pixel "
                       r"limit of 1,000; .*UNIHEMA_MAX_IMAGE_PIXELS=1600"):
        read_image(path)
    monkeypatch.setenv(LIMIT_ENV, "1600")  # raising the limit as the message says lets it in
    assert read_image(path).shape == (40, 40, 3)


def test_masks_and_archives_apply_the_limit(tmp_path, monkeypatch):
    Image.new("L", (40, 40), 0).save(tmp_path / "mask.png")
    np.savez(tmp_path / "set.npz", train_images=np.zeros((2, 40, 40), np.uint8))
    monkeypatch.setenv(LIMIT_ENV, "1000")
    with pytest.raises(ImageTooLargeError, match="mask.png: declared size 40x40"):
        read_mask(tmp_path / "mask.png", {0: "background"}, ["background"])
    member = f"{tmp_path / 'set.npz'}::train_images/1"
    with pytest.raises(ImageTooLargeError, match=r"set.npz::train_images/1: declared size 40x40"):
        read_image(member)


def test_blank_canvas_bomb_is_refused_by_its_ratio(tmp_path, monkeypatch):
    """Within the limit but 2 Mpx from a few hundred bytes: far more than deflate can pack."""
    Image.new("1", (2000, 1000), 0).save(tmp_path / "blank.png")
    monkeypatch.setenv(LIMIT_ENV, "4000000")
    with pytest.raises(ImageTooLargeError, match=r"blank.png: declared size 2000x1000 .* pixels "
                       r"per byte, more than the 1024 accepted above 500,000 pixels"):
        read_image(tmp_path / "blank.png")


def test_malformed_limit_names_the_variable(tmp_path, monkeypatch, field):
    monkeypatch.setenv(LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match=f"{LIMIT_ENV}='lots': expected a positive whole"):
        read_image(field)


# ------------------------------------------------------------------ the Python API
@pytest.mark.parametrize("call, error, reason", [
    (lambda p: p.segment(np.zeros((0, 0, 3), np.uint8)), ValueError, r"\[0, 0, 3\].*no pixels"),
    (lambda p: p.detect(np.zeros((10, 0, 3), np.uint8)), ValueError, r"\[10, 0, 3\].*no pixels"),
    (lambda p: p.classify(Image.new("RGB", (0, 0)), ["a", "b"]), ValueError, "no pixels"),
    (lambda p: p.ask(np.zeros((8, 8, 3), np.float32), "q?"), ValueError,
     r"expected uint8 .* got float32 \[8, 8, 3\]"),
    (lambda p: p.ask(np.zeros((1, 8, 8, 3), np.uint8), "q?"), ValueError, r"\[1, 8, 8, 3\]"),
    (lambda p: p.ask(np.zeros((8, 8, 5), np.uint8), "q?"), ValueError, r"\[8, 8, 5\]"),
    (lambda p: p.ask(None, "q?"), TypeError, "got NoneType"),
    (lambda p: p.ask(np.zeros((8, 8, 3), np.uint8), 5), TypeError,
     "question must be a str, got int 5"),
    (lambda p: p.ask(np.zeros((8, 8, 3), np.uint8), None), TypeError, "question must be a str"),
    (lambda p: p.fill(np.zeros((8, 8, 3), np.uint8), 7), TypeError, "text_with_sentinels"),
    (lambda p: p.describe(Path("/nonexistent/cell.png")), ImageReadError,
     "cell.png: file not found"),
])
def test_api_refuses_bad_inputs(pipe, call, error, reason):
    with pytest.raises(error, match=reason):
        call(pipe)


def test_api_applies_the_limit_to_arrays(pipe, monkeypatch):
    monkeypatch.setenv(LIMIT_ENV, "1000")
    with pytest.raises(ValueError, match=r"image array \[40, 40, 3\]: .* above the pixel limit"):
        pipe.segment(np.zeros((40, 40, 3), np.uint8))


def test_api_device_is_checked_before_loading(model_dir):
    with pytest.raises(ValueError, match="device 'nonsense' is not a torch device; use cpu"):
        UniHemaPipeline.from_pretrained(model_dir, device="nonsense")


@pytest.mark.parametrize("image", [np.full((30, 20), 90, np.uint8),            # grayscale
                                   np.full((30, 20, 4), 90, np.uint8),         # RGBA
                                   np.full((1, 1, 3), 90, np.uint8)])          # one pixel
def test_api_accepts_unusual_valid_arrays(pipe, image):
    res = pipe.segment(image, ["background", "nucleus"])
    assert res["mask"].shape == image.shape[:2] and res["mask"].dtype == np.int64


def test_large_segment_mask_matches_nearest_interpolation(pipe):
    """The full-size mask is the model-scale index map enlarged as indices: exactly what
    F.interpolate(mode="nearest") gives, without float scores at full size."""
    image = np.random.default_rng(2).integers(0, 255, (1000, 1500, 3), dtype=np.uint8)
    res = pipe.segment(image, ["background", "nucleus", "cytoplasm"])
    assert res["mask"].shape == (1000, 1500) and res["mask"].max() < 3
    small = np.random.default_rng(3).integers(0, 6, (43, 64))
    for h, w in [(1000, 1500), (7, 9), (43, 64), (601, 899)]:
        ref = F.interpolate(torch.from_numpy(small)[None, None].float(), size=(h, w),
                            mode="nearest")[0, 0].long().numpy()
        assert np.array_equal(nearest_resize(small, h, w), ref), (h, w)


def test_tiff_bomb_through_the_api(pipe, tiff_bomb, monkeypatch):
    monkeypatch.delenv(LIMIT_ENV, raising=False)
    with pytest.raises(ImageTooLargeError, match="bomb.tif: declared size 15000x15000"):
        pipe.segment(tiff_bomb)


# ------------------------------------------------------------------ the command line
def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("extra, reason", [
    (["--out", "{tmp}"], r"--out .*: is a folder; give an image file name ending in one of "
                         r"\.png, \.jpg"),
    (["--out", "{tmp}/overlay.txt"], r"unknown image extension '\.txt'; use one of \.png"),
    (["--out", "{tmp}/no/such/folder/x.png"], r"the folder .*folder does not exist"),
    (["--out", "{tmp}/x.png", "{image}"], r"writes one image, but 2 images were given"),
    (["--device", "nonsense"], "device 'nonsense' is not a torch device"),
    (["--classes", ",platelet"], "--classes ',platelet': an empty name"),
])
def test_cli_inputs_are_checked_before_the_model_loads(tmp_path, capsys, field, extra, reason):
    """--model names a folder that is no checkpoint: the input error must come first."""
    extra = [e.format(tmp=tmp_path, image=field) for e in extra]
    code, _, err = _cli(capsys, "segment", "--model", tmp_path, field, *extra)
    assert code == 2 and "not a unihema checkpoint" not in err
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert __import__("re").search(reason, err), err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cli_cuda_without_cuda(tmp_path, capsys, field):
    code, _, err = _cli(capsys, "describe", "--model", tmp_path, field, "--device", "cuda")
    assert code == 2 and "CUDA is not available on this machine" in err and "--device cpu" in err


def test_cli_classes_before_the_image(model_dir, capsys, field):
    code, out, _ = _cli(capsys, "detect", "--model", model_dir, "--classes",
                        "red blood cell,platelet", field, "--min-score", "0")
    assert code == 0 and "counts (score >=" in out
    labels = {line[:24].strip() for line in out.splitlines()[:-1]}
    assert labels and labels <= {"red blood cell", "platelet"}


def test_cli_repeated_labels(model_dir, capsys, field):
    code, out, _ = _cli(capsys, "classify", "--model", model_dir, "--labels",
                        "lymphocyte,monocyte", field, "--labels", "eosinophil")
    assert code == 0
    probs = {line.split()[0] for line in out.splitlines() if not line.startswith("label:")}
    assert probs == {"lymphocyte", "monocyte", "eosinophil"}


def test_cli_unquoted_multiword_class_is_explained(model_dir, capsys, field):
    code, _, err = _cli(capsys, "detect", "--model", model_dir, "--classes", "red", "blood",
                        "cell", field)
    assert code == 2 and "blood: no such image file or folder" in err
    assert "comma-separated" in err


def test_cli_several_images_one_model_load(model_dir, capsys, tmp_path, field, monkeypatch):
    second = tmp_path / "second.png"
    Image.fromarray(np.full((40, 30, 3), 90, np.uint8)).save(second)
    loads = []
    real = UniHemaPipeline.from_pretrained.__func__

    def counting(cls, *args, **kwargs):
        loads.append(args[0])
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(UniHemaPipeline, "from_pretrained", classmethod(counting))
    code, out, _ = _cli(capsys, "ask", "--model", model_dir, field, second, "How many?")
    assert code == 0 and len(loads) == 1
    headers = [line for line in out.splitlines() if line.startswith("== ")]
    assert headers == [f"== {field} ==", f"== {second} =="]


def test_cli_folder_of_images(model_dir, capsys, tmp_path):
    folder = tmp_path / "fields"
    folder.mkdir()
    for name in ("b.png", "a.jpg"):
        Image.fromarray(np.full((32, 32, 3), 150, np.uint8)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    code, out, _ = _cli(capsys, "segment", "--model", model_dir, folder)
    assert code == 0
    headers = [line for line in out.splitlines() if line.startswith("== ")]
    assert headers == [f"== {folder / 'a.jpg'} ==", f"== {folder / 'b.png'} =="]
    assert out.count("background") == 2


def test_cli_empty_folder(model_dir, capsys, tmp_path):
    (tmp_path / "none").mkdir()
    code, _, err = _cli(capsys, "describe", "--model", model_dir, tmp_path / "none")
    assert code == 2 and "none: the folder holds no image files (.png" in err


def test_cli_bad_image_among_several(model_dir, capsys, tmp_path, field):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    code, out, err = _cli(capsys, "describe", "--model", model_dir, empty, field)
    assert code == 2 and f"{empty}: empty file (0 bytes)" in err
    assert f"== {field} ==" in out and "nucleus_shape" in out  # the good one still ran


@pytest.mark.parametrize("argv, reason", [
    (["{empty}", "q?"], "empty file (0 bytes), not an image"),
    (["{tmp}/missing.png", "q?"], "missing.png: no such image file or folder"),
])
def test_cli_single_bad_image(model_dir, capsys, tmp_path, argv, reason):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    argv = [a.format(empty=empty, tmp=tmp_path) for a in argv]
    code, _, err = _cli(capsys, "ask", "--model", model_dir, *argv)
    assert code == 2 and reason in err
