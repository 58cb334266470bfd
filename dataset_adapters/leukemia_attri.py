"""LeukemiaAttri (MICCAI 2024): white-cell boxes with six morphological attributes per cell."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from dataset_adapters._detection import yolo_names
from dataset_adapters._detseg import clip_box, image_size, list_images, map_label, report_error
from unihema.data.text import language
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.formats import find_names_files, read_yolo, yolo_to_xyxy
from unihema.data.sample import QAPair, UnifiedSample

#: class names in index order when the root holds no names file (the repository's order)
DEFAULT_NAMES: Tuple[str, ...] = (
    "None", "Myeloblast", "Lymphoblast", "Neutrophil", "Atypical lymphocyte", "Promonocyte",
    "Monoblast", "Lymphocyte", "Myelocyte", "Abnormal promyelocyte", "Monocyte",
    "Metamyelocyte", "Eosinophil", "Basophil",
)

#: raw class name -> canonical term ("None": a white cell whose type was not assigned)
LABEL_MAP: Dict[str, str] = {
    "None": "white blood cell",
    "Myeloblast": "myeloblast",
    "Lymphoblast": "lymphoblast",
    "Neutrophil": "neutrophil",
    "Atypical lymphocyte": "atypical lymphocyte",
    "Promonocyte": "promonocyte",
    "Monoblast": "monoblast",
    "Lymphocyte": "lymphocyte",
    "Myelocyte": "myelocyte",
    "Abnormal promyelocyte": "abnormal promyelocyte",
    "Monocyte": "monocyte",
    "Metamyelocyte": "metamyelocyte",
    "Eosinophil": "eosinophil",
    "Basophil": "basophil",
}

#: the six attribute columns a1..a6 in order: (raw name, word of value 0, word of value 1)
ATTRIBUTE_COLUMNS: Tuple[Tuple[str, str, str], ...] = (
    ("nuclear_chromatin", "open", "coarse"),
    ("nuclear_shape", "regular", "irregular"),
    ("nucleolus", "inconspicuous", "prominent"),
    ("cytoplasm", "scanty", "abundant"),
    ("cytoplasmic_basophilia", "slight", "intense"),
    ("cytoplasmic_vacuoles", "absent", "prominent"),
)
#: the attribute value that means "not annotated"
NOT_ANNOTATED = 4

#: (raw name, raw word) -> (vocab.ATTRIBUTES name, value), where the two schemas correspond.
#: Not mapped (kept in meta["cell_attributes"] only): a regular nucleus (the schema's nucleus
#: shapes are finer: round, indented, band, lobed) and the nucleolus (not in the schema).
ATTRIBUTE_MAP: Dict[Tuple[str, str], Tuple[str, str]] = {
    ("nuclear_chromatin", "open"): ("chromatin_density", "loosely"),
    ("nuclear_chromatin", "coarse"): ("chromatin_density", "densely"),
    ("nuclear_shape", "irregular"): ("nucleus_shape", "irregular"),
    ("cytoplasm", "scanty"): ("nuclear_cytoplasmic_ratio", "high"),
    ("cytoplasm", "abundant"): ("nuclear_cytoplasmic_ratio", "low"),
    ("cytoplasmic_basophilia", "slight"): ("cytoplasm_colour", "light blue"),
    ("cytoplasmic_basophilia", "intense"): ("cytoplasm_colour", "blue"),
    ("cytoplasmic_vacuoles", "absent"): ("cytoplasm_vacuole", "no"),
    ("cytoplasmic_vacuoles", "prominent"): ("cytoplasm_vacuole", "yes"),
}

SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "test": "test"}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def decode_attributes(values: Sequence[int], path: Path, line: int
                      ) -> Tuple[Dict[str, str], Dict[str, str]]:
    """``(raw, mapped)`` attributes of one label line: raw name -> word, and the
    ``vocab.ATTRIBUTES`` name -> value of those that correspond. Columns equal to
    :data:`NOT_ANNOTATED` are left out of both.

    Raises:
        DataError: a value other than 0, 1 or 4 (file, line and column named).
    """
    raw: Dict[str, str] = {}
    mapped: Dict[str, str] = {}
    for k, ((name, word0, word1), v) in enumerate(zip(ATTRIBUTE_COLUMNS, values), start=1):
        if v == NOT_ANNOTATED:
            continue
        if v not in (0, 1):
            raise DataError(f"{path}:{line}: attribute a{k} ({name}) is {v}; expected 0 "
                            f"({word0}), 1 ({word1}) or {NOT_ANNOTATED} (not annotated)")
        raw[name] = word1 if v else word0
        if (name, raw[name]) in ATTRIBUTE_MAP:
            key, value = ATTRIBUTE_MAP[(name, raw[name])]
            mapped[key] = value
    return raw, mapped


@register_adapter("leukemia_attri")
class LeukemiaAttri(DatasetAdapter):
    """LeukemiaAttri: white-cell fields with per-cell classes and six attributes.

    Source: github intelligentMachines-ITU/Blood-Cancer-Dataset-Lukemia-Attri-MICCAI-2024.

    <root>/
      [data.yaml | classes.txt]            class names (index order); without one the
                                           repository's order DEFAULT_NAMES is used. Names
                                           files elsewhere (labels/, labels/<split>/, domain
                                           folders) must name the same classes
      [<microscope>/<magnification>/]      optional domain folders (kept in meta["domain"])
        images/{train,val,test}/<name>.jpg field image
        labels/{train,val,test}/<name>.txt YOLO with attributes, one white cell a line:
                                           "cls cx cy w h a1 a2 a3 a4 a5 a6" (normalised box)

    Attribute columns (ATTRIBUTE_COLUMNS): a1 nuclear chromatin (0 open, 1 coarse), a2 nuclear
    shape (0 regular, 1 irregular), a3 nucleolus (0 inconspicuous, 1 prominent), a4 cytoplasm
    (0 scanty, 1 abundant), a5 cytoplasmic basophilia (0 slight, 1 intense), a6 cytoplasmic
    vacuoles (0 absent, 1 prominent); 4 means "not annotated", anything else is an error.
    They map onto ``vocab.ATTRIBUTES`` where the schemas correspond (ATTRIBUTE_MAP): chromatin
    open/coarse -> chromatin_density loosely/densely; irregular nucleus -> nucleus_shape
    irregular; scanty/abundant cytoplasm -> nuclear_cytoplasmic_ratio high/low; slight/intense
    basophilia -> cytoplasm_colour light blue/blue; vacuoles -> cytoplasm_vacuole. A regular
    nucleus and the nucleolus have no counterpart in the schema and stay in
    ``meta["cell_attributes"]`` (raw words per cell, with the unmapped ones).

    Records: one per field image, with boxes and labels (detect), the mapped attributes of
    each box (``box_attributes``), a report of one ``language.describe_cell`` sentence per
    cell (mlm), count questions and, when the image holds exactly one annotated cell, type
    and attribute questions and ``attributes`` (the morphology target of that one cell).
    Splits are the official ``train``/``val``/``test`` folders (``valid`` read as val). The
    layout, the class order and the attribute order and coding are taken from the
    repository's documentation and the catalogue, not from the files; when the names file or
    the attribute coding differs, ``data check`` names the line.
    """

    tasks = ("detect", "morphology", "mlm", "vqa")
    splits = ("train", "val", "test")
    classes = {"detect": tuple(dict.fromkeys(LABEL_MAP.values()))}
    license = "see source (research use; cite the paper)"
    citation = ("Rehman A, et al. A Large-Scale Multi-Domain Leukemia Dataset for the White "
                "Blood Cells Detection with Morphological Attributes for Explainability. "
                "Medical Image Computing and Computer Assisted Intervention (MICCAI), 2024")
    url = ("https://github.com/intelligentMachines-ITU/"
           "Blood-Cancer-Dataset-Lukemia-Attri-MICCAI-2024")
    size = "2.4k images, 14 white-cell classes, 6 attributes"
    access = ("the repository's README links the images and labels (a download form / shared "
              "drive); unpack so that images/ and labels/ lie in the root or in domain folders")

    def names(self) -> List[str]:
        """Class names by index: those of the names files below the root (which must name the
        same classes, :func:`~dataset_adapters._detseg.yolo_names`), else
        :data:`DEFAULT_NAMES`."""
        if find_names_files(self.root):
            return yolo_names(self, LABEL_MAP)
        return list(DEFAULT_NAMES)

    def _image_folders(self, split: str) -> List[Path]:
        out = []
        for images in sorted(self.root.rglob("images")):
            if not images.is_dir():
                continue
            for sub in sorted(images.iterdir()):
                if sub.is_dir() and SPLIT_FOLDERS.get(sub.name.lower()) == split:
                    out.append(sub)
        return out

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        names = self.names()
        folders = self._image_folders(split)
        if not folders and not list(self.root.rglob("images")):
            raise DataError(f"{self.name}: no images/<split>/ folder under {self.root}. "
                            f"Expected layout:\n{self.layout()}")
        for folder in folders:
            domain = folder.parent.parent.relative_to(self.root).as_posix()
            labels_dir = folder.parent.parent / "labels" / folder.name
            for path in list_images(folder, IMAGE_EXTENSIONS):
                sample = self._sample(split, path, labels_dir / f"{path.stem}.txt", names,
                                      domain)
                if sample is not None:
                    yield sample

    def _sample(self, split: str, path: Path, label_file: Path, names: List[str],
                domain: str) -> Optional[UnifiedSample]:
        if not label_file.is_file():
            self.report(path, f"no label file {label_file}")
            return None
        size = image_size(self, path)
        if size is None:
            return None
        width, height = size
        try:
            rows = read_yolo(label_file, num_attributes=len(ATTRIBUTE_COLUMNS))
            decoded = [decode_attributes(r.attributes, label_file, r.line) for r in rows]
        except DataError as exc:
            report_error(self, label_file, exc)
            return None
        boxes, labels = [], []
        for r in rows:
            if r.cls >= len(names):
                self.report(label_file, f"class index {r.cls} but only {len(names)} class "
                                        f"names", r.line)
                return None
            label = map_label(self, names[r.cls], LABEL_MAP, label_file, r.line)
            if label is None:
                return None
            box = clip_box(self, yolo_to_xyxy(r, width, height), width, height, label_file,
                           r.line)
            if box is None:
                return None
            labels.append(label)
            boxes.append(box)
        mapped = [m for _, m in decoded]
        sample_id = path.stem if domain == "." else f"{domain}/{path.stem}"
        qa, attributes = self._questions(labels, mapped)
        report = " ".join(language.describe_cell(lab, m) for lab, m in zip(labels, mapped))
        return UnifiedSample(
            dataset=self.name, split=split, sample_id=sample_id, image_path=str(path),
            width=width, height=height, boxes=boxes, box_labels=labels,
            box_attributes=mapped, attributes=attributes, qa=qa,
            report=report or "This field contains no white cells.",
            meta={"kind": "field", "domain": domain, "license": self.license,
                  "cell_attributes": [raw for raw, _ in decoded]},
        )

    @staticmethod
    def _questions(labels: List[str], mapped: List[Dict[str, str]]
                   ) -> Tuple[List[QAPair], Optional[Dict[str, str]]]:
        counts: Dict[str, int] = {}
        for lab in labels:
            counts[lab] = counts.get(lab, 0) + 1
        qa = [language.qa_count(lab, n) for lab, n in counts.items()]
        if len(labels) != 1:
            return qa, None
        if labels[0] != "white blood cell":  # a cell whose type was not assigned
            qa.append(language.qa_type("white blood cell", labels[0]))
        qa += [language.qa_attribute(k, v, "white blood cell") for k, v in mapped[0].items()]
        return qa, (dict(mapped[0]) or None)

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        (root / "classes.txt").write_text("\n".join(DEFAULT_NAMES) + "\n", encoding="utf-8")
        counts = {"train": 3, "val": 1, "test": 1}
        k = 0
        for split, n in counts.items():
            for i in range(n):
                domain = root / ("HCM/1000x" if i % 2 == 0 else "LCM/400x")
                boxes = ex.layout_boxes(160, 120, 1 + (k % 2), size=44, seed=k)
                rows = []
                for j, box in enumerate(boxes):
                    cls_idx = (3 * k + j) % len(DEFAULT_NAMES)
                    attrs = [(k + j + c) % 2 for c in range(6)]
                    attrs[2] = NOT_ANNOTATED if k % 3 == 0 else attrs[2]
                    rows.append(ex.yolo_row(cls_idx, box, 160, 120, *attrs))
                name = f"{split}_{k:04d}"
                ex.write_smear(domain / "images" / split / f"{name}.jpg", 160, 120, boxes,
                               ["wbc"] * len(boxes), seed=k)
                ex.write_yolo(domain / "labels" / split / f"{name}.txt", rows)
                k += 1
        return counts
