"""Text and prompts: the canonical wording of readings, reports, questions and answers
(``language``), the prompt front of the task specs (``prompts``) and text derived from a
record's annotations (``annotation_text``)."""
