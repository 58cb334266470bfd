"""Pictures of an evaluation: curves, confusion matrices and galleries of predictions.

Every function takes the state an evaluator keeps after ``evaluate()`` (see
:mod:`unihema.evaluation`), writes one PNG atomically (temporary file, then rename) and returns
its path. Figures are drawn on matplotlib's Agg canvas through :class:`matplotlib.figure.Figure`
without pyplot, so no global backend is switched and nothing needs a display.

* :func:`plot_pr_curves` — detection precision against recall at IoU 0.5, one line per class
  (``DetectEvaluator.pr_curves``: COCO's 101 recall points, precision 0 past the last recall).
* :func:`plot_confusion` — rows = truth normalised to sum 1, annotated with the counts
  (classification) or the fractions (segmentation pixels).
* :func:`plot_reliability` — per-bin accuracy against confidence (``ClassifyEvaluator
  .reliability``), the diagonal of perfect calibration and the items per bin.
* :func:`plot_risk_coverage` — error rate on the kept items against the fraction kept when
  the least confident are referred (``ClassifyEvaluator.risk_coverage``).
* :func:`plot_gallery` — the best and worst items by :func:`item_score`, drawn with
  :func:`~unihema.evaluation.visualize.draw_detections` / ``draw_mask`` (truth beside
  prediction) or with a caption (classification, VQA). :class:`GalleryPicker` keeps those
  items while the batches stream past.

What a task gets is said by its spec (:mod:`unihema.tasks`): ``spec.gallery`` names an entry
of :data:`GALLERIES` (the item score, its name and the panels), ``spec.plots`` entries of
:data:`PLOTS`; both are registries, so a new task can bring its own.
:func:`evaluator_plots` draws every plot of a task that an evaluator's state supports.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure

from unihema.registry import Registry
from unihema.tasks import TASKS, get_task
from unihema.utils import atomic_write_bytes


@dataclass(frozen=True)
class Gallery:
    """How the items of a task are scored and drawn in its gallery.

    ``score(batch, i, prediction, options) -> float | None`` (higher = better; None: item
    not scored), named ``score_name`` in titles; ``panels(item, prediction, options) ->
    [(picture, caption)]``: two pictures (truth, prediction) when ``paired``, else one.
    """

    score_name: str
    score: Callable[..., Optional[float]]
    panels: Callable[..., List[Tuple[Any, str]]]
    paired: bool = False


#: gallery kinds by key (``spec.gallery``)
GALLERIES: Registry[Gallery] = Registry(
    "gallery", signature="Gallery(score_name, score(batch, i, prediction, options), "
    "panels(item, prediction, options), paired)")


@dataclass(frozen=True)
class PlotKind:
    """One plot drawn from an evaluator's state: ``draw(evaluator, metrics, path, title)``
    returns the PNG's path, or None when the state lacks what it needs; it is filed under
    ``kind`` (``plot_dir/<stem>-<kind>.png``, the key in the suite's ``meta.plots``)."""

    kind: str
    draw: Callable[..., Optional[Path]]


#: plots by key (``spec.plots``)
PLOTS: Registry[PlotKind] = Registry(
    "evaluation plot", signature="PlotKind(kind, draw(evaluator, metrics, path, title))")


def gallery_tasks() -> Tuple[str, ...]:
    """The registered tasks with a gallery (``spec.gallery``), in registration order."""
    return tuple(t for t in TASKS if get_task(t).gallery)


def __getattr__(name: str) -> Any:
    if name == "GALLERY_TASKS":  # the tasks with a gallery, as registered now
        return gallery_tasks()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------- files
def save_png(fig: Figure, path: Path, dpi: int = 110) -> Path:
    """Render ``fig`` to ``path`` atomically (no half-written PNG under the final name)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


# ----------------------------------------------------------------------------- curves
def plot_pr_curves(pr_curves: Mapping[str, Tuple[np.ndarray, np.ndarray]], path: Path, *,
                   title: str, ap50: Optional[Mapping[str, float]] = None) -> Path:
    """``pr_curves``: class name -> (recall [R], precision [R]) at IoU 0.5."""
    fig = Figure(figsize=(6.0, 4.8))
    ax = fig.add_subplot()
    for name, (recall, precision) in pr_curves.items():
        label = name if ap50 is None or name not in ap50 else f"{name} (AP@0.5 {ap50[name]:.3f})"
        ax.plot(np.asarray(recall), np.asarray(precision), drawstyle="steps-post", lw=1.8,
                label=label)
    if not pr_curves:
        ax.text(0.5, 0.5, "no class with ground-truth boxes", ha="center", va="center")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision (interpolated)",
           title=title)
    ax.grid(alpha=0.3)
    if pr_curves:
        ax.legend(loc="lower left", fontsize=8)
    return save_png(fig, path)


def plot_confusion(confusion: np.ndarray, class_names: Sequence[str], path: Path, *, title: str,
                   annotate: str = "counts", what: str = "items") -> Path:
    """Row-normalised confusion matrix ``[C, C]`` (rows = truth, columns = prediction).

    ``annotate="counts"`` writes each cell's count, ``"fraction"`` its share of the row.
    """
    if annotate not in ("counts", "fraction"):
        raise ValueError(f"annotate must be 'counts' or 'fraction', got {annotate!r}")
    cm = np.asarray(confusion, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise ValueError(f"confusion {cm.shape} does not match {len(class_names)} class names")
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    c = len(class_names)
    side = max(4.5, 0.55 * c + 2.5)
    fig = Figure(figsize=(side + 1.0, side))
    ax = fig.add_subplot()
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_xticks(range(c), labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(range(c), labels=list(class_names))
    ax.set(xlabel=f"predicted\n({int(cm.sum())} {what}; rows normalised to 1)", ylabel="true",
           title=title)
    size = 9 if c <= 8 else 7 if c <= 15 else 5
    for r in range(c):
        for k in range(c):
            if annotate == "counts":
                text = f"{int(cm[r, k])}"
            else:
                text = f"{norm[r, k]:.2f}" if cm[r, k] else "0"
            ax.text(k, r, text, ha="center", va="center", fontsize=size,
                    color="white" if norm[r, k] > 0.5 else "black")
    return save_png(fig, path)


def plot_reliability(reliability: Mapping[str, np.ndarray], path: Path, *, title: str,
                     ece: Optional[float] = None) -> Path:
    """Reliability diagram from ``reliability_bins`` (``edges``, ``confidence``,
    ``accuracy``, ``count`` per bin)."""
    edges = np.asarray(reliability["edges"], dtype=np.float64)
    count = np.asarray(reliability["count"])
    acc = np.asarray(reliability["accuracy"], dtype=np.float64)
    conf = np.asarray(reliability["confidence"], dtype=np.float64)
    width = np.diff(edges)
    used = count > 0
    fig = Figure(figsize=(5.6, 6.0))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.bar(edges[:-1][used], acc[used], width=width[used], align="edge", color="#4c78a8",
            edgecolor="white", label="accuracy in bin")
    top.bar(edges[:-1][used], conf[used] - acc[used], bottom=acc[used], width=width[used],
            align="edge", color="#e45756", alpha=0.35, edgecolor="#e45756",
            label="gap to mean confidence")
    top.plot([0, 1], [0, 1], ls="--", color="0.3", lw=1, label="perfect calibration")
    full = title if ece is None else f"{title}\nECE {ece:.3f}"
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy", title=full)
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.bar(edges[:-1], count, width=width, align="edge", color="0.55", edgecolor="white")
    bottom.set(xlabel="confidence (top probability)", ylabel="items")
    return save_png(fig, path)


def plot_risk_coverage(curve: Mapping[str, np.ndarray], path: Path, *, title: str,
                       aurc: Optional[float] = None) -> Path:
    """Error rate on the kept items against coverage (``ClassifyEvaluator.risk_coverage``)."""
    coverage = np.asarray(curve["coverage"], dtype=np.float64)
    risk = 1.0 - np.asarray(curve["accuracy"], dtype=np.float64)
    fig = Figure(figsize=(6.0, 4.5))
    ax = fig.add_subplot()
    ax.plot(coverage, risk, lw=1.8, color="#4c78a8", marker="." if len(risk) <= 50 else None,
            label="model (referring the least confident)")
    if len(risk):
        ax.axhline(risk[-1], ls="--", color="0.4", lw=1, label=f"no referral ({risk[-1]:.3f})")
        for pct in (90, 80):
            k = max(1, -(-len(risk) * pct // 100))
            ax.plot([coverage[k - 1]], [risk[k - 1]], "o", ms=5,
                    label=f"coverage {pct}%: risk {risk[k - 1]:.3f}")
    full = title if aurc is None else f"{title}\nAURC {aurc:.3f}"
    ax.set(xlim=(0, 1.0), ylim=(0, max(0.05, float(risk.max()) * 1.1) if len(risk) else 1),
           xlabel="coverage (fraction of items kept, most confident first)",
           ylabel="risk (error rate on kept items)", title=full)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return save_png(fig, path)


# ----------------------------------------------------------------------------- item scores
def _np(x: Any, dtype: Any = np.float64) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def box_f1(gt_boxes: np.ndarray, gt_classes: np.ndarray, boxes: np.ndarray,
           classes: np.ndarray, scores: np.ndarray, *, iou: float = 0.5) -> float:
    """F1 of one image's detections: greedy matching by descending score to unmatched
    ground-truth boxes of the same class with IoU >= ``iou``; 1.0 when both sides are empty."""
    gt_boxes, boxes = gt_boxes.reshape(-1, 4), boxes.reshape(-1, 4)
    if len(gt_boxes) + len(boxes) == 0:
        return 1.0
    used = np.zeros(len(gt_boxes), dtype=bool)
    tp = 0
    for j in np.argsort(-scores, kind="stable"):
        x0 = np.maximum(gt_boxes[:, 0], boxes[j, 0])
        y0 = np.maximum(gt_boxes[:, 1], boxes[j, 1])
        x1 = np.minimum(gt_boxes[:, 2], boxes[j, 2])
        y1 = np.minimum(gt_boxes[:, 3], boxes[j, 3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        ious = inter / np.maximum(area(gt_boxes) + area(boxes[j]) - inter, 1e-12)
        ious[used | (gt_classes != classes[j])] = -1.0
        if len(ious) and ious.max() >= iou:
            used[int(ious.argmax())] = True
            tp += 1
    return 2.0 * tp / (len(gt_boxes) + len(boxes))


def _score_boxes(batch, i, prediction, options) -> float:
    keep = _np(prediction["scores"]).reshape(-1) >= float(options.get("count_threshold", 0.5))
    return box_f1(_np(batch["boxes"][i]), _np(batch["box_classes"][i], np.int64).reshape(-1),
                  _np(prediction["boxes"]).reshape(-1, 4)[keep],
                  _np(prediction["classes"], np.int64).reshape(-1)[keep],
                  _np(prediction["scores"]).reshape(-1)[keep])


def _score_mask(batch, i, prediction, options) -> float:
    pm = _np(prediction["mask"], np.int64)
    gt = _np(batch["masks"][i], np.int64)[: pm.shape[0], : pm.shape[1]]
    valid = gt >= 0
    g, p = gt[valid], pm[valid]
    dice = [2.0 * np.sum((g == k) & (p == k)) / (np.sum(g == k) + np.sum(p == k))
            for k, name in enumerate(batch["classes"][i])
            if name != "background" and (np.any(g == k) or np.any(p == k))]
    return float(np.mean(dice)) if dice else 1.0


def _score_label(batch, i, prediction, options) -> Optional[float]:
    names = list(batch["classes"][i])
    true = int(batch["labels"][i])
    restrict = options.get("restrict_to")
    if restrict is not None and names[true] not in set(restrict):
        return None
    return float(_np(prediction["probs"]).reshape(-1)[true])


def _score_answer(batch, i, prediction, options) -> float:
    from unihema.evaluation.text import normalize_answer

    return float(normalize_answer(prediction.get("text", ""))
                 == normalize_answer(batch["targets"][i]))


def item_score(task: str, batch: Mapping[str, Any], i: int, prediction: Mapping[str, Any],
               options: Optional[Mapping[str, Any]] = None) -> Optional[float]:
    """How good one prediction is, for picking gallery items (higher = better): the score of
    the task's gallery (``spec.gallery``).

    ``boxes`` (detect): :func:`box_f1` at IoU 0.5 of the detections scoring at least
    ``count_threshold`` (evaluator option, default 0.5); ``mask`` (segment): mean Dice over the
    non-background classes in the truth or the prediction of this image (1.0 when neither has
    any); ``label`` (classify): the probability of the true class; ``answer`` (vqa): 1.0 when
    the normalised answer equals the truth, else 0.0. ``None`` when the item is not scored
    (tasks without a gallery; classify items outside ``restrict_to``).
    """
    if task not in TASKS or not get_task(task).gallery:
        return None
    return GALLERIES.get(get_task(task).gallery).score(batch, i, prediction, options or {})


class GalleryPicker:
    """Keeps the ``n`` best and ``n`` worst ``(score, index, prediction)`` seen so far.

    Ties go to the earlier index on both ends; the two lists never share an item.
    """

    def __init__(self, n: int) -> None:
        self.n = int(n)
        self._scores: List[Tuple[float, int]] = []
        self._preds: Dict[int, Any] = {}

    def add(self, score: float, index: int, prediction: Any) -> None:
        self._scores.append((float(score), int(index)))
        self._preds[int(index)] = prediction
        if len(self._preds) > 4 * max(self.n, 1):  # prune now and then, not on every item
            keep = {i for _, i, _ in self.best() + self.worst()}
            self._preds = {i: p for i, p in self._preds.items() if i in keep}

    def best(self) -> List[Tuple[float, int, Any]]:
        order = sorted(self._scores, key=lambda t: (-t[0], t[1]))[: self.n]
        return [(s, i, self._preds[i]) for s, i in order]

    def worst(self) -> List[Tuple[float, int, Any]]:
        taken = {i for _, i in sorted(self._scores, key=lambda t: (-t[0], t[1]))[: self.n]}
        order = [t for t in sorted(self._scores, key=lambda t: (t[0], t[1])) if t[1] not in taken]
        return [(s, i, self._preds[i]) for s, i in order[: self.n]]


# ----------------------------------------------------------------------------- gallery
def image_uint8(image: Any) -> np.ndarray:
    """``float [3, H, W]`` in [0, 1] (a mapped item's image) -> ``uint8 [H, W, 3]``."""
    arr = _np(image, np.float32)
    if arr.ndim == 3 and arr.shape[0] == 3:
        arr = arr.transpose(1, 2, 0)
    return (arr.clip(0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _panels_boxes(item, prediction, options) -> List[Tuple[Any, str]]:
    from unihema.evaluation.visualize import draw_detections

    img = image_uint8(item["image"])
    names = list(item.get("classes") or [])
    # draw_detections colours classes in order of first appearance; one off-canvas anchor
    # per prompted class, in prompt order, gives a class the same colour in every panel.
    anchors = [{"box": [-50.0, -50.0, -40.0, -40.0], "label": n, "score": 0.0}
               for n in names]
    truth = [{"box": b, "label": names[k], "score": 1.0}
             for b, k in zip(_np(item["boxes"]).reshape(-1, 4).tolist(),
                             _np(item["box_classes"], np.int64).reshape(-1).tolist())]
    thr = float(options.get("count_threshold", 0.5))
    pred = [{"box": b, "label": names[k], "score": s}
            for b, k, s in zip(_np(prediction["boxes"]).reshape(-1, 4).tolist(),
                               _np(prediction["classes"], np.int64).reshape(-1).tolist(),
                               _np(prediction["scores"]).reshape(-1).tolist()) if s >= thr]
    return [(draw_detections(img, anchors + truth, scale=2, legend=False),
             f"truth: {len(truth)} boxes"),
            (draw_detections(img, anchors + pred, scale=2, legend=False),
             f"prediction: {len(pred)} boxes (score >= {thr:g})")]


def _panels_mask(item, prediction, options) -> List[Tuple[Any, str]]:
    from unihema.evaluation.visualize import draw_mask

    img = image_uint8(item["image"])
    h, w = img.shape[:2]
    names = list(item.get("classes") or [])
    gt = np.clip(_np(item["mask"], np.int64), 0, None)
    pm = _np(prediction["mask"], np.int64)[:h, :w]
    return [(draw_mask(img, gt, names, scale=2), "truth"),
            (draw_mask(img, pm, names, scale=2), "prediction")]


def _panels_label(item, prediction, options) -> List[Tuple[Any, str]]:
    names = list(item.get("classes") or [])
    probs = _np(prediction["probs"]).reshape(-1)
    label = prediction.get("label")
    label = int(np.argmax(probs)) if label is None else int(label)
    true = int(item["label"])
    text = (f"truth: {names[true]} (p {probs[true]:.2f})\n"
            f"predicted: {names[label]} (p {probs[label]:.2f})")
    return [(image_uint8(item["image"]), text)]


def _panels_answer(item, prediction, options) -> List[Tuple[Any, str]]:
    question = "\n".join(textwrap.wrap(f"Q: {item.get('question', '')}", 38))
    return [(image_uint8(item["image"]), f"{question}\ntruth: {item.get('target', '')}\n"
                                         f"answer: {prediction.get('text', '')}")]


GALLERIES.register("boxes", Gallery("F1@0.5", _score_boxes, _panels_boxes, paired=True))
GALLERIES.register("mask", Gallery("Dice fg", _score_mask, _panels_mask, paired=True))
GALLERIES.register("label", Gallery("p(true)", _score_label, _panels_label))
GALLERIES.register("answer", Gallery("correct", _score_answer, _panels_answer))


def plot_gallery(task: str, best: Sequence[Tuple[float, Mapping[str, Any], Mapping[str, Any]]],
                 worst: Sequence[Tuple[float, Mapping[str, Any], Mapping[str, Any]]],
                 path: Path, *, title: str, options: Optional[Mapping[str, Any]] = None) -> Path:
    """Best and worst items, each ``(score, item dict, prediction)``, drawn as the task's
    gallery (``spec.gallery``) says.

    Paired galleries (detect, segment): one row per rank, columns best truth | best
    prediction | worst truth | worst prediction. Others (classify, vqa): a row of best items
    above a row of worst items, each captioned with the truth and the prediction.
    """
    if task not in gallery_tasks():
        raise ValueError(f"no gallery for task '{task}'; tasks: {', '.join(gallery_tasks())}")
    options = options or {}
    gallery = GALLERIES.get(get_task(task).gallery)
    score_name = gallery.score_name
    groups = [("best", list(best)), ("worst", list(worst))]
    paired = gallery.paired
    n = max(len(best), len(worst), 1)
    rows, cols = (n, 4) if paired else (2 if worst else 1, n)
    fig = Figure(figsize=(4.0 * cols, (4.4 if paired else 5.0) * rows))
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.flat:
        ax.axis("off")
    for g, (group, entries) in enumerate(groups):
        for r, (score, item, pred) in enumerate(entries):
            key = str(item.get("key", "")).rsplit("/", 1)[-1]
            head = f"{group} {r + 1}: {score_name} {score:.2f}\n{key}"
            for p, (picture, caption) in enumerate(gallery.panels(item, pred, options)):
                ax = axes[r, 2 * g + p] if paired else axes[g, r]
                ax.imshow(np.asarray(picture))
                ax.set_title(f"{head}\n{caption}" if paired and p == 0 else
                             caption if paired else head, fontsize=9)
                if not paired:
                    ax.text(0.0, -0.02, caption, transform=ax.transAxes, ha="left", va="top",
                            fontsize=9)
    if not best and not worst:
        axes[0, 0].text(0.5, 0.5, "no scored item", ha="center", va="center")
    fig.suptitle(f"{title}\nbest and worst items by {score_name}", fontsize=11)
    return save_png(fig, path, dpi=100)


def _draw_pr(evaluator, metrics, path, title) -> Optional[Path]:
    if not getattr(evaluator, "pr_curves", None):
        return None
    ap50 = {n: c["AP50"] for n, c in evaluator.per_class.items() if "AP50" in c}
    return plot_pr_curves(evaluator.pr_curves, path,
                          title=f"{title}\nprecision-recall at IoU 0.5", ap50=ap50)


def _confusion(pixels: bool) -> Callable[..., Optional[Path]]:
    def draw(evaluator, metrics, path, title) -> Optional[Path]:
        if not getattr(evaluator, "confusion", np.zeros(0)).size:
            return None
        return plot_confusion(
            evaluator.confusion, evaluator.class_names, path,
            title=f"{title}\n{'pixel ' if pixels else ''}confusion (rows: truth)",
            annotate="fraction" if pixels else "counts", what="pixels" if pixels else "items")
    return draw


def _draw_reliability(evaluator, metrics, path, title) -> Optional[Path]:
    if not getattr(evaluator, "reliability", None):
        return None
    return plot_reliability(evaluator.reliability, path, title=f"{title}\nreliability",
                            ece=metrics.get("ece"))


def _draw_risk_coverage(evaluator, metrics, path, title) -> Optional[Path]:
    if not getattr(evaluator, "risk_coverage", None):
        return None
    return plot_risk_coverage(evaluator.risk_coverage, path, title=f"{title}\nrisk-coverage",
                              aurc=metrics.get("aurc"))


PLOTS.register("pr", PlotKind("pr", _draw_pr))
PLOTS.register("confusion", PlotKind("confusion", _confusion(pixels=False)))
PLOTS.register("pixel_confusion", PlotKind("confusion", _confusion(pixels=True)))
PLOTS.register("reliability", PlotKind("reliability", _draw_reliability))
PLOTS.register("risk_coverage", PlotKind("risk_coverage", _draw_risk_coverage))


def evaluator_plots(task: str, evaluator: Any, metrics: Mapping[str, float], plot_dir: Path,
                    stem: str, title: str, *, best: Sequence = (), worst: Sequence = (),
                    options: Optional[Mapping[str, Any]] = None) -> Dict[str, Path]:
    """Every plot of the task (``spec.plots``) that the state of ``evaluator`` (after
    ``evaluate()``) supports, as ``plot_dir/<stem>-<kind>.png``; returns ``{kind: path}``
    with kinds ``pr`` (detect), ``confusion`` (classify, segment), ``reliability`` and
    ``risk_coverage`` (classify), ``roc`` and ``coverage_target`` (the ``open_set`` and
    ``selective`` evaluators, whose ``plots`` attribute replaces the task's) and
    ``gallery`` (when ``best`` holds items and the task has one; see :func:`plot_gallery`)."""
    plot_dir = Path(plot_dir)
    out: Dict[str, Path] = {}
    spec = get_task(task) if task in TASKS else None
    # an evaluator other than the task's own (a suite entry's ``evaluator``) names its plots
    keys = getattr(evaluator, "plots", None) or (spec.plots if spec else ())
    for key in keys:
        plot = PLOTS.get(key)
        path = plot.draw(evaluator, metrics, plot_dir / f"{stem}-{plot.kind}.png", title)
        if path is not None:
            out[plot.kind] = path
    if spec and spec.gallery and best:
        out["gallery"] = plot_gallery(task, best, worst, plot_dir / f"{stem}-gallery.png",
                                      title=title, options=options)
    return out


__all__ = [
    "GALLERIES", "PLOTS", "Gallery", "GalleryPicker", "PlotKind", "box_f1", "evaluator_plots",
    "gallery_tasks", "image_uint8", "item_score", "plot_confusion", "plot_gallery",
    "plot_pr_curves", "plot_reliability", "plot_risk_coverage", "save_png",
]
