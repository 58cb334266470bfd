"""The training pipeline: from a record to the tensors of one task and a batch.

``processing`` (the resize rule, normalisation and padding saved beside every checkpoint as
``preprocessor_config.json``), ``transforms`` (augmentations), ``mapper`` (a record to one
task's item), ``collate`` (items to a batch) and ``sampler`` (the task mixture)."""
