"""unihema: a unified, multi-task vision-language foundation model for digital hematopathology.

One model sees a blood-smear image and a text prompt and detects, classifies and segments cells,
predicts morphology, fills masked report spans and answers questions. See README.md and docs/.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
