"""The data pipeline: from a record to the tensors of one task and a batch.

``processing`` (the resize rule, normalisation and padding saved beside every checkpoint as
``preprocessor_config.json``), ``transforms`` (augmentations), ``mapper`` (a record to one
task's item, through its task spec), ``collate`` (items to a batch, by the specs' fields) and
``sampler`` (the task mixture). It sits above :mod:`unihema.tasks` and below the model:
records and text (:mod:`unihema.data`) < tasks < pipeline < modeling."""
