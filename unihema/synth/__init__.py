"""Procedural blood-smear generator: the embedded default dataset of unihema.

``render_field(seed, cfg)`` draws one field of view with exact truth for all six tasks
(boxes, semantic mask, white-cell attributes, single-cell crops, question/answer pairs and a
report); ``generate_dataset(root, cfg)`` writes a split folder that the ``synthetic_smear``
adapter reads back. See docs/synthetic.md for what is drawn and how.
"""

from unihema.synth.profiles import RED_MORPHOLOGIES, WHITE_PROFILES, WHITE_TYPES
from unihema.synth.field import (DETECT_CLASSES, MASK_VALUES, SEGMENT_CLASSES, CropTruth,
                                 FieldTruth, render_field)
from unihema.synth.writer import MANIFEST, field_seed, generate_dataset, to_samples

__all__ = [
    "CropTruth",
    "DETECT_CLASSES",
    "FieldTruth",
    "MANIFEST",
    "MASK_VALUES",
    "RED_MORPHOLOGIES",
    "SEGMENT_CLASSES",
    "WHITE_PROFILES",
    "WHITE_TYPES",
    "field_seed",
    "generate_dataset",
    "render_field",
    "to_samples",
]
