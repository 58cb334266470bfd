"""WBC-Seg-Zheng: 400 white-cell images with nucleus/cytoplasm masks and a cell-type label."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from dataset_adapters import _examples as ex
from dataset_adapters._detseg import report_error
from dataset_adapters._splits import FRACTIONS
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.formats import mask_value_counts, read_csv_table
from unihema.data.io import image_size
from unihema.data.sample import UnifiedSample
from unihema.data.splits import seeded_split

#: class code of the CSVs -> canonical class
CLASS_CODES: Dict[str, str] = {
    "1": "neutrophil",
    "2": "lymphocyte",
    "3": "monocyte",
    "4": "eosinophil",
    "5": "basophil",
}
#: documented mask values -> canonical class
MASK_VALUES: Dict[int, str] = {0: "background", 128: "cytoplasm", 255: "nucleus"}
#: subset folder -> (class CSV, id prefix, acquisition)
SUBSETS: Dict[str, Tuple[str, str, str]] = {
    "Dataset 1": ("Class Labels of Dataset 1.csv", "d1", "Jiangxi Tecom, 120x120"),
    "Dataset 2": ("Class Labels of Dataset 2.csv", "d2", "CellaVision, 300x300"),
}
#: label column of the CSVs: Dataset 1 writes `class label`, Dataset 2 `class`
LABEL_COLUMNS = ("class label", "class")
SEED = 0


def nearest_documented(value: int) -> int:
    """The documented mask value closest to ``value`` (ties go to the smaller one)."""
    return min(MASK_VALUES, key=lambda v: (abs(v - value), v))


@register_adapter("wbc_seg_zheng")
class WBCSegZheng(DatasetAdapter):
    """WBC segmentation images of Zheng et al. (zxaoyou/segmentation_WBC), as cloned.

    <root>/
      Dataset 1/<nnn>.bmp            300 RGB images, 120x120 or a little smaller (Jiangxi Tecom)
      Dataset 1/<nnn>.png            its mask, 8-bit gray: 0 background (red cells included),
                                     128 cytoplasm, 255 nucleus
      Dataset 2/<nnn>.bmp, .png      100 images 300x300 (CellaVision), likewise
      Class Labels of Dataset 1.csv  `image ID,class label` (CRLF), ids 1..300, unpadded
      Class Labels of Dataset 2.csv  `image ID,class`, ids 1..100
      (class codes: 1 neutrophil, 2 lymphocyte, 3 monocyte, 4 eosinophil, 5 basophil)

    Tasks: segment (the mask) and classify (the CSV label names the one white cell of the
    image). Sample ids are `d1_001` / `d2_047`. Every image needs its mask and a CSV row, and
    every CSV row its image; a missing partner or an unknown code is a problem.

    Stray mask values: five masks of Dataset 2 (034, 035, 047, 050, 076) hold a few pixels of
    undocumented values (2-50; e.g. 179 px of 7 in 047.png) on the border between cytoplasm
    and background. Each stray value is mapped to the nearest documented value (all of them
    to 0, background), the sample's mask_values map says so (e.g. {7: "background"}), the
    values and pixel counts are kept in meta["stray_mask_values"] ({7: [179, 0]}: pixels,
    documented value used), and `unihema data check` lists each as a note.

    Splits: the source has none. A seeded split (unihema.data.splits.seeded_split, seed 0,
    train 0.7 / val 0.1 / test 0.2) of each subset separately, so both acquisitions appear in
    every split: 210/30/60 of Dataset 1 and 70/10/20 of Dataset 2. There are no patient ids.
    The source warns that some class labels were added without expert review. Layout seen on
    the real files.
    """

    tasks = ("segment", "classify")
    splits = ("train", "val", "test")
    classes = {
        "segment": ("background", "cytoplasm", "nucleus"),
        "classify": tuple(CLASS_CODES.values()),
    }
    size = "400 images (300 + 100)"
    license = "GPL-3.0"
    citation = ("Zheng X, Wang Y, Wang G, Liu J. Fast and robust segmentation of white blood "
                "cell images by self-supervised learning. Micron 107:55-71, 2018.")
    url = "https://github.com/zxaoyou/segmentation_WBC"
    downloads = ({"url": "https://github.com/zxaoyou/segmentation_WBC/archive/refs/heads/"
                         "master.zip", "sha256": None, "filename": "segmentation_WBC-master.zip"},)

    def _labels(self, csv_path: Path) -> Tuple[Dict[int, Tuple[str, int]],
                                                Dict[Optional[int], List[Tuple[int, str]]]]:
        """``(image id -> (canonical class, CSV line), image id -> [(line, problem)])``;
        problems of rows without a readable id are keyed ``None``."""
        try:
            rows = read_csv_table(csv_path, ["image ID"])
        except DataError as exc:
            raise DataError(f"{self.name}: {exc}") from None
        column = next((c for c in LABEL_COLUMNS if rows and c in rows[0]), None)
        if rows and column is None:
            found = [k for k in rows[0] if k != "_line"]
            raise DataError(f"{self.name}: {csv_path}:1: no label column; expected one of "
                            f"{list(LABEL_COLUMNS)}, columns found: {found}")
        out: Dict[int, Tuple[str, int]] = {}
        problems: Dict[Optional[int], List[Tuple[int, str]]] = {}
        for row in rows:
            line = int(row["_line"])
            raw_id, code = str(row["image ID"]), str(row[column])
            num = int(raw_id) if raw_id.isdigit() else None
            if num is None:
                problems.setdefault(None, []).append(
                    (line, f"image ID '{raw_id}' is not a number"))
            elif num in out:
                problems.setdefault(num, []).append((line, f"image ID {num} is listed twice"))
            elif code not in CLASS_CODES:
                problems.setdefault(num, []).append(
                    (line, f"class code '{code}' is not one of {', '.join(CLASS_CODES)} "
                           f"({CLASS_CODES})"))
            else:
                out[num] = (CLASS_CODES[code], line)
        return out, problems

    def _subset(self, folder: str, split: str) -> Iterable[UnifiedSample]:
        """Samples of one subset in ``split``; problems are reported in the split their image
        id belongs to (once per check, not once per split)."""
        csv_name, prefix, acquisition = SUBSETS[folder]
        img_dir, csv_path = self.root / folder, self.root / csv_name
        if not img_dir.is_dir():
            raise DataError(f"{self.name}: folder {img_dir} is missing. Expected layout:\n"
                            f"{self.layout()}")
        labels, row_problems = self._labels(csv_path)
        images = {int(p.stem): p for p in sorted(img_dir.glob("*.bmp")) if p.stem.isdigit()}
        ids = sorted(set(images) | set(labels) | {k for k in row_problems if k is not None})
        mine = seeded_split(ids, FRACTIONS, SEED, key=lambda n: f"{prefix}_{n:03d}")[split]
        for line, reason in row_problems.get(None, []):
            self.report(csv_path, reason, line)
        for num in mine:
            for line, reason in row_problems.get(num, []):
                self.report(csv_path, reason, line)
            if num not in images:
                if num in labels:
                    self.report(csv_path, f"image ID {num} has no image "
                                          f"{img_dir / f'{num:03d}.bmp'}", labels[num][1])
                continue
            if num not in labels:
                if num not in row_problems:
                    self.report(images[num], f"no class label for image ID {num} in "
                                             f"{csv_path.name}")
                continue
            sample = self._sample(prefix, acquisition, images[num], labels[num][0])
            if sample is not None:
                sample.split = split
                yield sample

    def _sample(self, prefix: str, acquisition: str, image: Path,
                label: str) -> Optional[UnifiedSample]:
        mask = image.with_suffix(".png")
        if not mask.is_file():
            self.report(image, f"mask {mask.name} is missing")
            return None
        try:
            width, height = image_size(image)
            counts = mask_value_counts(mask)
        except DataError as exc:
            report_error(self, mask if str(mask) in str(exc) else image, exc)
            return None
        values = dict(MASK_VALUES)
        stray = {}
        for v, n in sorted(counts.items()):
            if v not in MASK_VALUES:
                near = nearest_documented(v)
                values[v] = MASK_VALUES[near]
                stray[v] = [n, near]
                self.note(mask, f"{n} px of undocumented mask value {v}; read as {near} "
                                f"({MASK_VALUES[near]}), the nearest documented value")
        meta = {"kind": "crop", "subset": image.parent.name, "acquisition": acquisition,
                "license": self.license}
        if stray:
            meta["stray_mask_values"] = stray
        return UnifiedSample(
            dataset=self.name, split="", sample_id=f"{prefix}_{image.stem}",
            image_path=str(image), width=width, height=height, mask_path=str(mask),
            mask_values=values, label=label, label_set=list(CLASS_CODES.values()), meta=meta)

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        for folder in SUBSETS:
            yield from self._subset(folder, split)

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        root = Path(root)
        totals = {s: 0 for s in FRACTIONS}
        for folder, (csv_name, prefix, _), n, side, header in (
                ("Dataset 1", SUBSETS["Dataset 1"], 6, 72, ["image ID", "class label"]),
                ("Dataset 2", SUBSETS["Dataset 2"], 3, 96, ["image ID", "class"])):
            rows = []
            for i in range(1, n + 1):
                h = side - 4 * (i % 2)  # Dataset 1 sizes vary a little
                m = side // 6
                box = (m, m, side - m, h - m)
                ex.save_image(ex.cell_crop(side, "wbc", seed=i, height=h),
                              root / folder / f"{i:03d}.bmp")
                mask = ex.ellipse_mask(h, side, [box], [128], nucleus_value=255)
                if folder == "Dataset 2" and i == 2:
                    mask = mask.copy()
                    mask[h // 2, m - 1] = 7  # a stray value on the cell border, as in 047.png
                ex.write_mask(root / folder / f"{i:03d}.png", mask)
                rows.append([i, (i % 5) + 1])
            ex.write_csv(root / csv_name, header, rows, line_end="\r\n")
            ids = list(range(1, n + 1))
            key = lambda i, prefix=prefix: f"{prefix}_{i:03d}"  # noqa: E731 - as _subset does
            for split, part in seeded_split(ids, FRACTIONS, SEED, key=key).items():
                totals[split] += len(part)
        return totals
