"""What the image readers refuse before decoding: missing or empty files, and images above one
pixel limit. Also the errors they raise (:class:`ImageReadError`, :class:`ImageTooLargeError`).

Every decoder of :mod:`unihema.data.io` (Pillow for JPEG, PNG, BMP, WebP, GIF and the rest,
tifffile for TIFF, NumPy for ``.npz`` archives) and the arrays handed to the Python API go
through :func:`size_problem` with the size the file *declares* in its header, before a single
pixel is decoded. Two rules, both governed by one number, :func:`pixel_limit`:

* the declared width x height must not exceed the limit (default 89,478,485 pixels, Pillow's
  own warning threshold: a 9459 x 9459 field, about 270 MB as 8-bit RGB);
* an image declaring more than an eighth of the limit must not declare more than
  :data:`MAX_PIXELS_PER_BYTE` pixels per byte of its file. Deflate packs at most about 1032
  bytes into one, so a larger ratio means stacked compression, strips that share their data
  or a nearly blank canvas: the shape of a decompression bomb (a 317 KB TIFF declaring
  225 Mpx), refused before it can allocate gigabytes.

The limit is set by the ``UNIHEMA_MAX_IMAGE_PIXELS`` environment variable (read at each
check, so data-loader workers and the CLI follow it) or, in Python, by :func:`set_pixel_limit`,
which takes precedence. Raising it for a genuinely large image raises both rules.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from pathlib import Path
from typing import Iterator, Optional, Tuple, Union

from PIL import Image, ImageFile

from unihema.data.catalog import DataError

#: pixels an image may declare by default (Pillow's ``Image.MAX_IMAGE_PIXELS``)
DEFAULT_MAX_PIXELS = 89_478_485
#: the environment variable that sets the limit
ENV_VAR = "UNIHEMA_MAX_IMAGE_PIXELS"
#: declared pixels per file byte beyond which a large image is taken for a bomb
MAX_PIXELS_PER_BYTE = 1024
#: the ratio rule applies to images declaring more than ``limit // RATIO_FRACTION`` pixels
RATIO_FRACTION = 8

_override: Optional[int] = None


def set_pixel_limit(max_pixels: Optional[int]) -> None:
    """Set the pixel limit of every reader in this process (``None``: back to the environment
    variable or the default). Raises ``ValueError`` for a limit below one pixel."""
    global _override
    if max_pixels is not None and (isinstance(max_pixels, bool) or int(max_pixels) < 1):
        raise ValueError(f"set_pixel_limit: expected a positive number of pixels or None, "
                         f"got {max_pixels!r}")
    _override = None if max_pixels is None else int(max_pixels)


def pixel_limit() -> int:
    """The pixel limit in force: :func:`set_pixel_limit`, else ``$UNIHEMA_MAX_IMAGE_PIXELS``,
    else :data:`DEFAULT_MAX_PIXELS`. A malformed variable is an error, not the default."""
    if _override is not None:
        return _override
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{ENV_VAR}={raw!r}: expected a positive whole number of pixels, "
                         f"e.g. {ENV_VAR}=200000000")
    return value


def _raise_hint(needed: int) -> str:
    return (f"if the image is genuine, raise the limit: {ENV_VAR}={needed} in the environment "
            f"or unihema.data.io.set_pixel_limit({needed}) in Python")


def size_problem(size: Tuple[int, int], file_bytes: Optional[int] = None,
                 planes: int = 1) -> Optional[str]:
    """Why an image declaring ``size = (width, height)`` (times ``planes`` pages or frames)
    must not be decoded, or ``None`` when it may be.

    ``file_bytes`` is the size of the file holding it; ``None`` (an array already in memory)
    skips the ratio rule. The reason names the declared size, the limit and how to raise it;
    callers prefix the file or array it concerns.
    """
    width, height = (int(v) for v in size)
    pixels = width * height * max(int(planes), 1)
    shown = f"{width}x{height}" + (f" x {planes} planes" if planes > 1 else "")
    limit = pixel_limit()
    if pixels > limit:
        return (f"declared size {shown} ({pixels:,} pixels) is above the pixel limit of "
                f"{limit:,}; {_raise_hint(pixels)}")
    if file_bytes is not None and pixels > limit // RATIO_FRACTION:
        per_byte = pixels / max(int(file_bytes), 1)
        if per_byte > MAX_PIXELS_PER_BYTE:
            return (f"declared size {shown} ({pixels:,} pixels) from a {file_bytes:,}-byte file "
                    f"is {per_byte:,.0f} pixels per byte, more than the {MAX_PIXELS_PER_BYTE} "
                    f"accepted above {limit // RATIO_FRACTION:,} pixels: a decompression bomb "
                    f"or a blank canvas; {_raise_hint(pixels * RATIO_FRACTION)}")
    return None


# ----------------------------------------------------------------------------- readers' guards
class ImageReadError(DataError):
    """An image or mask file could not be decoded; the message names the file and the reason."""


class ImageTooLargeError(ImageReadError):
    """A file declares more pixels than the pixel limit allows, or far more than its bytes can
    hold; raised before decoding. The message names the declared size and the limit."""


_strict_lock = threading.Lock()


@contextlib.contextmanager
def strict_pillow() -> Iterator[None]:
    """Decode with ``LOAD_TRUNCATED_IMAGES`` off, restoring the caller's setting afterwards.

    The flag is a Pillow global; it is only touched (under a lock) when some other code turned
    it on, so the usual case costs nothing and never serialises decoding threads.
    """
    if not ImageFile.LOAD_TRUNCATED_IMAGES:
        yield
        return
    with _strict_lock:
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def check_file(path: Path) -> None:
    """Refuse a missing path, a folder or an empty file, naming it."""
    if not path.exists():
        raise ImageReadError(f"{path}: file not found")
    if not path.is_file():
        raise ImageReadError(f"{path}: not a regular file"
                             + (" (a directory)" if path.is_dir() else ""))
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes), not an image")


def refuse_too_large(path: Union[str, Path], size: Tuple[int, int],
                     file_bytes: Optional[int], planes: int = 1) -> None:
    """Refuse, before decoding, an image whose declared size breaks the pixel limit."""
    problem = size_problem(size, file_bytes, planes)
    if problem is not None:
        raise ImageTooLargeError(f"{path}: {problem}")


@contextlib.contextmanager
def open_image(path: Path) -> Iterator[Image.Image]:
    """``Image.open`` under the pixel limit: the header is read, the declared size checked,
    and only then may the caller decode (``img.load()``).

    Pillow's own bomb check (a warning above ``Image.MAX_IMAGE_PIXELS``, an error above twice
    that) is kept as a backstop below ours: its threshold is raised to the limit when the
    limit is raised, and its warning is silenced since the image is refused anyway.
    """
    limit = pixel_limit()
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < limit:
        Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except Image.DecompressionBombError as err:
        raise ImageTooLargeError(f"{path}: {err} (pixel limit {limit:,}; raise it with "
                                 f"UNIHEMA_MAX_IMAGE_PIXELS or set_pixel_limit)") from None
    try:
        refuse_too_large(path, img.size, path.stat().st_size)
        yield img
    finally:
        img.close()  # frees the decoded pixels now, not when the object is collected
