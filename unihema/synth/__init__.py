"""Procedural blood-smear generator: the embedded default dataset of unihema.

``render_field(seed, cfg)`` draws one field of view with exact truth for all six tasks
(boxes, semantic mask, white-cell attributes, single-cell crops, question/answer pairs and a
report); ``generate_dataset(root, cfg)`` writes a split folder that the ``synthetic_smear``
adapter reads back. ``make_field(width, height, um_per_px)`` renders a full-size camera field
and ``write_scan(out, size, um_per_px)`` streams a stitched scan into a tiled TIFF, both with
exact per-cell truth (``plan_smear`` lays the cells out in micrometres, so one layout renders at
any magnification). See docs/synthetic.md for what is drawn and how.
"""

from unihema.synth.profiles import RED_MORPHOLOGIES, WHITE_PROFILES, WHITE_TYPES
from unihema.synth.field import (DETECT_CLASSES, MASK_VALUES, SEGMENT_CLASSES, CropTruth,
                                 FieldTruth, render_field)
from unihema.synth.writer import MANIFEST, field_seed, generate_dataset, to_samples
from unihema.synth.layout import NATIVE_UM_PER_PX, SmearLayout, SmearSpec, plan_smear
from unihema.synth.smear import (FullField, make_field, render_layout, render_magnifications,
                                 truth_summary, write_field)
from unihema.synth.scan import write_scan

__all__ = [
    "CropTruth",
    "DETECT_CLASSES",
    "FieldTruth",
    "FullField",
    "MANIFEST",
    "MASK_VALUES",
    "NATIVE_UM_PER_PX",
    "RED_MORPHOLOGIES",
    "SEGMENT_CLASSES",
    "SmearLayout",
    "SmearSpec",
    "WHITE_PROFILES",
    "WHITE_TYPES",
    "field_seed",
    "generate_dataset",
    "make_field",
    "plan_smear",
    "render_field",
    "render_layout",
    "render_magnifications",
    "to_samples",
    "truth_summary",
    "write_field",
    "write_scan",
]
