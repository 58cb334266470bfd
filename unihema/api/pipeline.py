"""One image (a path, a PIL image or an ``[H, W, 3]`` uint8 array) in, task results out.

Results are in the coordinates of the original image: boxes are absolute ``xyxy`` pixels of
the image as given, masks have its height and width.

Every result is a dict with ``"warnings"``: ``[{"code": str, "message": str}]``, the reasons
not to trust it as it stands (:data:`unihema.api.checks.WARNINGS`, docs/model.md "Warnings").
Text answers carry ``"confidence"``: the probability the decoder gave the answer it wrote
(the product of its token probabilities, in [0, 1]).

A model folder holding a trust state (``trust.json`` + ``trust.safetensors``, written by
``unihema trust fit``; :class:`unihema.trust.TrustState`) loads it as :attr:`UniHemaPipeline.
trust`: :meth:`~UniHemaPipeline.classify` then gives the conformal prediction set and the
unknown-cell score, and :meth:`~UniHemaPipeline.analyze` judges every cell it covers.

Inputs are checked before the model runs: a file goes through :func:`unihema.data.io.read_image`
(missing, empty, corrupt, too large: an ``ImageReadError`` naming it); an array must be
``uint8 [H, W]``, ``[H, W, 3]`` or ``[H, W, 4]`` with at least one pixel and within the pixel
limit (``ValueError``); a question or text must be a ``str`` (``TypeError``).

Peak memory for a large input stays near the decoded image plus the result: the image is
resized to the model's scale before it becomes float, and a segmentation mask is computed at
that scale and enlarged as class indices, never as ``[C, H, W]`` scores at full size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from unihema.api import checks
from unihema.data import image_stats
from unihema.data.text import language
from unihema.modeling.model import UniHema
from unihema.modeling.reading import ReadingCascade
# the input conversion and the mask enlargement are the processor's (re-exported here)
from unihema.pipeline.processing import (ImageLike, ProcessorConfig,  # noqa: F401
                                         UniHemaProcessor, nearest_resize, single_cell,
                                         to_rgb_array)
from unihema.trust.state import TrustState

#: Class lists used when a checkpoint does not record its own.
DEFAULT_CLASSES = {
    "detect": ["red blood cell", "white blood cell", "platelet", "ring form"],
    "segment": ["background", "red blood cell", "nucleus", "cytoplasm", "platelet",
                "malaria parasite"],
}


def resolve_device(device: Union[str, torch.device]) -> torch.device:
    """``device`` as a ``torch.device`` that exists on this machine, or a ``ValueError``
    naming it and the choices (``cpu``, ``cuda``, ``cuda:N``, ``mps``)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device '{device}' is not a torch device; use cpu, cuda, cuda:N or "
                         f"mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device '{device}': CUDA is not available on this machine (torch "
                             f"{torch.__version__}, {torch.cuda.device_count()} GPUs "
                             f"visible); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device '{device}': only {torch.cuda.device_count()} CUDA "
                             f"device(s) visible (cuda:0 ..)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device '{device}': MPS is not available on this machine; use cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device '{device}' is not supported; use cpu, cuda, cuda:N or mps")
    return dev


def _check_text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__} {value!r:.60}")
    return value


class UniHemaPipeline:
    """Wraps a :class:`UniHema` model with the preprocessing it was trained with
    (:class:`~unihema.pipeline.processing.UniHemaProcessor`) and the reading its text tasks answer
    from (:class:`~unihema.modeling.reading.ReadingCascade`).

    ``processor`` gives the preprocessing; without one it is built from ``image_size``,
    ``upscale``, ``crop_size`` and the model's ``backbone.small_side``.
    """

    def __init__(self, model: UniHema, *, image_size: int = 256, upscale: bool = False,
                 classes: Optional[Dict[str, List[str]]] = None, crop_size: int = 0,
                 meta: Optional[Dict[str, Any]] = None,
                 device: Union[str, torch.device] = "cpu",
                 processor: Optional[UniHemaProcessor] = None,
                 trust: Optional[TrustState] = None) -> None:
        #: where the model runs; inputs are moved there, results come back as CPU values
        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        self.processor = processor or UniHemaProcessor(ProcessorConfig(
            image_size=int(image_size), upscale=bool(upscale), crop_size=int(crop_size),
            small_side=int(model.trunk.small_side)))
        #: what the text tasks read of an image (cached by image content)
        self.cascade = ReadingCascade(self.model, processor=self.processor)
        self.classes = {**DEFAULT_CLASSES, **(classes or {})}
        #: the checkpoint's metadata (``image_stats``: what the training images looked like)
        self.meta = dict(meta or {})
        #: the trust state of the model folder (calibration, conformal sets, unknown score,
        #: referral), or None
        self.trust = trust

    @property
    def image_size(self) -> int:
        return self.processor.config.image_size

    @property
    def upscale(self) -> bool:
        return self.processor.config.upscale

    @property
    def crop_size(self) -> int:
        """The single-cell image of classify / morphology is resized to this side (0: native)."""
        return self.processor.config.crop_size

    @classmethod
    def from_pretrained(cls, directory: Union[str, Path],
                        device: Union[str, torch.device] = "cpu") -> "UniHemaPipeline":
        """Load a ``save_pretrained`` folder (weights and ``preprocessor_config.json``, or for
        an older folder the settings of its ``config.json``) to run on ``device`` (checked
        before loading), with the folder's trust state when it has one."""
        device = resolve_device(device)
        processor = UniHemaProcessor.from_pretrained(directory)
        model = UniHema.from_pretrained(directory)
        meta = getattr(model, "checkpoint_meta", {})
        return cls(model, classes=meta.get("classes"), meta=meta, device=device,
                   processor=processor, trust=TrustState.load(directory))

    @property
    def score_threshold(self) -> float:
        """The one detection threshold: what :meth:`detect` keeps by default and what the
        reading counts (``model.reading.score_threshold``), so a count in an answer is the
        count :meth:`detect` finds."""
        return float(self.model.config.reading.score_threshold)

    # ------------------------------------------------------------------ plumbing
    def _prepare(self, image: ImageLike, task: str, prompt: str, **item: Any
                 ) -> Tuple[Dict[str, Any], List[Dict[str, str]]]:
        """The one-item batch of ``image`` for ``task`` and the warnings about the input."""
        arr = to_rgb_array(image)
        h, w = arr.shape[:2]
        single = single_cell(task)  # classify and describe take a single-cell image
        side = self.processor.side(max(h, w), single)
        # the reading (and so a text answer) takes a small image for a single cell
        warnings = checks.image_warnings(
            h, w, side, self.meta, self.processor.kind(side, single),
            image_stats.compare(arr, self.meta.get("image_stats"),
                                self.processor.kind(side, single)))
        batch = self.processor.collate([self.processor.item(arr, task, prompt, **item)])
        del arr
        if self.device.type != "cpu":
            from unihema.engine.utils import to_device

            batch = to_device(batch, self.device)
        return batch, warnings

    def _batch(self, image: ImageLike, task: str, prompt: str, **item: Any) -> Dict[str, Any]:
        return self._prepare(image, task, prompt, **item)[0]

    def _predict(self, batch: Dict[str, Any]) -> List[Dict[str, Any]]:
        """The model's predictions, the text tasks' prompts carrying its reading."""
        return self.cascade.predict(batch)

    # ------------------------------------------------------------------ tasks
    def ask(self, image: ImageLike, question: str) -> Dict[str, Any]:
        """``{"answer": str, "confidence": float, "warnings": [...]}``: a free-text answer
        to ``question`` about the image and the probability the model gave it. Warns on a
        question of a kind it was not trained on and on an answer of the wrong kind."""
        _check_text(question, "question")
        batch, warnings = self._prepare(
            image, "vqa", self.processor.prompt("vqa", question=question), question=question)
        pred = self._predict(batch)[0]
        warnings += checks.question_warnings(question)
        warnings += checks.answer_warnings(question, pred["text"])
        return {"answer": pred["text"], "confidence": round(pred["confidence"], 4),
                "warnings": warnings}

    def detect(self, image: ImageLike, classes: Optional[Sequence[str]] = None,
               min_score: Optional[float] = None) -> Dict[str, Any]:
        """``{"objects": [{"box": [x0, y0, x1, y1], "label", "score"}], "counts": {label:
        n}, "warnings": [...]}``; ``min_score`` defaults to :attr:`score_threshold`."""
        names, warnings = checks.check_labels(classes if classes is not None
                                              else self.classes["detect"], "classes")
        threshold = self.score_threshold if min_score is None else float(min_score)
        batch, image_warnings = self._prepare(
            image, "detect", self.processor.prompt("detect", classes=names), classes=names)
        pred = self._predict(batch)[0]
        scale = batch["scales"][0]
        out = []
        for box, score, k in zip(pred["boxes"].tolist(), pred["scores"].tolist(),
                                 pred["classes"].tolist()):
            if score >= threshold:
                original = self.processor.box_to_original(box, scale)
                out.append({"box": [round(v, 1) for v in original], "label": names[k],
                            "score": round(score, 4)})
        counts = {n: sum(o["label"] == n for o in out) for n in names}
        return {"objects": out, "counts": counts, "min_score": threshold,
                "warnings": image_warnings + warnings}

    def segment(self, image: ImageLike, classes: Optional[Sequence[str]] = None
                ) -> Dict[str, Any]:
        """``{"mask": int64 [H, W] indices into "classes", "classes": [...], "warnings"}``.
        ``classes`` must start with ``"background"``: index 0 of the mask is background, as
        in training."""
        names, warnings = checks.check_labels(classes if classes is not None
                                              else self.classes["segment"], "classes")
        if names[0] != "background":
            raise ValueError(f"classes must start with 'background' (mask index 0 is the "
                             f"background, as the model was trained), got {names}; write "
                             f"{['background'] + [n for n in names if n != 'background']}")
        batch, image_warnings = self._prepare(
            image, "segment", self.processor.prompt("segment", classes=names), classes=names)
        mask = self._predict(batch)[0]["mask"]
        original = self.processor.mask_to_original(mask, batch["orig_sizes"][0],
                                                   batch["scales"][0])
        return {"mask": original, "classes": names,
                "warnings": image_warnings + warnings}

    def _classify_pred(self, image: ImageLike, names: List[str]
                       ) -> Tuple[Dict[str, Any], List[Dict[str, str]]]:
        batch, image_warnings = self._prepare(
            image, "classify", self.processor.prompt("classify", classes=names), classes=names,
            label=0)
        return self._predict(batch)[0], image_warnings

    def classify(self, image: ImageLike, labels: Sequence[str]) -> Dict[str, Any]:
        """``{"label": str, "probs": {label: p}, "warnings": [...]}`` over the candidate
        ``labels`` (a list of distinct names; one label warns: it always scores 1).

        With a trust state (:attr:`trust`) the result also holds ``"prediction_set"``
        (types, most probable first), ``"unknown_score"`` (higher: less like any trained
        type), ``"unknown"``, ``"needs_review"`` and ``"reason"`` (:class:`unihema.trust.
        CellTrust`):

        * ``labels`` are the state's classes (any order): ``probs`` are the state's
          calibrated probabilities and ``label`` its most probable class;
        * ``labels`` a proper subset of them: ``label`` and ``probs`` are read over
          ``labels`` as without a state; the trust fields come from a second reading over
          all the state's classes (what it was fitted on), the set kept to ``labels`` (its
          coverage then holds for cells whose type is among ``labels``); a set holding none
          of them is empty and warns ``trust_set_outside_labels``;
        * other ``labels`` (a name the state does not know): the trust fields are ``None``
          and ``trust_not_covered`` warns.
        """
        names, warnings = checks.check_labels(labels, "labels", allow_single=False)
        pred, image_warnings = self._classify_pred(image, names)
        probs = {n: round(float(p), 4) for n, p in zip(names, pred["probs"])}
        out = {"label": names[pred["label"]], "probs": probs,
               "warnings": image_warnings + warnings}
        if self.trust is not None:
            out.update(self._trust_fields(image, names, pred, out))
        return out

    def _trust_fields(self, image: ImageLike, names: List[str], pred: Dict[str, Any],
                      out: Dict[str, Any]) -> Dict[str, Any]:
        """The trust state's verdict for :meth:`classify` (see there)."""
        state = self.trust
        none = {"prediction_set": None, "unknown_score": None, "unknown": None,
                "needs_review": None, "reason": ""}
        known = set(state.classes)
        if not set(names) <= known:
            out["warnings"].append(checks.warning(
                "trust_not_covered", f"the trust state covers {state.classes}; "
                f"{sorted(set(names) - known)} are not among them"))
            return none
        full = set(names) == known
        if not full:
            pred = self._classify_pred(image, list(state.classes))[0]
        item_classes = names if full else list(state.classes)
        logits = state.align(pred["logits"].float().cpu()[None], item_classes)
        emb = pred.get("embedding")
        verdict = state.assess(logits, None if emb is None else emb.float().cpu()[None])[0]
        result = {"prediction_set": list(verdict.prediction_set),
                  "unknown_score": round(float(verdict.unknown_score), 4),
                  "unknown": verdict.unknown, "needs_review": verdict.refer,
                  "reason": verdict.reason}
        if full:
            result.update(label=verdict.label,
                          probs={n: round(float(verdict.probs[n]), 4) for n in names})
        else:
            kept = [c for c in verdict.prediction_set if c in names]
            if not kept:
                out["warnings"].append(checks.warning(
                    "trust_set_outside_labels", f"the set over all the state's classes is "
                    f"{verdict.prediction_set}, none of {names}"))
            result["prediction_set"] = kept
        return result

    def describe(self, image: ImageLike, labels: Optional[Sequence[str]] = None
                 ) -> Dict[str, Any]:
        """Morphology of a single-cell image: ``{"attributes": {...}, "attribute_confidence":
        {...}, "label": type or None, "text": str, "generated": str, "confidence": float,
        "warnings": [...]}``.

        ``label`` is the classify head's choice among ``labels`` (default: the cell types
        of ``model.reading.types``; ``None`` when there are none). ``generated`` is the
        decoder's sentence and ``confidence`` its probability; ``text`` is that sentence
        when it agrees with the attributes and the label, else one written from them
        (:func:`unihema.data.text.language.describe_cell`) with a ``description_rewritten``
        warning naming what disagreed."""
        batch, warnings = self._prepare(image, "morphology",
                                        self.processor.prompt("morphology"),
                                        attributes={}, target="")
        pred = self._predict(batch)[0]
        attributes, generated = pred["attributes"], pred.get("text", "")
        label = None
        if labels is None and self.model.config.reading.types:
            labels = self.cascade.reader.cell_labels or None
        if labels is not None and "classify" in self.model.heads:
            names, label_warnings = checks.check_labels(labels, "labels", allow_single=False)
            warnings += label_warnings
            label = self.classify(image, names)["label"]
        text = generated
        conflicts = checks.description_conflicts(generated, attributes, label)
        if conflicts:
            text = language.describe_cell(label, attributes)
            warnings.append(checks.warning(
                "description_rewritten", f"the generated sentence {generated!r} disagrees "
                f"with the prediction ({'; '.join(conflicts)}); written from the attributes "
                f"instead"))
        return {"attributes": attributes,
                "attribute_confidence": {a: round(p, 4) for a, p in
                                         pred.get("attribute_confidence", {}).items()},
                "label": label, "text": text, "generated": generated,
                "confidence": round(pred.get("confidence", 0.0), 4), "warnings": warnings}

    def fill(self, image: ImageLike, text_with_sentinels: str) -> Dict[str, Any]:
        """Fill ``<extra_id_N>`` spans of a report: ``{"text": the completed text,
        "confidence": probability of the generated spans, "warnings": [...]}``."""
        _check_text(text_with_sentinels, "text_with_sentinels")
        batch, warnings = self._prepare(
            image, "mlm", self.processor.prompt("mlm", text=text_with_sentinels), target="",
            masked_text=text_with_sentinels)
        pred = self._predict(batch)[0]
        return {"text": language.unmask(text_with_sentinels, pred["text"]),
                "confidence": round(pred["confidence"], 4), "warnings": warnings}

    def analyze(self, inputs: Any, **options: Any):
        """Whole-smear analysis (:func:`unihema.analysis.run.analyze`) -> ``SmearAnalysis``."""
        from unihema.analysis.run import analyze

        return analyze(self, inputs, **options)

    def patient(self, cells_or_analysis: Any, encoder: Any, **options: Any) -> Dict[str, Any]:
        """Patient-level verdict of one patient's cells (single-cell images, a folder of them,
        or a ``SmearAnalysis``) by a patient ``encoder`` (folder or ``PatientEncoder``):
        diagnosis probabilities, patient embedding, top-attention cells
        (:func:`unihema.patient.verdict.patient_verdict`, docs/patient.md)."""
        from unihema.patient.verdict import patient_verdict, public

        return public(patient_verdict(self, cells_or_analysis, encoder, **options))

    def read(self, image: ImageLike) -> Dict[str, Any]:
        """What the model sees on the image, as its text tasks are told (``model.reading``):
        ``{"entries": [{"text": "32 red blood cells", "confidence": 0.71}, ...], "report":
        str, "warnings": [...]}`` for a field (counts at :attr:`score_threshold`); the type
        and attributes for a single cell. No entries for a model trained without
        ``model.reading``. An entry's confidence: :mod:`unihema.modeling.reading`."""
        batch, warnings = self._prepare(image, "vqa", "")
        if not self.model.config.reading.tasks:
            return {"entries": [], "report": "", "warnings": warnings}
        reading = self.cascade.reader(batch["images"], batch["pixel_mask"])[0]
        entries = [{"text": text, "confidence": round(float(c), 4)}
                   for (_, text), c in zip(reading["entries"], reading["confidences"])]
        return {"entries": entries, "report": reading["report"], "warnings": warnings}
