"""Decoding images and semantic masks from disk, strictly.

Every reader returns plain numpy arrays in one convention, whatever the file holds:

* :func:`read_image` -> ``uint8 [H, W, 3]`` RGB. Grayscale is replicated to three channels,
  transparency is composited over white (a smear's empty glass is bright), palettes are expanded,
  and deeper samples are scaled by their *bit depth* (16-bit: ``round(v / 257)``), never by the
  image's own maximum, so one intensity means one colour across a dataset.
* :func:`read_mask` -> ``int64 [H, W]`` indices into a class list.
* :func:`image_size` -> ``(width, height)`` from the header only.

Images stored inside a NumPy ``.npz`` archive (MedMNIST) are addressed as
``<file.npz>::<array>/<index>`` (``bloodmnist.npz::train_images/12``): both readers accept such a
path; the array is ``uint8 [N, H, W]`` or ``[N, H, W, 3]`` and ``image_size`` reads only the
array header. Decoded arrays are cached (the few most recent, keyed by file and modification
time), so reading a split image by image does not re-read the archive.

A window of a larger image (one cell of a labelled field) is addressed as
``<image>::crop/<x0>,<y0>,<x1>,<y1>`` (:func:`crop_image_path`; integer pixel edges inside the
image, ``0 <= x0 < x1 <= width``, ``0 <= y0 < y1 <= height``): :func:`read_image` returns those
pixels, :func:`image_size` the window's size after checking it against the image's header. The
decoded source images are cached like the archives, so the cells of one field decode it once.

The stored pixel layout is returned as is: EXIF orientation is NOT applied, because annotations
(boxes, masks, points) refer to the pixels as stored, and a viewer's rotation would silently
misplace them.

Anything that cannot be read (missing, empty, unreadable, corrupt or truncated file, unexpected
layout) raises :class:`ImageReadError` naming the file and the reason. Truncated files are
errors even if some other code has set Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES``: a
half-grey image with full annotations is a wrong training sample, not a recoverable one.

Every decoder checks the size a file declares against one pixel limit before decoding (see
:mod:`unihema.data.image_guard`: ``UNIHEMA_MAX_IMAGE_PIXELS`` or :func:`set_pixel_limit`). A
file above it, or a large one declaring far more pixels than its bytes can hold (a
decompression bomb), raises :class:`ImageTooLargeError` naming the declared size, the limit
and how to raise it.
"""

from __future__ import annotations

import re
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from unihema.data.image_guard import (ImageReadError, ImageTooLargeError, pixel_limit,
                                      set_pixel_limit)
from unihema.data.image_guard import check_file as _check_file
from unihema.data.image_guard import open_image as _open_pil
from unihema.data.image_guard import refuse_too_large as _guard
from unihema.data.image_guard import strict_pillow as _strict_pillow

__all__ = ["ImageReadError", "ImageTooLargeError", "crop_image_path", "image_size",
           "pixel_limit", "read_image", "read_mask", "set_pixel_limit", "split_crop_path",
           "split_npz_path"]

PathLike = Union[str, Path]

_TIFF_SUFFIXES = (".tif", ".tiff")


# ----------------------------------------------------------------------------- helpers
def _fail(path: Path, err: BaseException) -> ImageReadError:
    reason = str(err) or type(err).__name__
    return ImageReadError(f"{path}: cannot decode image ({type(err).__name__}: {reason})")


def _to_uint8(arr: np.ndarray, path: Path) -> np.ndarray:
    """Scale samples to 8 bits by their bit depth (floats are taken to lie in [0, 1])."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        # 65535 / 257 == 255 exactly, so this maps the full 16-bit range onto the 8-bit one.
        return np.round(arr.astype(np.float32) / 257.0).astype(np.uint8)
    if arr.dtype.kind in "ui":
        # Signed or 32-bit integer images (Pillow mode "I") hold 16-bit data in practice.
        return np.round(np.clip(arr, 0, 65535).astype(np.float32) / 257.0).astype(np.uint8)
    if arr.dtype.kind == "f":
        return np.round(np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ImageReadError(f"{path}: unsupported sample type {arr.dtype}")


def _to_rgb(arr: np.ndarray, path: Path) -> np.ndarray:
    """``[H, W]``, ``[H, W, 1|2|3|4]`` of any depth -> ``uint8 [H, W, 3]``; alpha over white."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ImageReadError(
            f"{path}: unsupported pixel layout {arr.shape} (expected gray, gray+alpha, RGB or RGBA)"
        )
    arr = _to_uint8(arr, path)
    if arr.shape[2] in (2, 4):
        colour = arr[:, :, :-1].astype(np.float32)
        alpha = arr[:, :, -1:].astype(np.float32) / 255.0
        arr = np.round(colour * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    arr = np.ascontiguousarray(arr)
    # Pillow's buffers are read-only; callers (torch.from_numpy) expect to own the array.
    return arr if arr.flags.writeable else arr.copy()


def _pil_array(img: Image.Image) -> np.ndarray:
    """Pixels of a loaded Pillow image, keeping the depth of 16-bit and float modes."""
    mode = img.mode
    if mode in ("RGB", "RGBA", "L", "LA", "I", "F") or mode.startswith("I;16"):
        return _asarray_rows(img)
    if mode in ("P", "PA"):
        return np.asarray(img.convert("RGBA"))
    if mode == "1":
        return np.asarray(img.convert("L"))
    if mode in ("RGBa", "RGBX"):
        return np.asarray(img.convert("RGBA"))
    if mode == "La":
        return np.asarray(img.convert("LA"))
    return np.asarray(img.convert("RGB"))  # CMYK, YCbCr, LAB, HSV


def _asarray_rows(img: Image.Image, rows: int = 512) -> np.ndarray:
    """``np.asarray(img)``, writable, filled a band of rows at a time: for a large image,
    ``tobytes`` joins its chunks into one ``bytes`` (two transient full-size copies) and the
    read-only result is copied once more, three times the pixels beside Pillow's own."""
    width, height = img.size
    if width * height <= 4 * rows * rows:
        return np.asarray(img)
    first = np.asarray(img.crop((0, 0, width, rows)))
    out = np.empty((height,) + first.shape[1:], first.dtype)
    out[:rows] = first
    for top in range(rows, height, rows):
        out[top:top + rows] = np.asarray(img.crop((0, top, width, min(top + rows, height))))
    return out


def _tiff_array(path: Path) -> np.ndarray:
    """First image of a TIFF as ``[H, W]`` or ``[H, W, S]`` (planar layouts made interleaved)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes = series.axes
        shape = dict(zip(axes, series.shape))
        planes = int(np.prod([n for a, n in zip(axes, series.shape) if a not in "YXSC"]))
        _guard(path, (shape.get("X", 1), shape.get("Y", 1)), path.stat().st_size, planes)
        arr = series.asarray()
    # Keep the first plane of any leading extra axis (pages, time, depth): one field per file.
    while arr.ndim > 2 and axes[0] not in "YX" and not (arr.ndim == 3 and axes[0] in "SC"):
        arr, axes = arr[0], axes[1:]
    if arr.ndim == 3 and axes[0] in "SC":  # planar configuration: samples first
        arr = np.moveaxis(arr, 0, -1)
    return arr


# ----------------------------------------------------------------------------- npz members
_NPZ_PATH = re.compile(r"^(?P<file>.+\.npz)::(?P<array>[^/]+)/(?P<index>-?\d+)$", re.IGNORECASE)
#: decoded NPZ arrays and crop sources, keyed by file, member and modification time
_CACHE: "OrderedDict[tuple, np.ndarray]" = OrderedDict()
_CACHE_SIZE = 4
_cache_lock = threading.Lock()


def _cached(key: tuple, load: Callable[[], np.ndarray]) -> np.ndarray:
    """``load()``, or its result kept from an earlier call with the same ``key``."""
    with _cache_lock:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    arr = load()
    with _cache_lock:
        _CACHE[key] = arr
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return arr


def split_npz_path(path: PathLike) -> Optional[Tuple[Path, str, int]]:
    """``(file, array, index)`` of a ``<file.npz>::<array>/<index>`` path, else ``None``."""
    m = _NPZ_PATH.match(str(path))
    if m is None:
        return None
    return Path(m.group("file")), m.group("array"), int(m.group("index"))


def _npz_member(path: Path, array: str, spec: str) -> str:
    _check_file(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
    except (OSError, zipfile.BadZipFile) as err:
        raise ImageReadError(f"{spec}: {path} is not a readable .npz archive ({err})") from None
    if array not in names:
        raise ImageReadError(f"{spec}: no array '{array}' in {path}; arrays: {names}")
    return array + ".npy"


def _npz_shape(path: Path, array: str, spec: str) -> Tuple[int, ...]:
    member = _npz_member(path, array, spec)
    try:
        with zipfile.ZipFile(path) as zf, zf.open(member) as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, _ = read(f)
    except Exception as err:  # noqa: BLE001 - any header failure is a bad archive
        raise ImageReadError(f"{spec}: cannot read the header of '{array}' ({err})") from None
    return tuple(int(v) for v in shape)


def _npz_array(path: Path, array: str, spec: str) -> np.ndarray:
    _npz_member(path, array, spec)
    stat = path.stat()
    key = (str(path.resolve()), array, stat.st_mtime_ns, stat.st_size)

    def load() -> np.ndarray:
        shape = _npz_shape(path, array, spec)
        if len(shape) >= 3:  # one image of the archive, as read_image returns it
            _guard(spec, (shape[2], shape[1]), None)
        try:
            with np.load(path, allow_pickle=False) as npz:
                return npz[array]
        except Exception as err:  # noqa: BLE001
            raise ImageReadError(f"{spec}: cannot read array '{array}' ({err})") from None

    return _cached(key, load)


def _npz_index(shape: Tuple[int, ...], index: int, spec: str) -> None:
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] not in (1, 3, 4)):
        raise ImageReadError(f"{spec}: array has shape {list(shape)}, expected [N, H, W] or "
                             f"[N, H, W, 3]")
    if not 0 <= index < shape[0]:
        raise ImageReadError(f"{spec}: index {index} out of range (the array holds "
                             f"{shape[0]} images)")


def _read_npz_image(path: Path, array: str, index: int, spec: str) -> np.ndarray:
    arr = _npz_array(path, array, spec)
    _npz_index(arr.shape, index, spec)
    return _to_rgb(np.asarray(arr[index]), Path(spec))


# ----------------------------------------------------------------------------- windows
_CROP_PATH = re.compile(r"^(?P<file>.+)::crop/(?P<box>-?\d+,-?\d+,-?\d+,-?\d+)$")


def crop_image_path(path: PathLike, box: Sequence[int]) -> str:
    """``"<path>::crop/<x0>,<y0>,<x1>,<y1>"``, the image path of a window of ``path``."""
    x0, y0, x1, y1 = (int(v) for v in box)
    return f"{path}::crop/{x0},{y0},{x1},{y1}"


def split_crop_path(path: PathLike) -> Optional[Tuple[str, Tuple[int, int, int, int]]]:
    """``(image path, (x0, y0, x1, y1))`` of a ``<image>::crop/...`` path, else ``None``."""
    m = _CROP_PATH.match(str(path))
    if m is None:
        return None
    x0, y0, x1, y1 = (int(v) for v in m.group("box").split(","))
    return m.group("file"), (x0, y0, x1, y1)


def _check_window(box: Tuple[int, int, int, int], size: Tuple[int, int], spec: str) -> None:
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= size[0] and 0 <= y0 < y1 <= size[1]):
        raise ImageReadError(f"{spec}: window {list(box)} is empty or not inside the "
                             f"{size[0]}x{size[1]} image (need 0 <= x0 < x1 <= width, "
                             f"0 <= y0 < y1 <= height)")


def _read_window(file: str, box: Tuple[int, int, int, int], spec: str) -> np.ndarray:
    if split_npz_path(file) is not None:  # the archive is cached already
        image = read_image(file)
    else:
        source = Path(file)
        _check_file(source)
        stat = source.stat()
        key = (str(source.resolve()), "::crop", stat.st_mtime_ns, stat.st_size)
        image = _cached(key, lambda: read_image(source))
    _check_window(box, (image.shape[1], image.shape[0]), spec)
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1].copy()  # never hand out the cached array


# ----------------------------------------------------------------------------- images
def read_image(path: PathLike) -> np.ndarray:
    """Decode an image file to ``uint8 [H, W, 3]`` RGB, as stored (no EXIF rotation).

    Supports JPEG, PNG, BMP, TIFF and anything else Pillow opens, in modes RGB, RGBA
    (composited over white), L, LA, P, 1, I;16, I and F (grayscale replicated to 3 channels).
    16-bit samples are scaled by bit depth, ``round(v / 257)``; 32-bit integer samples are
    clipped to the 16-bit range first; float samples are taken to lie in ``[0, 1]``. TIFF files
    are read with tifffile (multi-sample and 16-bit RGB images), falling back to Pillow for
    compressions tifffile cannot decode without optional codecs.

    Raises:
        ImageReadError: missing, unreadable, corrupt or truncated file; unsupported layout;
            a crop window outside its image.
    """
    crop = split_crop_path(path)
    if crop is not None:
        return _read_window(*crop, str(path))
    npz = split_npz_path(path)
    if npz is not None:
        return _read_npz_image(*npz, str(path))
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() in _TIFF_SUFFIXES:
        try:
            return _to_rgb(_tiff_array(path), path)
        except ImageReadError:  # too large, or a layout no decoder reads
            raise
        except Exception as tiff_err:  # noqa: BLE001 - Pillow may still decode it
            try:
                return _read_pil(path)
            except ImageReadError as pil_err:
                raise ImageReadError(
                    f"{path}: cannot decode TIFF (tifffile: {type(tiff_err).__name__}: "
                    f"{tiff_err}; Pillow: {pil_err})"
                ) from tiff_err
    return _read_pil(path)


def _read_pil(path: Path) -> np.ndarray:
    try:
        with _strict_pillow(), _open_pil(path) as img:
            img.load()  # decode now, inside the try: a truncated file fails here
            arr = _pil_array(img)
    except ImageReadError:
        raise
    except Exception as err:  # noqa: BLE001 - any decoder failure is a bad file
        raise _fail(path, err) from err
    return _to_rgb(arr, path)


def image_size(path: PathLike) -> Tuple[int, int]:
    """``(width, height)`` of an image, reading only its header.

    Raises:
        ImageReadError: the file is missing or not a recognisable image; a crop window
            outside its image.
    """
    crop = split_crop_path(path)
    if crop is not None:
        _check_window(crop[1], image_size(crop[0]), str(path))
        x0, y0, x1, y1 = crop[1]
        return x1 - x0, y1 - y0
    npz = split_npz_path(path)
    if npz is not None:
        shape = _npz_shape(npz[0], npz[1], str(path))
        _npz_index(shape, npz[2], str(path))
        return int(shape[2]), int(shape[1])
    path = Path(path)
    _check_file(path)
    try:
        with Image.open(path) as img:
            return int(img.size[0]), int(img.size[1])
    except Exception as pil_err:  # noqa: BLE001
        if path.suffix.lower() not in _TIFF_SUFFIXES:
            raise _fail(path, pil_err) from pil_err
    try:  # TIFF layouts Pillow does not open (16-bit RGB): the page header gives the shape
        import tifffile

        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            return int(page.imagewidth), int(page.imagelength)
    except Exception as err:  # noqa: BLE001
        raise _fail(path, err) from err


# ----------------------------------------------------------------------------- masks
def _mask_array(path: Path) -> np.ndarray:
    """Raw integer values of a mask file, ``[H, W]`` (palette indices for P-mode images)."""
    if path.suffix.lower() in _TIFF_SUFFIXES:
        try:
            arr = _tiff_array(path)
        except ImageTooLargeError:
            raise
        except Exception:  # noqa: BLE001 - fall back to Pillow below
            arr = None
        if arr is not None:
            return _single_channel(arr, path)
    try:
        with _strict_pillow(), _open_pil(path) as img:
            img.load()
            mode = img.mode
            if mode == "1":
                arr = np.asarray(img.convert("L"))
            elif mode in ("L", "P", "I", "RGB", "RGBA", "LA", "PA") or mode.startswith("I;16"):
                arr = np.asarray(img)  # P: the palette index is the class value
            else:
                raise ImageReadError(
                    f"{path}: mask mode '{mode}' is not supported; use L, P, I;16 or "
                    f"RGB with equal channels"
                )
    except ImageReadError:
        raise
    except Exception as err:  # noqa: BLE001
        raise _fail(path, err) from err
    return _single_channel(arr, path)


def _single_channel(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim == 3:
        if arr.shape[2] in (2, 4):  # alpha carries no class; drop it
            arr = arr[:, :, :-1]
        if arr.shape[2] > 1 and not all(np.array_equal(arr[..., 0], arr[..., c])
                                        for c in range(1, arr.shape[2])):
            raise ImageReadError(
                f"{path}: colour mask with unequal channels; masks must hold one class value "
                f"per pixel (L, P, I;16, or RGB with R == G == B)"
            )
        arr = arr[..., 0]
    if arr.ndim != 2 or arr.dtype.kind not in "uib":
        raise ImageReadError(
            f"{path}: mask must be a 2-D integer image, got {arr.dtype} {arr.shape}"
        )
    return arr.astype(np.int64) if arr.dtype.kind == "b" else arr


def read_mask(path: PathLike, values: Mapping[int, str], classes: Sequence[str]) -> np.ndarray:
    """Decode a semantic mask to ``int64 [H, W]`` indices into ``classes``.

    Args:
        path: mask image: L, P (palette indices are the values), I;16, RGB/RGBA with equal
            colour channels, or an integer TIFF. Values are read raw, never rescaled.
        values: pixel value -> class name (``{0: "background", 255: "nucleus"}``).
        classes: the class list the returned indices point into.

    Raises:
        ImageReadError: unreadable file, or a pixel value absent from ``values`` (the message
            lists the unexpected values found and the expected ones; nothing is silently
            background).
        ValueError: a class named in ``values`` is not in ``classes``.
    """
    path = Path(path)
    class_index: Dict[str, int] = {c: i for i, c in enumerate(classes)}
    missing = sorted({name for name in values.values() if name not in class_index})
    if missing:
        raise ValueError(
            f"{path}: mask classes {missing} are not in the class list {list(classes)}"
        )
    _check_file(path)
    raw = _mask_array(path)
    found = np.unique(raw)
    unexpected = [int(v) for v in found if int(v) not in values]
    if unexpected:
        shown = unexpected[:20] + (["..."] if len(unexpected) > 20 else [])
        raise ImageReadError(
            f"{path}: mask holds pixel values {shown} that are not in its value map; expected "
            f"only {sorted(int(k) for k in values)} ({dict(sorted(values.items()))})"
        )
    out = np.empty(raw.shape, dtype=np.int64)
    for v in found:
        out[raw == v] = class_index[values[int(v)]]
    return out
