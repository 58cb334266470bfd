"""Whole-smear analysis, the model-independent part: tiling an image of any size and reading
it tile by tile (:mod:`.tiles`), merging detections across tile seams (:mod:`.merge`),
estimating the scale from red-cell size (:mod:`.scale`), measuring cells from their masks
(:mod:`.measure`), the cell record, its review and its files (:mod:`.records`), the per-smear
statistics with their JSON and CSV tables (:mod:`.summary`) and the smear-level review flags
(:mod:`.flags`).

Coordinates are pixels of the original image, boxes ``(x0, y0, x1, y1)`` with exclusive ends;
lengths in micrometres need the image's scale (um/px).
"""

from unihema.analysis.measure import Measurements, measure_cell, measure_instances
from unihema.analysis.merge import Detections, Merged, merge_tiles
from unihema.analysis.records import (CellRecord, read_cells_jsonl, write_cells_csv,
                                      write_cells_jsonl)
from unihema.analysis.scale import ScaleEstimate, estimate_um_per_px
from unihema.analysis.summary import SmearSummary, lineage_of, summarize, wilson
from unihema.analysis.tiles import (TileGrid, iter_tiles, open_source, rescale_tile,
                                    scale_factor)

__all__ = ["CellRecord", "Detections", "Measurements", "Merged", "ScaleEstimate",
           "SmearSummary", "TileGrid", "estimate_um_per_px", "iter_tiles", "lineage_of",
           "measure_cell", "measure_instances", "merge_tiles", "open_source",
           "read_cells_jsonl", "rescale_tile", "scale_factor", "summarize", "wilson",
           "write_cells_csv", "write_cells_jsonl"]
