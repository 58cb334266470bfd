"""The table formats of the generic adapter: ``csv`` (one crop a row, task classify) and
``csv_boxes`` (one box a row, grouped by image, task detect).

:class:`TableLoaders` is a mixin of :class:`unihema.data.generic.GenericAdapter`: its loaders
use the adapter's spec (``self.spec``, ``self.spec_path``), its split selection
(``_select``, ``_glob``, ``_rel_id``), its sample builders (``_classified``, ``_boxes``,
``_size``) and its problem reporting (``report``, ``note``, ``_report_once``). The spec keys
are documented in :mod:`unihema.data.generic`; rows are read by
:func:`unihema.data.formats.read_csv_table` and :func:`unihema.data.formats.read_box_csv`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from unihema.data import formats as fmt
from unihema.data.catalog import DataError
from unihema.data.generic_spec import box_csv_spec
from unihema.data.patients import parse_findings
from unihema.data.sample import UnifiedSample


class TableLoaders:
    """``_load_csv`` and ``_load_csv_boxes`` of the generic adapter (see the module doc)."""

    def _load_csv(self, split: str) -> Iterable[UnifiedSample]:
        """One crop a row (:func:`unihema.data.formats.read_csv_table`); the split by a
        ``split`` column, a ``{split}`` table path or the spec's ``splits``."""
        cols = self.spec["columns"]
        if "image" not in cols or "label" not in cols:
            raise DataError("generic: columns needs 'image' and 'label' column names")
        table = self.root / str(self.spec["table"]).replace("{split}", split)
        required = [cols["image"], cols["label"]] + [
            cols[k] for k in ("split", "patient", "diagnosis", "findings") if k in cols]
        rows = fmt.read_csv_table(table, required)
        image_root = self.root / str(self.spec.get("image_root", ""))
        items = []
        for row in rows:
            rel = str(row[cols["image"]])
            image = image_root / rel
            if not image.is_file():
                self.report(table, f"image '{rel}' not found under {image_root}", row["_line"])
                continue
            items.append((Path(rel).with_suffix("").as_posix(), (image, row)))
        if "split" in cols:
            chosen = [it for it in items if it[1][1][cols["split"]] == split]
        elif "{split}" in str(self.spec["table"]):
            chosen = items
        else:
            group = (lambda it: it[1][1][cols["patient"]] or None) if "patient" in cols else None
            chosen = self._select(items, split, group=group)
        rows = {sid: row for sid, (_, row) in chosen}
        for sample in self._classified(
                split, [(sid, img, row[cols["label"]], table, row["_line"],
                         row[cols["patient"]] if "patient" in cols else None)
                        for sid, (img, row) in chosen]):
            row = rows[sample.sample_id]  # patient-level columns: diagnosis and findings
            if row.get(cols.get("diagnosis")):
                name = self._canon(row[cols["diagnosis"]], table, row["_line"])
                if name is not None:
                    sample.meta["patient_label"] = name
            if "findings" in cols:
                sample.meta["findings"] = parse_findings(str(row[cols["findings"]]))
            yield sample

    def _load_csv_boxes(self, split: str) -> Iterable[UnifiedSample]:
        """One box a row (:func:`unihema.data.formats.read_box_csv`), grouped by image."""
        cols, normalized = box_csv_spec(self.spec, self.spec_path or "spec")
        table = self.root / str(self.spec["table"]).replace("{split}", split)
        image_root = self.root / str(self.spec.get("image_root", "")).replace("{split}", split)
        by_split = "split" in cols or "{split}" in str(self.spec["table"])
        groups: Dict[str, List[fmt.CsvBox]] = {}
        for row in fmt.read_box_csv(table, cols, normalized=normalized):
            groups.setdefault(row.image, []).append(row)
        listed = {(image_root / rel).resolve() for rel in groups}
        items = []
        for rel, rows in groups.items():
            if "split" in cols:
                values = sorted({r.split or "" for r in rows})
                if len(values) > 1 or values[0] not in self.splits:
                    self._report_once(table, f"image '{rel}': {cols['split']} "
                                             f"{values if len(values) > 1 else values[0]!r} "
                                             f"({_lines(rows)}); expected one of "
                                             f"{list(self.splits)}", rows[0].line)
                    continue
                if values[0] != split:
                    continue
            image = image_root / rel
            if not image.is_file():
                self._report_once(table, f"image '{rel}' ({_lines(rows)}) not found "
                                         f"under {image_root}", rows[0].line)
                continue
            items.append((Path(rel).with_suffix("").as_posix(), (image, rows)))
        items += self._rowless_images(split if by_split else None, image_root, listed, table)
        if by_split:
            chosen = items
        else:
            group = None
            if "patient" in cols:
                group = (lambda it: next((r.patient for r in it[1][1] if r.patient), None))
            chosen = self._select(items, split, group=group)
        for sid, (image, rows) in chosen:
            sample = self._csv_boxes_sample(split, sid, image, rows, table, cols, normalized)
            if sample is not None:
                yield sample

    def _rowless_images(self, split: Optional[str], image_root: Path, listed: set,
                        table: Path) -> List[Tuple[str, Tuple[Path, list]]]:
        """Images of the ``images`` glob without a row (images without cells); without
        ``images``, image files beside the listed ones that have no row are noted."""
        if not self.spec.get("images"):
            folders = {p.parent for p in listed if p.is_file()}
            unread = sorted(f.name for d in folders for f in d.iterdir()
                            if f.suffix.lower() in fmt.IMAGE_EXTENSIONS
                            and f.resolve() not in listed)
            if unread:
                self._report_once(table, f"{len(unread)} image file(s) beside the listed images "
                                         f"have no row and are not read ({', '.join(unread[:3])}"
                                         f"{', ...' if len(unread) > 3 else ''}); declare "
                                         f"'images:' (a glob) to read them as images without "
                                         f"cells", note=True)
            return []
        out = []
        for p in self._glob(str(self.spec["images"]), split):
            if p.resolve() in listed:
                continue
            try:
                sid = p.relative_to(image_root).with_suffix("").as_posix()
            except ValueError:
                sid = self._rel_id(p)
            out.append((sid, (p, [])))
        return out

    def _csv_boxes_sample(self, split, sid, image, rows, table, cols,
                          normalized) -> Optional[UnifiedSample]:
        """The sample of one image's rows, or None once a problem is reported."""
        size = self._size(image)
        if size is None:
            return None
        width, height = size
        objects, first, empty = [], {}, []
        for r in rows:
            if r.error:
                self.report(table, f"{r.error} (image '{r.image}' left out)", r.line)
                return None
            if r.size is not None and r.size != size:
                self.report(table, f"{cols['width']} x {cols['height']} say {r.size[0]}x"
                                   f"{r.size[1]} but image '{r.image}' is {width}x{height}",
                            r.line)
                return None
            if r.box is None:
                empty.append(r)
                continue
            if r.box in first:
                a = first[r.box]
                if (self._known(a.label) or a.label) != (self._known(r.label) or r.label):
                    self.report(table, f"lines {a.line} and {r.line} give the same box "
                                       f"{list(r.box)} of image '{r.image}' two labels "
                                       f"'{a.label}' and '{r.label}'", r.line)
                    return None
                self.note(table, f"repeats line {a.line} (same box, same label); read once",
                          r.line)
                continue
            first[r.box] = r
            x0, y0, x1, y1 = r.box
            if normalized:
                x0, x1, y0, y1 = x0 * width, x1 * width, y0 * height, y1 * height
            objects.append((r.label, (x0, y0, x1, y1), r.line))
        if empty and objects:
            self.report(table, f"line {empty[0].line} lists image '{rows[0].image}' without "
                               f"cells but line {objects[0][2]} gives it a box", empty[0].line)
            return None
        return self._boxes(split, sid, image, table, objects, size=size)



def _lines(rows: List[fmt.CsvBox], most: int = 5) -> str:
    """``"line 3"`` or ``"lines 3, 4, 9"`` (the first ``most`` line numbers of rows)."""
    shown = ", ".join(str(r.line) for r in rows[:most])
    return ("lines " if len(rows) > 1 else "line ") + shown + (", ..." if len(rows) > most else "")
