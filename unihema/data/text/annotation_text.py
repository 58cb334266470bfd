"""Questions and reports derived from a sample's annotations, so the text tasks (VQA, MLM) can
train and be scored on real images that come with boxes or labels but no text.

What is derived states only what the annotation states:

* a field with boxes: how many of each annotated type and of each broader term above it
  ("how many white blood cells" counts every white-cell type), presence of present types,
  absence and a zero count for up to two of the dataset's other classes, where a type that
  occurs once is (the 3x3 zone of its box centre), and the field report
  (:func:`~unihema.data.text.language.report_field`);
* a crop with a label: its type (asked of its lineage, "What type of red blood cell is this?"),
  one question per attribute, and the one-sentence description
  (:func:`~unihema.data.text.language.describe_cell`).

Samples that already carry questions or a report keep them. The choice of absent classes is
seeded by the sample's key, so the same sample always gets the same questions. A count is the
number of annotated objects: where a source leaves objects unannotated, the derived counts
inherit that gap (see docs/data_format.md, "Text derived from annotations").
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import List, Sequence

import numpy as np

from unihema.data import vocab

from unihema.data.text import language
from unihema.data.sample import QAPair, UnifiedSample


def _rng(sample: UnifiedSample) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(sample.key.encode("utf-8")))


def field_questions(sample: UnifiedSample, classes: Sequence[str] = ()) -> List[QAPair]:
    """Count, presence and location questions about the boxes of ``sample``; ``classes`` are
    the dataset's box classes, from which absent ones are asked about."""
    labels = list(sample.box_labels or [])
    counts: dict = {}
    for lab in labels:
        for name in [lab] + vocab.ancestors(lab):
            counts[name] = counts.get(name, 0) + 1
    rng = _rng(sample)
    absent = [c for c in dict.fromkeys(vocab.canonical(c) for c in classes) if c not in counts]
    qa = [language.qa_count(name, n) for name, n in sorted(counts.items())]
    qa += [language.qa_count(str(c), 0) for c in rng.permutation(absent)[:2]] if absent else []
    present = sorted(counts)
    qa += [language.qa_presence(str(c), True) for c in rng.permutation(present)[:2]]
    qa += ([language.qa_presence(str(c), False) for c in rng.permutation(absent)[:2]]
           if absent else [])
    boxes = np.asarray(sample.boxes, np.float32).reshape(-1, 4)
    for name, n in sorted(counts.items()):
        if n != 1:
            continue
        i = next(k for k, lab in enumerate(labels) if lab == name or vocab.is_a(lab, name))
        x0, y0, x1, y1 = boxes[i].tolist()
        where = language.location_name((x0 + x1) / 2, (y0 + y1) / 2, sample.width,
                                       sample.height)
        qa.append(language.qa_location(name, where))
    return qa


def crop_questions(sample: UnifiedSample) -> List[QAPair]:
    """The type of the crop's cell, asked of its lineage, and one question per attribute."""
    qa = [language.qa_type(language.lineage(sample.label), sample.label)]
    qa += [language.qa_attribute(k, v, "cell") for k, v in sorted((sample.attributes or {})
                                                                   .items())]
    return qa


def derive_text(sample: UnifiedSample, classes: Sequence[str] = ()) -> UnifiedSample:
    """``sample`` with ``qa`` and ``report`` derived from its boxes (a field) or its label (a
    crop) where it has none; unchanged when it has text already or nothing to derive it from.
    ``classes``: the dataset's box classes (absent ones are asked about)."""
    if sample.qa or sample.report:
        return sample
    if sample.boxes is not None and len(sample.box_labels or []):
        boxes = np.asarray(sample.boxes, np.float32).reshape(-1, 4).tolist()
        return dataclasses.replace(sample, qa=field_questions(sample, classes),
                                   report=language.report_field(sample.box_labels, boxes))
    if sample.label is not None and sample.boxes is None:
        return dataclasses.replace(
            sample, qa=crop_questions(sample),
            report=language.describe_cell(sample.label, sample.attributes or {}))
    return sample
