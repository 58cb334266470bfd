"""The user-facing Python API: load a checkpoint, ask about an image.

    from unihema.api import UniHemaPipeline
    pipe = UniHemaPipeline.from_pretrained("runs/demo/model")
    pipe.ask("smear.png", "How many platelets are in the image?")
    # -> {"answer": "3", "confidence": 0.93, "warnings": []}
    pipe.detect("smear.png")       # objects (boxes in original pixels), counts, warnings
    pipe.segment("smear.png")      # [H, W] class indices + class names ("background" first)
    pipe.classify("cell.png", ["lymphocyte", "monocyte"])   # label + probabilities
    pipe.describe("cell.png")      # attributes + a sentence that agrees with them

Every result is a dict with ``"warnings"`` (``[{"code", "message"}]``, docs/model.md).
"""

from unihema.api.pipeline import UniHemaPipeline

__all__ = ["UniHemaPipeline"]
