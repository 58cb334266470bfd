"""Data: the unified record, vocabulary, prompts, decoding, augmentation, batching, adapters."""

from unihema.data.sample import TASKS, QAPair, UnifiedSample

__all__ = ["TASKS", "QAPair", "UnifiedSample"]
