"""Detection evaluator: COCO box AP (pycocotools or faster-coco-eval) and counting error.

Inputs per batch (see :mod:`unihema.pipeline.collate`)::

    batch["classes"][i]      list[str], the class names prompted for item i
    batch["boxes"][i]        float [N, 4] absolute xyxy in the mapped (resized) image
    batch["box_classes"][i]  int64 [N], indices into batch["classes"][i]

Prediction per item (the model's postprocess output)::

    {"boxes": float [K, 4] xyxy in the same coordinates as batch["boxes"][i],
     "scores": float [K], "classes": int [K] indices into batch["classes"][i]}

Tensors, numpy arrays and lists are accepted. Categories are identified by class NAME over the
whole dataset, so items whose prompts list the classes in different orders still aggregate.

Metrics returned by :meth:`DetectEvaluator.evaluate`:

* ``mAP`` (IoU 0.50:0.95), ``mAP50``, ``mAP75``: COCO 101-point interpolated AP, area "all",
  at most ``max_dets`` detections per image and class, averaged over the classes that have at
  least one ground-truth box (COCO's -1 for "no ground truth" never enters a mean). When no
  class has any ground truth the three means are -1.0, COCO's value for "undefined".
* ``AP/<name>``, ``AP50/<name>`` for each class with ground truth.
* ``count_mae/<name>``: mean over the images that prompt the class of
  ``|#predictions with score >= count_threshold - #ground truth|``; ``count_mae`` is the mean
  over those classes. Classes without any ground truth are included: counting cells that are not
  there is an error too.

After ``evaluate()``: ``ev.per_class`` (name -> dict of AP, AP50, AP75, num_gt, count_mae) and
``ev.pr_curves`` (name -> (recall thresholds [101], precision at IoU 0.5 [101])) for plots.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np

from unihema.evaluation import EVALUATORS, Evaluator

logger = logging.getLogger(__name__)

BACKENDS = ("pycocotools", "faster_coco_eval")


def _as_numpy(x: Any, dtype: Any, shape_tail: Tuple[int, ...] = ()) -> np.ndarray:
    """Tensor / array / list -> numpy array of ``dtype``; an empty input gets the right shape."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=dtype)
    if arr.size == 0:
        arr = arr.reshape((0,) + shape_tail)
    return arr


def _xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    out = boxes.astype(np.float64).copy()
    out[:, 2:] -= out[:, :2]
    return out


@EVALUATORS.register("detect")
class DetectEvaluator(Evaluator):
    """COCO box AP and per-class counting error over a dataset.

    Args:
        iou_type: only ``"bbox"`` (predictions carry no instance masks).
        max_dets: detections kept per image and class, highest scores first. COCO's default of
            100 is too low for blood-smear fields that hold more red cells than that.
        count_threshold: score from which a prediction counts as a cell for ``count_mae``.
        use: ``"pycocotools"`` (the reference) or ``"faster_coco_eval"`` (C++, same numbers).
    """

    task = "detect"

    def __init__(
        self,
        *,
        iou_type: str = "bbox",
        max_dets: int = 300,
        count_threshold: float = 0.5,
        use: str = "pycocotools",
    ) -> None:
        if iou_type != "bbox":
            raise ValueError(
                f"iou_type must be 'bbox' (predictions have no masks), got {iou_type!r}"
            )
        if use not in BACKENDS:
            raise ValueError(f"use must be one of {', '.join(BACKENDS)}; got {use!r}")
        if int(max_dets) < 1:
            raise ValueError(f"max_dets must be >= 1, got {max_dets}")
        self.iou_type = iou_type
        self.max_dets = int(max_dets)
        self.count_threshold = float(count_threshold)
        self.use = use
        self.reset()

    def reset(self) -> None:
        # One record per image: (prompted names, gt boxes, gt names, dt boxes, dt scores, dt names)
        self._images: List[Tuple[List[str], np.ndarray, List[str], np.ndarray, np.ndarray,
                                 List[str]]] = []
        self._names: Dict[str, int] = {}
        self.per_class: Dict[str, Dict[str, float]] = {}
        self.pr_curves: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}

    def process(self, batch: Mapping[str, Any], predictions: List[Dict[str, Any]]) -> None:
        classes = batch["classes"]
        if len(predictions) != len(classes):
            raise ValueError(f"{len(predictions)} predictions for a batch of {len(classes)} items")
        for i, pred in enumerate(predictions):
            names = [str(c) for c in classes[i]]
            for n in names:
                self._names.setdefault(n, len(self._names))
            gt_boxes = _as_numpy(batch["boxes"][i], np.float64, (4,))
            gt_cls = _as_numpy(batch["box_classes"][i], np.int64)
            dt_boxes = _as_numpy(pred["boxes"], np.float64, (4,))
            scores = _as_numpy(pred["scores"], np.float64)
            dt_cls = _as_numpy(pred["classes"], np.int64)
            if not len(dt_boxes) == len(scores) == len(dt_cls):
                raise ValueError(
                    f"item {i}: prediction has {len(dt_boxes)} boxes, {len(scores)} scores and "
                    f"{len(dt_cls)} classes; they must have the same length"
                )
            for what, idx in (("ground-truth box_classes", gt_cls), ("predicted classes", dt_cls)):
                if idx.size and (idx.min() < 0 or idx.max() >= len(names)):
                    raise ValueError(
                        f"item {i}: {what} {idx.tolist()} out of range for its {len(names)} "
                        f"classes {names}"
                    )
            self._images.append((
                names, gt_boxes, [names[k] for k in gt_cls.tolist()],
                dt_boxes, scores, [names[k] for k in dt_cls.tolist()],
            ))

    # ------------------------------------------------------------------ COCO
    def _coco_dicts(self) -> Tuple[dict, dict]:
        cat_id = {n: k + 1 for k, n in enumerate(self._names)}
        images = [{"id": i + 1, "width": 0, "height": 0} for i in range(len(self._images))]
        categories = [{"id": cid, "name": n} for n, cid in cat_id.items()]
        gts: List[dict] = []
        dts: List[dict] = []
        for i, (_, gb, gn, db, ds, dn) in enumerate(self._images):
            for box, name in zip(_xyxy_to_xywh(gb).tolist(), gn):
                gts.append({"id": len(gts) + 1, "image_id": i + 1, "category_id": cat_id[name],
                            "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
            for box, score, name in zip(_xyxy_to_xywh(db).tolist(), ds.tolist(), dn):
                dts.append({"id": len(dts) + 1, "image_id": i + 1, "category_id": cat_id[name],
                            "bbox": box, "area": box[2] * box[3], "iscrowd": 0,
                            "score": float(score)})
        gt = {"images": images, "categories": categories, "annotations": gts}
        dt = {"images": images, "categories": categories, "annotations": dts}
        return gt, dt

    def _precision(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """COCO ``precision [T, R, K]`` (area "all", maxDets[-1]), iouThrs, recThrs."""
        gt_dict, dt_dict = self._coco_dicts()
        # pycocotools prints progress on stdout; keep evaluation output clean.
        with contextlib.redirect_stdout(io.StringIO()):
            if self.use == "pycocotools":
                from pycocotools.coco import COCO
                from pycocotools.cocoeval import COCOeval

                gt, dt = COCO(), COCO()
                gt.dataset, dt.dataset = gt_dict, dt_dict
                gt.createIndex()
                dt.createIndex()
                ev = COCOeval(gt, dt, iouType=self.iou_type)
            else:
                from faster_coco_eval import COCO, COCOeval_faster

                gt, dt = COCO(gt_dict), COCO(dt_dict)
                ev = COCOeval_faster(gt, dt, iouType=self.iou_type, print_function=logger.debug)
            p = ev.params
            p.imgIds = [im["id"] for im in gt_dict["images"]]
            p.catIds = [c["id"] for c in gt_dict["categories"]]
            # COCO's summarize() hard-codes maxDets=100 for mAP (it reads -1 when 100 is not in
            # the list), so the numbers are read from eval["precision"] instead.
            p.maxDets = [1, 10, self.max_dets]
            p.areaRng = [[0.0, 1e10]]
            p.areaRngLbl = ["all"]
            ev.evaluate()
            ev.accumulate()
        prec = np.asarray(ev.eval["precision"])[:, :, :, 0, -1]
        return prec, np.asarray(p.iouThrs), np.asarray(p.recThrs)

    def _counts(self) -> Dict[str, float]:
        errors: Dict[str, List[float]] = {}
        for names, _, gn, _, ds, dn in self._images:
            kept = [n for n, s in zip(dn, ds.tolist()) if s >= self.count_threshold]
            for name in names:
                errors.setdefault(name, []).append(abs(kept.count(name) - gn.count(name)))
        return {n: float(np.mean(e)) for n, e in errors.items()}

    def evaluate(self) -> Dict[str, float]:
        if not self._images:
            logger.warning("DetectEvaluator.evaluate() called before any batch was processed")
            return {}
        prec, iou_thrs, rec_thrs = self._precision()
        t50 = int(np.argmin(np.abs(iou_thrs - 0.5)))
        t75 = int(np.argmin(np.abs(iou_thrs - 0.75)))
        num_gt: Dict[str, int] = {n: 0 for n in self._names}
        for _, _, gn, _, _, _ in self._images:
            for n in gn:
                num_gt[n] += 1
        counts = self._counts()

        def mean_valid(a: np.ndarray) -> float:
            # -1 marks "no ground truth for this class" in COCO's accumulate().
            valid = a[a > -1]
            return float(valid.mean()) if valid.size else -1.0

        out: Dict[str, float] = {
            "mAP": mean_valid(prec),
            "mAP50": mean_valid(prec[t50]),
            "mAP75": mean_valid(prec[t75]),
        }
        self.per_class, self.pr_curves = {}, {}
        for k, name in enumerate(self._names):
            entry: Dict[str, float] = {"num_gt": float(num_gt[name])}
            if num_gt[name] > 0:
                entry.update(AP=mean_valid(prec[:, :, k]), AP50=mean_valid(prec[t50, :, k]),
                             AP75=mean_valid(prec[t75, :, k]))
                out[f"AP/{name}"] = entry["AP"]
                out[f"AP50/{name}"] = entry["AP50"]
                self.pr_curves[name] = (rec_thrs.copy(), np.clip(prec[t50, :, k], 0.0, None))
            if name in counts:
                entry["count_mae"] = counts[name]
                out[f"count_mae/{name}"] = counts[name]
            self.per_class[name] = entry
        out["count_mae"] = float(np.mean(list(counts.values()))) if counts else 0.0
        return out


def detect_metrics(
    gt: Sequence[Tuple[Sequence[str], Any, Any]],
    predictions: Sequence[Dict[str, Any]],
    **options: Any,
) -> Dict[str, float]:
    """One-shot helper: ``gt`` holds ``(classes, boxes, box_classes)`` per image."""
    ev = DetectEvaluator(**options)
    batch: Dict[str, Any] = {"classes": [g[0] for g in gt], "boxes": [g[1] for g in gt],
                             "box_classes": [g[2] for g in gt]}
    ev.process(batch, list(predictions))
    return ev.evaluate()


__all__ = ["DetectEvaluator", "detect_metrics", "BACKENDS"]
