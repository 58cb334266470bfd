"""Importing this module registers every task evaluator in :data:`~unihema.evaluation.EVALUATORS`.

==========  ==============================================  ==========================
task        evaluator                                       module
==========  ==============================================  ==========================
detect      :class:`~.detect.DetectEvaluator`               COCO AP, counting error
classify    :class:`~.classify.ClassifyEvaluator`           F1, balanced accuracy, ECE
segment     :class:`~.segment.SegmentEvaluator`             Dice, IoU
morphology  :class:`~.morphology.MorphologyEvaluator`       attribute accuracy, BLEU
vqa         :class:`~.text.VQAEvaluator`                    exact match, token F1
mlm         :class:`~.text.MLMEvaluator`                    masked-token accuracy
==========  ==============================================  ==========================

Each task's spec names its evaluator by this key (``unihema.tasks.get_task(t).evaluator``).
"""

from __future__ import annotations

from unihema.evaluation.classify import ClassifyEvaluator
from unihema.evaluation.detect import DetectEvaluator
from unihema.evaluation.morphology import MorphologyEvaluator
from unihema.evaluation.segment import SegmentEvaluator
from unihema.evaluation.text import MLMEvaluator, VQAEvaluator

__all__ = [
    "ClassifyEvaluator", "DetectEvaluator", "MLMEvaluator", "MorphologyEvaluator",
    "SegmentEvaluator", "VQAEvaluator",
]
