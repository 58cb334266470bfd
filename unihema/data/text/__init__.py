"""Text: the canonical wording of readings, reports, questions and answers (``language``) and
text derived from a record's annotations (``annotation_text``). Prompts belong to the task
specs (:mod:`unihema.tasks.prompts`)."""
