"""Readers of the native annotation formats of public hematology datasets.

Pure parsing, no knowledge of any dataset: adapters in ``dataset_adapters/`` combine these
readers with a dataset's layout and label map. Every reader raises
:class:`unihema.data.catalog.DataError` naming the file, the line or field and what was
expected. Boxes are float ``(x0, y0, x1, y1)`` pixel edges.

========================  ==========================================================
format                    reader
========================  ==========================================================
Pascal VOC XML            :func:`read_voc`, :func:`voc_image_size` (``<size>`` vs the image)
COCO JSON                 :func:`read_coco`, :func:`coco_mask` (polygons, RLE)
YOLO txt                  :func:`read_yolo`, :func:`yolo_to_xyxy`, :func:`read_yolo_names`
                          :func:`find_names_files`, :func:`resolve_yolo_names`
point labels              :func:`read_points`, :func:`points_to_boxes`
folder per class          :func:`scan_class_folders`
CSV tables                :func:`read_csv_table`
detection CSV (box a row) :func:`read_box_csv`
semantic / instance masks :func:`unihema.data.io.read_mask`, :func:`mask_values_present`,
                          :func:`merge_instance_masks`
Supervisely JSON          :func:`read_supervisely`
BBBC JSON                 :func:`read_bbbc_json`
MedMNIST NPZ              :func:`read_medmnist_npz` (images as ``<file.npz>::<array>/<i>``)
========================  ==========================================================
"""

from unihema.data.formats.bbbc import BBBCImage, BBBCObject, read_bbbc_json
from unihema.data.formats.boxcsv import BOX_COLUMNS, CsvBox, box_columns, read_box_csv
from unihema.data.formats.coco import (
    CocoAnnotation,
    CocoImage,
    CocoIndex,
    coco_mask,
    read_coco,
)
from unihema.data.formats.folders import IMAGE_EXTENSIONS, scan_class_folders
from unihema.data.formats.masks import (
    mask_value_counts,
    mask_values_present,
    merge_instance_masks,
)
from unihema.data.formats.medmnist import npz_image_path, read_medmnist_npz
from unihema.data.formats.points import Point, points_to_boxes, read_points
from unihema.data.formats.supervisely import (
    SuperviselyAnnotation,
    SuperviselyObject,
    encode_bitmap,
    read_supervisely,
)
from unihema.data.formats.table import read_csv_table
from unihema.data.formats.voc import VocAnnotation, VocObject, read_voc, voc_image_size
from unihema.data.formats.yolo import (
    YoloBox,
    YoloNames,
    find_names_files,
    is_names_file,
    read_yolo,
    read_yolo_names,
    resolve_yolo_names,
    xyxy_to_yolo,
    yolo_to_xyxy,
)

__all__ = [
    "BBBCImage", "BBBCObject", "read_bbbc_json",
    "BOX_COLUMNS", "CsvBox", "box_columns", "read_box_csv",
    "CocoAnnotation", "CocoImage", "CocoIndex", "coco_mask", "read_coco",
    "IMAGE_EXTENSIONS", "scan_class_folders",
    "mask_value_counts", "mask_values_present", "merge_instance_masks",
    "npz_image_path", "read_medmnist_npz",
    "Point", "points_to_boxes", "read_points",
    "SuperviselyAnnotation", "SuperviselyObject", "encode_bitmap", "read_supervisely",
    "read_csv_table",
    "VocAnnotation", "VocObject", "read_voc", "voc_image_size",
    "YoloBox", "YoloNames", "find_names_files", "is_names_file", "read_yolo",
    "read_yolo_names", "resolve_yolo_names", "xyxy_to_yolo", "yolo_to_xyxy",
]
