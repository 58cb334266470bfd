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

Besides each task's own, classify has ``open_set`` (:class:`~.trust.OpenSetEvaluator`: known
versus unseen types, AUROC, FPR@95, AUPR) and ``selective`` (:class:`~.trust.
SelectiveEvaluator`: coverage at a target accuracy, referral, prediction-set coverage), which
a suite entry names with its ``evaluator`` key.

Each task's spec names its evaluator by this key (``unihema.tasks.get_task(t).evaluator``).
"""

from __future__ import annotations

from unihema.evaluation.classify import ClassifyEvaluator
from unihema.evaluation.detect import DetectEvaluator
from unihema.evaluation.morphology import MorphologyEvaluator
from unihema.evaluation.segment import SegmentEvaluator
from unihema.evaluation.text import MLMEvaluator, VQAEvaluator
from unihema.evaluation.trust import OpenSetEvaluator, SelectiveEvaluator

__all__ = [
    "ClassifyEvaluator", "DetectEvaluator", "MLMEvaluator", "MorphologyEvaluator",
    "OpenSetEvaluator", "SegmentEvaluator", "SelectiveEvaluator", "VQAEvaluator",
]
