"""The user-facing Python API: load a checkpoint, ask about an image.

    from unihema.api import UniHemaPipeline
    pipe = UniHemaPipeline.from_pretrained("runs/demo/model")
    pipe.ask("smear.png", "How many platelets are in the image?")     # -> "3"
    pipe.detect("smear.png")                      # boxes in original pixels, labels, scores
    pipe.segment("smear.png")                     # [H, W] class indices + class names
    pipe.classify("cell.png", ["lymphocyte", "monocyte"])   # label + probabilities
    pipe.describe("cell.png")                     # attributes + a sentence
"""

from unihema.api.pipeline import UniHemaPipeline

__all__ = ["UniHemaPipeline"]
