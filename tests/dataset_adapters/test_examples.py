"""The example-writing helpers produce files the format readers read back exactly."""

from __future__ import annotations

import numpy as np
import pytest

from dataset_adapters import _examples as ex
from unihema.data import io
from unihema.data.formats import (
    mask_values_present,
    read_coco,
    read_csv_table,
    read_points,
    read_voc,
    read_yolo,
    yolo_to_xyxy,
)


def test_images_in_every_format(tmp_path):
    boxes = ex.layout_boxes(96, 80, 4, size=20, seed=1)
    assert len(boxes) == 4 and all(0 <= b[0] < b[2] <= 96 and 0 <= b[1] < b[3] <= 80
                                   for b in boxes)
    for suffix in ("jpg", "png", "bmp", "tif"):
        p = ex.write_smear(tmp_path / "sub" / f"a.{suffix}", 96, 80, boxes,
                           ["RBC", "WBC", "Platelets", "RBC"])
        assert io.image_size(p) == (96, 80) and io.read_image(p).shape == (80, 96, 3)
    img = ex.smear_image(96, 80, boxes, ["RBC", "WBC", "Platelets", "RBC"])
    x0, y0, x1, y1 = (int(v) for v in boxes[1])
    centre = img[(y0 + y1) // 2, (x0 + x1) // 2].astype(int)
    assert centre.sum() < img[0, 0].astype(int).sum() - 100  # a dark nucleus, pale background
    assert ex.cell_crop(64).shape == (64, 64, 3)
    with pytest.raises(ValueError, match="do not fit"):
        ex.layout_boxes(30, 30, 10, size=20)


def test_annotations_round_trip(tmp_path):
    p = ex.write_voc(tmp_path / "a.xml", "a.jpg", 96, 80, [("RBC", (1, 2, 30, 40))])
    ann = read_voc(p)
    assert ann.objects[0].name == "RBC" and ann.objects[0].box == (0, 1, 30, 40)
    row = ex.yolo_row(2, (10, 20, 30, 60), 100, 80, 1, 4)
    (b,) = read_yolo(ex.write_yolo(tmp_path / "a.txt", [row]), num_attributes=2)
    assert b.cls == 2 and b.attributes == (1, 4)
    assert yolo_to_xyxy(b, 100, 80) == pytest.approx((10, 20, 30, 60), abs=1e-3)
    assert read_yolo(ex.write_yolo(tmp_path / "e.txt", [])) == []
    pts = read_points(ex.write_points(tmp_path / "p.txt", [(3, 4, 0), (5, 6, 12)]), True)
    assert [(q.x, q.y, q.cls) for q in pts] == [(3, 4, "0"), (5, 6, "12")]
    rows = read_csv_table(ex.write_csv(tmp_path / "c.csv", ["image ID", "class"], [[1, 2]],
                                       line_end="\r\n"), ["class"])
    assert rows[0]["class"] == "2"
    coco = ex.write_coco(tmp_path / "c.json", [{"id": 1, "file_name": "a.jpg", "width": 9,
                                                 "height": 8}],
                         [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 1, 2, 2]}],
                         [{"id": 3, "name": "WBC"}])
    assert read_coco(coco).annotations(1)[0].box == (1, 1, 3, 3)


def test_masks(tmp_path):
    m = ex.ellipse_mask(40, 50, [(5, 5, 35, 35)], [128], nucleus_value=255)
    assert m.shape == (40, 50) and set(np.unique(m)) == {0, 128, 255}
    assert mask_values_present(ex.write_mask(tmp_path / "m.png", m)) == {0, 128, 255}
    big = np.zeros((4, 4), np.int32)
    big[0, 0] = 300
    assert mask_values_present(ex.write_mask(tmp_path / "b.png", big)) == {0, 300}
