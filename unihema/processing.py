"""The processor saved beside every checkpoint (``preprocessor_config.json``): resizing with
the scale rule of training, normalisation, padding, prompts, and outputs mapped back to the
original image. Implemented in :mod:`unihema.data.pipeline.processing` (the evaluation mapping
of the
data pipeline uses it too); this is its public name."""

from unihema.data.pipeline.processing import (PROCESSOR_NAME, SINGLE_CELL_TASKS, ImageLike,
                                     ProcessorConfig, ProcessorConfigError, UniHemaProcessor,
                                     nearest_resize, pad_images, resized_side, target_side,
                                     to_rgb_array)

__all__ = ["PROCESSOR_NAME", "SINGLE_CELL_TASKS", "ImageLike", "ProcessorConfig",
           "ProcessorConfigError", "UniHemaProcessor", "nearest_resize", "pad_images",
           "resized_side", "target_side", "to_rgb_array"]
