"""``unihema data ...``: list, describe, generate, check, preview, download, export and
write examples of datasets."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from unihema.tables import plain_table

logger = logging.getLogger("unihema")


# --------------------------------------------------------------------------------- data
def cmd_data_list(args: argparse.Namespace) -> int:
    from unihema.data.catalog import ADAPTERS

    rows = [("key", "tasks", "size", "license")]
    for name, cls in ADAPTERS.items():
        rows.append((name, ",".join(cls.tasks), cls.size or "-", cls.license))
    print(plain_table(rows, right_align_numbers=False))
    print(f"\n{len(rows) - 1} dataset adapter(s). `unihema data info KEY` for details.")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from unihema.data.catalog import ADAPTERS

    info = ADAPTERS.get(args.key).info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key in ("name", "tasks", "splits", "size", "license", "url", "citation"):
        value = info.get(key, "")
        print(f"{key:9s} {', '.join(value) if isinstance(value, list) else value}")
    for task, names in info["classes"].items():
        print(f"classes  [{task}] {', '.join(names)}")
    for entry in info.get("downloads", []):
        print(f"download {entry.get('url')} (sha256 {entry.get('sha256') or 'not declared'})")
    if info.get("access"):
        print(f"access   {info['access']}")
    print(f"\nexpected layout:\n{info['layout']}")
    return 0


def _synth_config(args: argparse.Namespace):
    from unihema.config import load_config

    overrides = list(args.set or [])
    for key in ("train", "val", "test", "size", "seed", "domain", "workers"):
        value = getattr(args, key, None)
        if value is not None:
            overrides.append(f"synth.{key}={value}")
    return load_config(args.config, overrides).synth


def cmd_data_generate(args: argparse.Namespace) -> int:
    from unihema.synth import generate_dataset

    cfg = _synth_config(args)
    t0 = time.perf_counter()
    manifest = generate_dataset(args.out, cfg, progress=not args.no_progress)
    dt = time.perf_counter() - t0
    n = sum(manifest["splits"].values())
    print(f"wrote {n} fields ({manifest['splits']}) to {args.out} in {dt:.1f} s "
          f"({n / max(dt, 1e-9):.0f} fields/s)")
    print(f"next: unihema data check synthetic_smear --root {args.out}")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from unihema.data.check import check_dataset

    options = {"spec": args.spec} if getattr(args, "spec", None) else None
    against = []
    for item in args.against or []:
        key, sep, root = item.partition("=")
        if not sep or not key or not root:
            raise ValueError(f"--against expects KEY=DIR (an adapter key and its dataset "
                             f"folder, e.g. --against bccd=data/BCCD), got '{item}'")
        against.append((key, root))
    report = check_dataset(args.key, args.root, args.split or None, fast=args.fast,
                           progress=not args.no_progress, options=options,
                           duplicates=not args.no_duplicates, against=against)
    print(report.format(max_problems=args.max_problems))
    if args.json:
        report.write_json(args.json)
        print(f"\nwrote {args.json}")
    return 0 if report.ok else 1


def cmd_data_preview(args: argparse.Namespace) -> int:
    from unihema.data.catalog import get_adapter
    from unihema.data.preview import pick_samples, preview_grid

    adapter = get_adapter(args.key, args.root,
                          **({"spec": args.spec} if getattr(args, "spec", None) else {}))
    split = args.split or adapter.splits[0]
    samples = adapter.load(split)
    picked = pick_samples(samples, args.n, seed=args.seed)
    out = preview_grid(picked, args.out, cols=args.cols, tile=args.tile)
    print(f"wrote {out} ({len(picked)} of {len(samples)} {split} samples)")
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from unihema.data.download import AccessRequired, download

    try:
        fetched = download(args.key, args.to, progress=not args.no_progress)
    except AccessRequired as exc:
        print(exc)
        return 2
    for f in fetched:
        if f.skipped:
            print(f"{f.filename}: already complete (sha256 {f.sha256})")
        else:
            placed = f", extracted {', '.join(f.extracted)}" if f.extracted else ""
            print(f"{f.filename}: sha256 {f.sha256}{placed}")
    print(f"next: unihema data check {args.key} --root {args.to}  (see `unihema data info "
          f"{args.key}` for the layout)")
    return 0


def cmd_data_export(args: argparse.Namespace) -> int:
    from unihema.data.catalog import get_adapter
    from unihema.data.export import export_dataset

    adapter = get_adapter(args.key, args.root,
                          **({"spec": args.spec} if getattr(args, "spec", None) else {}))
    written = export_dataset(adapter, args.out, to=args.to, splits=args.split or None,
                             copy_images=args.copy_images)
    for split, (path, n) in written.items():
        print(f"[{split}] {n} samples -> {path}")
    return 0


def cmd_data_example(args: argparse.Namespace) -> int:
    from pathlib import Path

    from unihema.data.catalog import ADAPTERS

    cls = ADAPTERS.get(args.key)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        print(f"error: {out} is not empty; choose a new folder", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    counts = cls.write_example(out)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    print(f"wrote a tiny {args.key} example ({', '.join(f'{k} {v}' for k, v in counts.items())}"
          f" samples) to {out}:")
    for f in files[:40]:
        print(f"  {f}")
    if len(files) > 40:
        print(f"  ... and {len(files) - 40} more files")
    print(f"next: unihema data check {args.key} --root {out}")
    return 0


def add_data_parser(sub) -> None:
    """Add these commands to the ``unihema`` subparsers ``sub``."""
    data = sub.add_parser("data", help="datasets: list, info, generate, check, preview")
    dsub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data.set_defaults(func=lambda a: (data.print_help(), 2)[1])

    d = dsub.add_parser("list", help="registered dataset adapters")
    d.set_defaults(func=cmd_data_list)

    d = dsub.add_parser("info", help="citation, license, classes and layout of a dataset")
    d.add_argument("key", help="adapter key (see `unihema data list`)")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(func=cmd_data_info)

    d = dsub.add_parser("generate", help="write a synthetic smear dataset",
                        description="Write train/val/test splits of procedurally generated "
                        "blood-smear fields with supervision for all six tasks.")
    d.add_argument("--out", required=True, help="output folder")
    d.add_argument("--config", default=None, help="YAML config whose synth section is used")
    for key, typ, hlp in (("train", int, "training fields (default 800)"),
                          ("val", int, "validation fields (default 100)"),
                          ("test", int, "test fields (default 100)"),
                          ("size", int, "field side in pixels (default 256)"),
                          ("seed", int, "base seed (default 0)"),
                          ("domain", float, "domain shift 0..1 (default 0)"),
                          ("workers", int, "processes (default: one per core)")):
        d.add_argument(f"--{key}", type=typ, default=None, help=hlp)
    d.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE",
                   help="other config overrides (--set may repeat; all are applied in order)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_data_generate)
    from unihema.synth.cli import add_synth_commands
    add_synth_commands(dsub)  # `data field`, `data scan`: full-size fields and stitched scans

    d = dsub.add_parser("check", help="validate a dataset: counts per task/class and problems",
                        description="Read every split through its adapter, verify images and "
                        "masks, print counts and every problem with file and reason. "
                        "Exits 1 when any problem is found. Also lists duplicate image files "
                        "(exact copies and re-encoded, resized or slightly cropped ones) within "
                        "a split, across splits (leaks) and against other datasets (--against); "
                        "duplicates are warnings and do not change the exit status.")
    d.add_argument("key", help="adapter key")
    d.add_argument("--root", required=True, help="dataset folder")
    d.add_argument("--split", nargs="*", help="splits to check (default: all)")
    d.add_argument("--fast", action="store_true",
                   help="read image headers only (default: decode every image in full, which "
                   "also catches truncated files); duplicates: byte copies only")
    d.add_argument("--json", default=None, help="also write the report as JSON here")
    d.add_argument("--max-problems", type=int, default=50,
                   help="problems, notes and duplicate findings to print (each)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.add_argument("--spec", default=None,
                   help="YAML spec of your own dataset (generic adapter; default "
                   "<root>/unihema_dataset.yaml)")
    d.add_argument("--against", action="append", metavar="KEY=DIR",
                   help="also look for copies of this dataset's images in another dataset "
                   "(adapter key and folder, every split read), e.g. --against "
                   "bccd=data/BCCD; repeat for several")
    d.add_argument("--no-duplicates", action="store_true",
                   help="skip the duplicate-image search (exact and near copies)")
    d.set_defaults(func=cmd_data_check)

    d = dsub.add_parser("preview", help="draw a grid of samples with their labels")
    d.add_argument("key", help="adapter key")
    d.add_argument("--root", required=True, help="dataset folder")
    d.add_argument("--out", required=True, help="PNG to write")
    d.add_argument("--split", default=None, help="split (default: the first)")
    d.add_argument("--n", type=int, default=12, help="number of samples (default 12)")
    d.add_argument("--cols", type=int, default=4, help="grid columns (default 4)")
    d.add_argument("--tile", type=int, default=256, help="tile side in pixels (default 256)")
    d.add_argument("--seed", type=int, default=0, help="which samples (default 0)")
    d.add_argument("--spec", default=None, help="YAML spec (generic adapter)")
    d.set_defaults(func=cmd_data_preview)

    d = dsub.add_parser("example", help="write a tiny dataset in an adapter's native layout",
                        description="Write a few small generated images with the real file "
                        "names, folder structure and annotation format the adapter expects, "
                        "to see the layout (and try `data check` on it).")
    d.add_argument("key", help="adapter key")
    d.add_argument("--out", required=True, help="new (or empty) output folder")
    d.set_defaults(func=cmd_data_example)

    d = dsub.add_parser("download", help="download and safely extract a dataset",
                        description="Fetch the files a dataset declares (resumable, sha256 "
                        "verified where known) and extract archives, refusing members that "
                        "would land outside --to. Datasets behind a login or a form print "
                        "where and how to get them (exit code 2).")
    d.add_argument("key", help="adapter key")
    d.add_argument("--to", required=True, help="target folder (becomes the dataset root)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_data_download)

    d = dsub.add_parser("export", help="export a dataset to COCO JSON or a Hugging Face dataset",
                        description="coco: one <split>.json per split (boxes; semantic masks as "
                        "per-class RLE). hf: a datasets.DatasetDict saved with save_to_disk "
                        "(load it with datasets.load_from_disk(OUT)).")
    d.add_argument("key", help="adapter key")
    d.add_argument("--root", required=True, help="dataset folder")
    d.add_argument("--split", nargs="*", help="splits to export (default: all)")
    d.add_argument("--to", required=True, choices=("coco", "hf"), help="output format")
    d.add_argument("--out", required=True, help="output folder")
    d.add_argument("--copy-images", action="store_true",
                   help="coco: copy the images to OUT/images/<split>/ (default: file_name is "
                   "the absolute path of the source image)")
    d.add_argument("--spec", default=None, help="YAML spec (generic adapter; default "
                   "<root>/unihema_dataset.yaml)")
    d.set_defaults(func=cmd_data_export)
