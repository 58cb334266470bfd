"""Shared parts of the whole-smear benchmark (``experiments/bench_smear.py``): settings, the
pipeline, a detector that reports truth boxes, the analysis grid and markdown tables."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


FIELD = (1920, 1440)
UM_PER_PX = 0.12
#: composition of the accuracy fields: enough white cells for a differential over 5 fields
#: (~20 a field) and ring forms in 2 % of the red cells
SPEC = dict(white_per_100_red=5.0, parasitaemia=0.02)
#: the base model's size (configs/_base_/models/base.yaml) over the demo preset's reading
BASE_MODEL = ["model.d_model=256", "model.backbone={depth: 50, width: 64, norm: frozen_batch}",
              "model.encoder={layers: 6, heads: 8, ffn: 1024, levels: [C4, C5]}",
              "model.text={d_model: 768, d_kv: 64, d_ff: 2048, num_layers: 12, "
              "num_decoder_layers: 12, num_heads: 12, max_prompt_tokens: 160, copy: true}",
              "model.fusion={layers: 2, heads: 8, levels: [C3, C4, C5], queries: 32, "
              "query_layers: 2}", "model.heads.dense_dim=128", "model.heads.embed_dim=128"]
#: detection scores at which ``threshold`` reports what is found
THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
#: the least F1 at which ``threshold`` sets a lineage's threshold
MIN_F1 = 0.5


# ----------------------------------------------------------------------------- helpers
def load_pipeline(model_dir: str = "", image_size: int = 256, preset: str = "demo",
                  overrides: Sequence[str] = (), device: str = "cpu"):
    """A saved pipeline, or a random model of ``preset`` (``unihema/presets``)."""
    import torch

    from unihema.api import UniHemaPipeline
    from unihema.config import load_config
    from unihema.modeling.model import UniHema

    if model_dir:
        pipe = UniHemaPipeline.from_pretrained(model_dir)
    else:
        torch.manual_seed(0)
        cfg = load_config(str(REPO / "unihema" / "presets" / f"{preset}.yaml"), list(overrides))
        pipe = UniHemaPipeline(UniHema.from_config(cfg), image_size=image_size)
    pipe.model.to(device).eval()
    return pipe


def truth_detector(cells: Sequence[Dict[str, Any]], min_visible: float = 0.3):
    """The truth boxes of ``cells`` as an injected detector
    (:func:`unihema.analysis.truth.truth_detector`)."""
    from unihema.analysis.truth import truth_detector as detector

    return detector(cells, min_visible)


def by_field(detectors: Dict[str, Any]):
    """One injected detector from one per field name."""
    return lambda name, window: detectors[name](name, window)


def analysis_grid(pipe, width: int, height: int, um_per_px: float):
    """The tile grid :func:`unihema.analysis.run.analyze` lays over a field at ``um_per_px``."""
    from unihema.analysis.run import LARGEST_CELL_UM, model_um_per_px
    from unihema.analysis.tiles import grid_for_model

    model_um = model_um_per_px(pipe)
    tile = int(pipe.image_size)
    overlap = min(tile // 2, int(math.ceil(LARGEST_CELL_UM / model_um)))
    return grid_for_model(width, height, tile, overlap, um_per_px / model_um)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v):
        if v is None:
            return "—"
        return f"{v:.2f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows])


def lineage_rows(scored: Dict[str, Any], name: str) -> List[List[Any]]:
    return [[name, lin, v["truth"], v["found"], v["error_pct"], v["found_once"], v["missed"],
             v["doubled"], v["extra"]] for lin, v in scored["lineages"].items()]


LINEAGE_HEADER = ("smear", "lineage", "truth", "found", "count error %", "found once",
                  "missed", "doubled", "extra")
