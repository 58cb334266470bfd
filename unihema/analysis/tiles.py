"""Tiling an image of any size: the grid, the readers that fill it, and the rescaling to the
model's scale.

Conventions (the whole package uses them):

* boxes are ``(x0, y0, x1, y1)`` in pixels, ``x1``/``y1`` exclusive, in the **global**
  coordinates of the image (column ``x``, row ``y``); a tile box is integer, a cell box float;
* images are ``uint8 [H, W, 3]`` RGB, whatever the source holds (16-bit samples are scaled by
  bit depth, alpha is composited over white, grey is replicated; see :mod:`unihema.data.io`).

A :class:`TileGrid` covers a ``width x height`` image with tiles of side ``tile`` that overlap
by at least ``overlap`` pixels. Choose the overlap no smaller than the largest cell (in image
pixels): then every cell lies whole in at least one tile, and the tile whose *core* holds the
cell's centre holds it whole (the cores partition the image along the middle of each overlap;
:mod:`unihema.analysis.merge` keeps a detection only in that tile).

Sources (:func:`open_source`) read one window at a time:

* a numpy array or a PIL image: windows are sliced, converted window by window;
* a tiled TIFF: only the TIFF tiles a window touches are read and decoded
  (``page.dataoffsets``/``databytecounts`` through tifffile's ``read_segments`` and the page's
  own decoder); the page is never decoded whole, and one window may not decode more pixels
  than the pixel limit of :mod:`unihema.data.image_guard`;
* any other file (a strip TIFF, PNG, JPEG, ...): decoded whole when it is under the pixel
  limit; above it, :class:`ImageTooLargeError` names the size and suggests a tiled TIFF.

The model sees cells at the scale it was trained at: :func:`scale_factor` is ``image um/px /
model um/px`` (a 0.1 um/px image for a 0.2 um/px model gives 0.5: halve the tile), and
:func:`rescale_tile` / :func:`boxes_to_global` go to the model's scale and back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from unihema.data.image_guard import ImageReadError, ImageTooLargeError, pixel_limit
from unihema.data.io import _to_rgb, image_size, read_image

Box = Tuple[int, int, int, int]

#: how to make a tiled TIFF, named in the error for an image too large to decode whole
TILED_TIFF_HINT = ("save it as a tiled TIFF, which is read tile by tile (e.g. "
                   "tifffile.imwrite(path, image, tile=(512, 512), compression='zlib') or "
                   "vips tiffsave in.svs out.tif --tile --tile-width 512 --tile-height 512)")


# ----------------------------------------------------------------------------- the grid
def tile_starts(length: int, tile: int, overlap: int) -> List[int]:
    """Start offsets of the tiles along one axis of ``length`` pixels.

    The first tile starts at 0, the last ends at ``length``; the tiles are spread evenly
    between, so consecutive tiles overlap by at least ``overlap`` pixels. An axis no longer
    than ``tile`` gets a single tile (clipped to the image by :class:`TileGrid`).
    """
    if length <= tile:
        return [0]
    step = tile - overlap
    n = math.ceil((length - overlap) / step)
    n = max(n, 2)
    # floor keeps every gap <= ceil((length - tile) / (n - 1)) <= step
    return [(i * (length - tile)) // (n - 1) for i in range(n)]


@dataclass(frozen=True)
class TileBox:
    """One tile of a grid: its flat ``index``, ``row``/``col``, its pixel ``box`` and its
    ``core`` (float bounds, ``-inf``/``inf`` at the image's edges; half-open ``[lo, hi)``),
    the part of the image for which this tile is responsible."""

    index: int
    row: int
    col: int
    box: Box
    core: Tuple[float, float, float, float]

    def owns(self, x: float, y: float) -> bool:
        """Whether the point ``(x, y)`` (global px) lies in this tile's core."""
        cx0, cy0, cx1, cy1 = self.core
        return cx0 <= x < cx1 and cy0 <= y < cy1


def _cores(starts: Sequence[int], tile: int, length: int) -> List[Tuple[float, float]]:
    """Core interval of each tile along one axis: split at the middle of each overlap."""
    ends = [min(s + tile, length) for s in starts]
    cuts = [(ends[i] + starts[i + 1]) / 2.0 for i in range(len(starts) - 1)]
    lows = [-math.inf] + cuts
    highs = cuts + [math.inf]
    return list(zip(lows, highs))


@dataclass(frozen=True)
class TileGrid:
    """Overlapping square tiles of side ``tile`` over a ``width x height`` image (pixels).

    ``overlap`` (pixels, ``0 <= overlap < tile``) is the least overlap between neighbours; set
    it to at least the largest cell's diameter. Tiles are listed row by row; tiles at the
    right and bottom edges end exactly at the image edge; an image smaller than ``tile``
    along an axis gets one tile, as wide as the image, along it.
    """

    width: int
    height: int
    tile: int
    overlap: int

    def __post_init__(self) -> None:
        if int(self.width) < 1 or int(self.height) < 1:
            raise ValueError(f"TileGrid: image size must be positive, got "
                             f"{self.width}x{self.height}")
        if int(self.tile) < 1 or not 0 <= int(self.overlap) < int(self.tile):
            raise ValueError(f"TileGrid: expected tile >= 1 and 0 <= overlap < tile, got "
                             f"tile={self.tile}, overlap={self.overlap}")

    @property
    def xs(self) -> List[int]:
        return tile_starts(self.width, self.tile, self.overlap)

    @property
    def ys(self) -> List[int]:
        return tile_starts(self.height, self.tile, self.overlap)

    @property
    def shape(self) -> Tuple[int, int]:
        """``(rows, cols)`` of tiles."""
        return len(self.ys), len(self.xs)

    def __len__(self) -> int:
        rows, cols = self.shape
        return rows * cols

    def tiles(self) -> List[TileBox]:
        """Every tile, row by row (a fresh list of the grid's cached tiles)."""
        return list(self._tiles)

    @cached_property
    def _tiles(self) -> Tuple[TileBox, ...]:
        xs, ys = self.xs, self.ys
        xc, yc = _cores(xs, self.tile, self.width), _cores(ys, self.tile, self.height)
        out = []
        for r, y in enumerate(ys):
            for c, x in enumerate(xs):
                box = (x, y, min(x + self.tile, self.width), min(y + self.tile, self.height))
                core = (xc[c][0], yc[r][0], xc[c][1], yc[r][1])
                out.append(TileBox(r * len(xs) + c, r, c, box, core))
        return tuple(out)

    def __iter__(self) -> Iterator[TileBox]:
        return iter(self._tiles)

    def __getitem__(self, index: int) -> TileBox:
        return self._tiles[index]

    def owner(self, x: float, y: float) -> int:
        """Flat index of the tile whose core holds the point ``(x, y)``."""
        xs, ys = self.xs, self.ys
        xc, yc = _cores(xs, self.tile, self.width), _cores(ys, self.tile, self.height)
        col = next(i for i, (lo, hi) in enumerate(xc) if lo <= x < hi)
        row = next(i for i, (lo, hi) in enumerate(yc) if lo <= y < hi)
        return row * len(xs) + col


# ----------------------------------------------------------------------------- sources
class ArraySource:
    """Windows of an image held in memory: ``[H, W]`` or ``[H, W, 1|2|3|4]`` of any depth,
    or a PIL image. Each window is converted to ``uint8 [h, w, 3]`` on its own, so a large
    16-bit array is never copied whole."""

    def __init__(self, image: Union[np.ndarray, Image.Image], name: str = "<array>"):
        if isinstance(image, Image.Image):
            if image.mode not in ("RGB", "RGBA", "L", "LA", "I", "F") and \
                    not image.mode.startswith("I;16"):
                image = image.convert("RGBA")
            image = np.asarray(image)
        arr = np.asarray(image)
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
            raise ValueError(f"{name}: expected an image [H, W] or [H, W, 1-4], got shape "
                             f"{arr.shape}")
        self.array, self.name = arr, name
        self.height, self.width = int(arr.shape[0]), int(arr.shape[1])

    def read(self, box: Box) -> np.ndarray:
        """The window ``box`` as ``uint8 [y1 - y0, x1 - x0, 3]``."""
        x0, y0, x1, y1 = _check_box(box, self.width, self.height, self.name)
        return _to_rgb(self.array[y0:y1, x0:x1], Path(self.name))

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TiledTiffSource:
    """Windows of the first image of a tiled TIFF, decoding only the TIFF tiles they touch.

    ``decoded_pixels`` counts the pixels decoded so far (the TIFF tiles' full extent), which
    tests and callers use to check that no read decodes the page whole. One read may decode at
    most :func:`~unihema.data.image_guard.pixel_limit` pixels.
    """

    def __init__(self, path: Union[str, Path]):
        import tifffile

        self.path = Path(path)
        self._tif = tifffile.TiffFile(self.path)
        try:
            page = self._tif.series[0].keyframe
            if not page.is_tiled:
                raise ValueError(f"{self.path}: not a tiled TIFF")
            if page.imagedepth > 1:
                raise ValueError(f"{self.path}: volumetric TIFF (depth {page.imagedepth}) "
                                 f"is not a smear image")
        except Exception:
            self._tif.close()
            raise
        self.page = page
        self.width, self.height = int(page.imagewidth), int(page.imagelength)
        self.tile_h, self.tile_w = int(page.tilelength), int(page.tilewidth)
        self.samples = int(page.samplesperpixel)
        self.planar = page.planarconfig == 2 and self.samples > 1
        self.decoded_pixels = 0

    def read(self, box: Box) -> np.ndarray:
        """The window ``box`` as ``uint8 [y1 - y0, x1 - x0, 3]``, decoding only its tiles."""
        x0, y0, x1, y1 = _check_box(box, self.width, self.height, str(self.path))
        page, th, tw = self.page, self.tile_h, self.tile_w
        ny, nx = math.ceil(self.height / th), math.ceil(self.width / tw)
        rows, cols = range(y0 // th, (y1 - 1) // th + 1), range(x0 // tw, (x1 - 1) // tw + 1)
        planes = range(self.samples) if self.planar else range(1)
        indices = [p * ny * nx + r * nx + c for p in planes for r in rows for c in cols]
        need = len(rows) * len(cols) * th * tw * len(planes)
        limit = pixel_limit()
        if need > limit:
            raise ImageTooLargeError(
                f"{self.path}: window {tuple(box)} decodes {need:,} pixels of TIFF tiles, "
                f"above the pixel limit of {limit:,}; read smaller windows, or raise the "
                f"limit (UNIHEMA_MAX_IMAGE_PIXELS or unihema.data.io.set_pixel_limit)")
        out: Optional[np.ndarray] = None
        fh = self._tif.filehandle
        offsets = [page.dataoffsets[i] for i in indices]
        counts = [page.databytecounts[i] for i in indices]
        decode_args = {"_fullsize": True}
        if page.compression in (6, 7, 34892, 33007):  # JPEG flavours
            decode_args.update(jpegtables=page.jpegtables, jpegheader=page.jpegheader)
        for data, index in fh.read_segments(offsets, counts, indices=indices, sort=True,
                                            lock=fh.lock, flat=True):
            try:
                seg, (s, _, ty, tx, _), _shape = page.decode(data, index, **decode_args)
            except Exception as err:  # noqa: BLE001 - a codec missing or a corrupt tile
                raise ImageReadError(f"{self.path}: cannot decode TIFF tile {index} "
                                     f"({type(err).__name__}: {err})") from err
            if out is None:
                dtype = seg.dtype if seg is not None else page.dtype
                out = np.zeros((y1 - y0, x1 - x0, self.samples), dtype)
            if seg is None:  # an empty tile: zeros
                continue
            seg = seg[0]  # [th, tw, contig samples]
            self.decoded_pixels += th * tw
            oy0, ox0 = max(ty, y0), max(tx, x0)
            oy1, ox1 = min(ty + th, y1), min(tx + tw, x1)
            part = seg[oy0 - ty:oy1 - ty, ox0 - tx:ox1 - tx]
            if self.planar:
                out[oy0 - y0:oy1 - y0, ox0 - x0:ox1 - x0, s] = part[..., 0]
            else:
                out[oy0 - y0:oy1 - y0, ox0 - x0:ox1 - x0] = part
        return _to_rgb(out, self.path)

    def close(self) -> None:
        self._tif.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


Source = Union[ArraySource, TiledTiffSource]


def _check_box(box: Sequence[int], width: int, height: int, name: str) -> Box:
    x0, y0, x1, y1 = (int(v) for v in box)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ValueError(f"{name}: window {tuple(box)} is empty or outside the "
                         f"{width}x{height} image")
    return x0, y0, x1, y1


def _is_tiled_tiff(path: Path) -> bool:
    if path.suffix.lower() not in (".tif", ".tiff"):
        return False
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return bool(tif.series[0].keyframe.is_tiled)
    except Exception:  # noqa: BLE001 - not a TIFF tifffile reads: decode it the other way
        return False


def open_source(image: Union[str, Path, np.ndarray, Image.Image]) -> Source:
    """A window reader for ``image``: an array or PIL image, a tiled TIFF (read tile by
    tile) or any other image file (decoded whole under the pixel limit).

    Raises:
        ImageTooLargeError: a file that is not a tiled TIFF and declares more pixels than
            the pixel limit; the message names its size and suggests a tiled TIFF.
        ImageReadError: a missing or undecodable file.
    """
    if isinstance(image, (np.ndarray, Image.Image)):
        return ArraySource(image)
    path = Path(image)
    if _is_tiled_tiff(path):
        return TiledTiffSource(path)
    width, height = image_size(path)
    if width * height > pixel_limit():
        raise ImageTooLargeError(
            f"{path}: {width}x{height} ({width * height:,} pixels) is too large to decode "
            f"whole (pixel limit {pixel_limit():,}) and is not a tiled TIFF; {TILED_TIFF_HINT}")
    return ArraySource(read_image(path), name=str(path))


@dataclass
class Tile:
    """A tile read from a source: its place in the grid and its pixels ``uint8 [h, w, 3]``."""

    tile: TileBox
    image: np.ndarray


def iter_tiles(source: Source, grid: TileGrid) -> Iterator[Tile]:
    """Every tile of ``grid``, row by row, read from ``source``. Only one tile is held at a
    time; a TIFF source decodes only the TIFF tiles each one touches."""
    if (grid.width, grid.height) != (source.width, source.height):
        raise ValueError(f"grid of {grid.width}x{grid.height} for an image of "
                         f"{source.width}x{source.height}")
    for t in grid:
        yield Tile(t, source.read(t.box))


# ----------------------------------------------------------------------------- scale
def scale_factor(image_um_per_px: float, model_um_per_px: float) -> float:
    """How much to resize the image so its cells are as large as in training:
    ``image_um_per_px / model_um_per_px`` (< 1 shrinks, > 1 enlarges)."""
    if not (image_um_per_px > 0 and model_um_per_px > 0):
        raise ValueError(f"scale_factor: um/px must be positive, got image "
                         f"{image_um_per_px!r}, model {model_um_per_px!r}")
    return float(image_um_per_px) / float(model_um_per_px)


def grid_for_model(width: int, height: int, model_tile: int, model_overlap: int,
                   factor: float) -> TileGrid:
    """The grid, in image pixels, whose tiles become ``model_tile`` pixels wide (with
    ``model_overlap`` overlap) at the model's scale: both are divided by ``factor``."""
    tile = max(1, int(round(model_tile / factor)))
    overlap = min(tile - 1, int(math.ceil(model_overlap / factor)))
    return TileGrid(width, height, tile, overlap)


def rescale_tile(image: np.ndarray, factor: float) -> Tuple[np.ndarray, Tuple[float, float]]:
    """``image`` (``uint8 [h, w, 3]``) resized by ``factor`` (area averaging when shrinking,
    bilinear when enlarging), and the exact ``(fx, fy)`` applied after rounding the size."""
    h, w = image.shape[:2]
    nw, nh = max(1, int(round(w * factor))), max(1, int(round(h * factor)))
    if (nw, nh) == (w, h):
        return image, (1.0, 1.0)
    resample = Image.BOX if factor < 1 else Image.BILINEAR
    out = np.asarray(Image.fromarray(image).resize((nw, nh), resample))
    return out, (nw / w, nh / h)


def boxes_to_global(boxes: np.ndarray, tile_box: Sequence[int],
                    factors: Tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Boxes ``[N, 4]`` xyxy found on a tile rescaled by ``factors`` (:func:`rescale_tile`),
    in global image pixels."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    fx, fy = factors
    b[:, [0, 2]] = b[:, [0, 2]] / fx + tile_box[0]
    b[:, [1, 3]] = b[:, [1, 3]] / fy + tile_box[1]
    return b
