"""COCO JSON: images, categories and annotations (boxes, polygons, RLE).

Conventions: COCO boxes are ``[x, y, w, h]`` in pixel edges, converted to xyxy
``(x, y, x + w, y + h)``. Segmentations are kept as stored (a list of polygons, an uncompressed
RLE ``{"size": [h, w], "counts": [ints]}`` or a compressed RLE with ``counts`` a string) and
decoded on demand by :func:`coco_mask` with pycocotools. An annotation without ``bbox`` but with
a segmentation gets the segmentation's bounding box.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from unihema.data.formats._common import PathLike, data_error, read_text, to_float, to_int


@dataclass(frozen=True)
class CocoImage:
    id: int
    file_name: str
    width: int
    height: int


@dataclass(frozen=True)
class CocoAnnotation:
    """One annotation; ``category`` is the category *name*, ``box`` float xyxy edges."""

    id: int
    category: str
    box: Tuple[float, float, float, float]
    segmentation: Any = None
    iscrowd: bool = False
    area: Optional[float] = None


class CocoIndex:
    """A parsed COCO file: ``images`` (file order), ``categories`` (id -> name) and
    :meth:`annotations` per image id (file order)."""

    def __init__(self, path: PathLike, images: List[CocoImage], categories: Dict[int, str],
                 by_image: Dict[int, List[CocoAnnotation]]) -> None:
        self.path = path
        self.images = images
        self.categories = categories
        self._by_image = by_image

    def annotations(self, image_id: int) -> List[CocoAnnotation]:
        """Annotations of one image (empty list when it has none)."""
        return list(self._by_image.get(image_id, []))

    def __len__(self) -> int:
        return len(self.images)


def _need(d: Dict[str, Any], key: str, path: PathLike, where: str) -> Any:
    if not isinstance(d, dict):
        raise data_error(path, f"expected an object, got {type(d).__name__}", field=where)
    if key not in d:
        raise data_error(path, f"missing key '{key}' (keys: {sorted(d)})", field=where)
    return d[key]


def _seg_box(seg: Any, h: int, w: int, path: PathLike, where: str) -> Tuple[float, ...]:
    from pycocotools import mask as mask_utils

    rle = _to_rle(seg, h, w, path, where)
    x, y, bw, bh = mask_utils.toBbox(rle).tolist()
    return (x, y, x + bw, y + bh)


def read_coco(path: PathLike) -> CocoIndex:
    """Parse a COCO JSON file.

    Raises:
        DataError: missing file, malformed JSON (with line and column), a missing top-level
            key (``images``, ``annotations``, ``categories``), an entry without a required key
            (``images[3].width``), a bbox that is not four numbers, a negative width/height,
            an annotation of an unknown image or category id, a duplicate image id.
    """
    text = read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise data_error(path, f"malformed JSON ({exc.msg}, column {exc.colno})",
                         line=exc.lineno) from None
    if not isinstance(doc, dict):
        raise data_error(path, f"expected a JSON object at the top, got {type(doc).__name__}")
    categories: Dict[int, str] = {}
    for i, c in enumerate(_need(doc, "categories", path, "top level")):
        where = f"categories[{i}]"
        cid = to_int(_need(c, "id", path, where), path, field=f"{where}.id")
        name = str(_need(c, "name", path, where)).strip()
        if cid in categories:
            raise data_error(path, f"duplicate category id {cid}", field=where)
        categories[cid] = name
    images: List[CocoImage] = []
    sizes: Dict[int, Tuple[int, int]] = {}
    for i, im in enumerate(_need(doc, "images", path, "top level")):
        where = f"images[{i}]"
        iid = to_int(_need(im, "id", path, where), path, field=f"{where}.id")
        if iid in sizes:
            raise data_error(path, f"duplicate image id {iid}", field=where)
        width = to_int(_need(im, "width", path, where), path, field=f"{where}.width")
        height = to_int(_need(im, "height", path, where), path, field=f"{where}.height")
        images.append(CocoImage(iid, str(_need(im, "file_name", path, where)), width, height))
        sizes[iid] = (height, width)
    by_image: Dict[int, List[CocoAnnotation]] = {}
    for i, a in enumerate(_need(doc, "annotations", path, "top level")):
        where = f"annotations[{i}]"
        image_id = to_int(_need(a, "image_id", path, where), path, field=f"{where}.image_id")
        if image_id not in sizes:
            raise data_error(path, f"image_id {image_id} is not in 'images'",
                             field=f"{where}.image_id")
        cat = to_int(_need(a, "category_id", path, where), path, field=f"{where}.category_id")
        if cat not in categories:
            raise data_error(path, f"category_id {cat} is not in 'categories' "
                                   f"({sorted(categories)})", field=f"{where}.category_id")
        seg = a.get("segmentation") or None
        if "bbox" in a:
            bbox = a["bbox"]
            if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
                raise data_error(path, f"expected [x, y, w, h], got {bbox!r}",
                                 field=f"{where}.bbox")
            x, y, w, h = (to_float(v, path, field=f"{where}.bbox") for v in bbox)
            if w < 0 or h < 0:
                raise data_error(path, f"negative width or height in {bbox!r}",
                                 field=f"{where}.bbox")
            box = (x, y, x + w, y + h)
        elif seg is not None:
            box = _seg_box(seg, *sizes[image_id], path, f"{where}.segmentation")
        else:
            raise data_error(path, "neither 'bbox' nor 'segmentation'", field=where)
        area = a.get("area")
        ann = CocoAnnotation(
            id=to_int(a.get("id", i), path, field=f"{where}.id"),
            category=categories[cat],
            box=box,
            segmentation=seg,
            iscrowd=bool(to_int(a.get("iscrowd", 0), path, field=f"{where}.iscrowd")),
            area=None if area is None else to_float(area, path, field=f"{where}.area"),
        )
        by_image.setdefault(image_id, []).append(ann)
    return CocoIndex(path, images, categories, by_image)


def _to_rle(seg: Any, height: int, width: int, path: PathLike, where: str) -> Dict[str, Any]:
    """One compressed RLE for any COCO segmentation (polygons are merged)."""
    from pycocotools import mask as mask_utils

    if isinstance(seg, list):
        polys = [p for p in seg if p is not None]
        if not polys or any(not isinstance(p, list) or len(p) < 6 or len(p) % 2 for p in polys):
            raise data_error(path, "expected a list of polygons [x1, y1, x2, y2, ...] with at "
                                   "least 3 points each", field=where)
        try:
            rles = mask_utils.frPyObjects([[float(v) for v in p] for p in polys], height, width)
        except (TypeError, ValueError) as exc:
            raise data_error(path, f"bad polygon coordinates ({exc})", field=where) from None
        return mask_utils.merge(rles)
    if isinstance(seg, dict) and "counts" in seg and "size" in seg:
        size = seg["size"]
        if not isinstance(size, (list, tuple)) or [int(v) for v in size] != [height, width]:
            raise data_error(path, f"RLE size {size!r} differs from the image size "
                                   f"[{height}, {width}] (height, width)", field=where)
        counts = seg["counts"]
        if isinstance(counts, list):
            if sum(int(c) for c in counts) != height * width:
                raise data_error(path, f"uncompressed RLE counts sum to "
                                       f"{sum(int(c) for c in counts)}, expected "
                                       f"{height * width}", field=where)
            return mask_utils.frPyObjects(seg, height, width)
        if isinstance(counts, (str, bytes)):
            c = counts.encode("ascii") if isinstance(counts, str) else counts
            return {"size": [height, width], "counts": c}
        raise data_error(path, f"RLE counts must be a list or a string, got "
                               f"{type(counts).__name__}", field=where)
    raise data_error(path, f"unsupported segmentation {type(seg).__name__}: expected polygons "
                           f"or an RLE {{size, counts}}", field=where)


def coco_mask(annotation: CocoAnnotation, height: int, width: int,
              path: PathLike = "<coco>") -> np.ndarray:
    """Decode an annotation's segmentation to ``bool [height, width]`` (pycocotools).

    Polygons (several are merged), uncompressed RLE and compressed RLE are supported.

    Raises:
        DataError: no segmentation, malformed polygons, RLE of another size, counts that do not
            cover the image, undecodable compressed counts.
    """
    from pycocotools import mask as mask_utils

    where = f"annotation {annotation.id}.segmentation"
    if annotation.segmentation is None:
        raise data_error(path, "annotation has no segmentation", field=where)
    rle = _to_rle(annotation.segmentation, height, width, path, where)
    try:
        mask = mask_utils.decode(rle)
    except Exception as exc:  # noqa: BLE001 - pycocotools raises plain errors on bad strings
        raise data_error(path, f"cannot decode RLE ({type(exc).__name__}: {exc})",
                         field=where) from None
    return mask.astype(bool).reshape(height, width)
