"""The pieces together on a rendered synthetic field: tile it, detect on each tile (an oracle
that boxes what each tile shows of every true cell), merge across seams, measure, summarise;
every cell is counted once and the summary matches the truth."""

from __future__ import annotations

from collections import Counter

import numpy as np

from unihema.analysis import (CellRecord, Detections, TileGrid, estimate_um_per_px,
                              iter_tiles, lineage_of, measure_instances, merge_tiles,
                              open_source, summarize)
from unihema.analysis.scale import diameters_from_boxes
from unihema.config.schema import SynthConfig
from unihema.synth import render_field


def _oracle(tile_box, boxes, labels, min_visible=0.3):
    x0, y0, x1, y1 = tile_box
    out_b, out_l = [], []
    for (bx0, by0, bx1, by1), label in zip(boxes, labels):
        c = [max(bx0, x0), max(by0, y0), min(bx1, x1), min(by1, y1)]
        if c[2] <= c[0] or c[3] <= c[1]:
            continue
        if (c[2] - c[0]) * (c[3] - c[1]) >= min_visible * (bx1 - bx0) * (by1 - by0):
            out_b.append(c)
            out_l.append(label)
    return Detections(np.array(out_b, float).reshape(-1, 4), np.array(out_l, object),
                      np.ones(len(out_b)))


def test_a_rendered_field_tiled_merged_and_summarised():
    field = render_field(11, SynthConfig(size=640, max_red_cells=250, parasite_prob=1.0))
    boxes, labels = field.boxes.astype(float), list(field.labels)
    largest = float((boxes[:, 2:] - boxes[:, :2]).max())
    grid = TileGrid(640, 640, 160, int(largest) + 4)
    assert len(grid) > 9
    with open_source(field.image) as src:
        per_tile = [_oracle(t.tile.box, boxes, labels) for t in iter_tiles(src, grid)]
    merged = merge_tiles(grid, per_tile)
    assert len(merged) == len(labels)
    assert Counter(merged.labels.tolist()) == Counter(labels)
    found = {tuple(b) for b in merged.boxes.round(3).tolist()}
    assert found == {tuple(b) for b in boxes.round(3).tolist()}

    red = np.array([lineage_of(lab) == "red blood cell" for lab in merged.labels])
    scale = estimate_um_per_px(diameters_from_boxes(merged.boxes[red]))
    assert scale.plausible
    measured = measure_instances(field.instances, scale.um_per_px)
    assert len(measured) >= int(red.sum())
    cells = [CellRecord(i, "field-11", tuple(b), lineage_of(lab), lab)
             for i, (b, lab) in enumerate(zip(merged.boxes, merged.labels))]
    summary = summarize(cells, scale=scale)
    assert summary.is_smear
    truth = Counter(lineage_of(lab) for lab in labels)
    assert summary.lineages == dict(sorted(truth.items()))
    rings = [b for b, lab in zip(boxes, labels) if lab == "ring form"]
    hosts = {i for i, (b, lab) in enumerate(zip(boxes, labels))
             if lineage_of(lab) == "red blood cell"
             and any(b[0] <= (r[0] + r[2]) / 2 < b[2] and b[1] <= (r[1] + r[3]) / 2 < b[3]
                     for r in rings)}
    assert rings and summary.parasitaemia.count == len(hosts)
