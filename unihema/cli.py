"""The ``unihema`` command.

    unihema demo [--quick]                       the end-to-end demo on synthetic smears
    unihema train --config FILE [key=value ...]  train the unified model (--resume, --deepspeed)
    unihema convert-checkpoint CKPT OUT          training checkpoint -> save_pretrained folder
    unihema ask --model DIR IMAGE... "question"  (also detect, segment, classify, describe)
    unihema data list | info KEY                 registered datasets
    unihema data generate --out DIR              write a synthetic smear dataset
    unihema data check KEY --root DIR            validate a dataset, counts, problems, duplicates
    unihema data preview KEY --root DIR --out grid.png
    unihema data example KEY --out DIR           a tiny dataset in KEY's native layout
    unihema data download KEY --to DIR           fetch and safely extract a dataset
    unihema data export KEY --root DIR --to coco|hf --out DIR
    unihema config show [FILE] [key=value ...]   the resolved config
    unihema config schema                        every config key, type, default and meaning

Run ``unihema COMMAND --help`` for the options of each command.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import List, Optional

from unihema.tables import plain_table

logger = logging.getLogger("unihema")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


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


# --------------------------------------------------------------------------------- config
def cmd_config_show(args: argparse.Namespace) -> int:
    from unihema.config import load_config, to_yaml

    print(to_yaml(load_config(args.file, args.overrides)), end="")
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    from unihema.config import schema_table

    rows = [("key", "type", "default", "meaning")] + schema_table()
    print(plain_table(rows, right_align_numbers=False))
    return 0


# --------------------------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
    from unihema.config import load_config
    from unihema.engine.trainer import Trainer

    from unihema.engine.checkpoint import CheckpointError
    from unihema.engine.trainer import NonFiniteLossError

    cfg = load_config(args.config, args.overrides)
    try:
        trainer = Trainer(cfg, progress=not args.no_progress, deepspeed=args.deepspeed,
                          resume=args.resume, fresh=args.fresh)
        trainer.train()
    except (NonFiniteLossError, CheckpointError) as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 3
    if trainer.dist.is_main:
        print(f"wrote {trainer.out / 'model'} after {trainer.stop_summary()}; "
              f"losses in {trainer.out / 'metrics.jsonl'}")
    return 0


def cmd_convert_checkpoint(args: argparse.Namespace) -> int:
    from unihema.engine.checkpoint import CheckpointError
    from unihema.engine.convert import convert_checkpoint

    try:
        out = convert_checkpoint(args.checkpoint, args.out)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(f"wrote {out} (load it with UniHema.from_pretrained or --model {out})")
    return 0


# --------------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from unihema.demo import run_demo

    return run_demo(args.out, quick=args.quick, config=args.config, overrides=args.set or [],
                    train=not args.data_only)


# --------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="unihema",
        description="unihema: one vision-language model for blood-smear images "
        "(detect, classify, segment, morphology, masked report filling, VQA).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  unihema demo --quick\n  unihema data generate --out data/synth\n"
        "  unihema data check synthetic_smear --root data/synth\n"
        "  unihema config show configs/quick/synthetic.yaml train.lr=1e-3\n"
        "  unihema eval --suite configs/eval/demo.yaml --model runs/demo\n"
        "  unihema baseline train --kind detector --config configs/compare/unified.yaml",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="end-to-end demo on built-in synthetic smears",
                          description="Generate synthetic smears, train the unified model on "
                          "all six tasks, evaluate it on held-out fields and write a report, "
                          "overlays and the checkpoint under --out.")
    demo.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")
    demo.add_argument("--quick", action="store_true",
                      help="small data and a short run (about two minutes): checks the path")
    demo.add_argument("--data-only", action="store_true",
                      help="generate, check and preview the data; skip the model")
    demo.add_argument("--config", default=None,
                      help="YAML config instead of the built-in preset (presets/demo.yaml)")
    demo.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE",
                      help="config overrides (--set may repeat; all are applied in order)")
    demo.set_defaults(func=cmd_demo)

    tr = sub.add_parser("train", help="train the unified model (all configured tasks, one run)",
                        description="Train on the mixture in data.train; writes the run folder "
                        "(config.yaml, metrics.jsonl, model/).")
    tr.add_argument("--config", required=True, help="YAML config (see configs/)")
    tr.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.add_argument("--deepspeed", default=None, metavar="JSON",
                    help="train with DeepSpeed using this config, e.g. "
                    "configs/deepspeed/zero2.json (default: train.deepspeed)")
    tr.add_argument("--resume", default=None, metavar="auto|PATH",
                    help="'auto' = newest complete checkpoint of output_dir, or a checkpoint "
                    "folder (default: train.resume)")
    tr.add_argument("--fresh", action="store_true",
                    help="with --resume auto: when every checkpoint of output_dir is damaged, "
                    "move them aside (step_N.damaged) and start from step 0 instead of stopping")
    # the deepspeed launcher appends --local_rank=N; the rank is read from LOCAL_RANK instead
    tr.add_argument("--local_rank", "--local-rank", type=int, default=None,
                    help=argparse.SUPPRESS)
    tr.set_defaults(func=cmd_train)

    cv = sub.add_parser("convert-checkpoint",
                        help="training checkpoint (plain or DeepSpeed) -> save_pretrained folder",
                        description="Verify a training checkpoint and write a plain model "
                        "folder (config.json + model.safetensors + tokenizer). CHECKPOINT may "
                        "be a step_NNNNNNNN folder, a checkpoints/ folder or a run folder "
                        "(newest complete checkpoint).")
    cv.add_argument("checkpoint", help="checkpoint, checkpoints/ or run folder")
    cv.add_argument("out", help="model folder to write")
    cv.set_defaults(func=cmd_convert_checkpoint)

    from unihema import cli_inference as infer
    from unihema.cli_inputs import per_image

    def inference(name: str, helptext: str, func) -> argparse.ArgumentParser:
        q = sub.add_parser(name, help=helptext, description=helptext + ". Inputs (images, "
                           "names, --out, --device) are checked before the model loads; "
                           "warnings (reasons not to trust a result, docs/model.md) go to "
                           "stderr.")
        q.add_argument("--model", required=True, help="checkpoint folder (save_pretrained)")
        q.add_argument("image", nargs="+", metavar="IMAGE",
                       help="image files (PNG, JPEG, TIFF, BMP, WebP) or folders of them; "
                       "several run with one model load, each result under '== IMAGE =='")
        q.add_argument("--device", default="cpu",
                       help="torch device to run on: cpu (default), cuda, cuda:N or mps")
        q.add_argument("--json", action="store_true",
                       help="print the result (with its warnings) as JSON on stdout; one "
                       "line per image when there are several")
        q.set_defaults(func=per_image(func))
        return q

    names = "one value, comma-separated, repeatable: --{} 'red blood cell,platelet'"
    overlay = ("overlay image to write (.png, .jpg, .tif, ...; input size, longest side at "
               "most 4096 px)")
    q = inference("ask", "answer a free-text question about an image", infer.cmd_ask)
    q.add_argument("question", help='e.g. "How many platelets are in the image?"')
    q.add_argument("--show-reading", action="store_true",
                   help="also print what the model read on the image (counts, types, places)")
    q = inference("detect", "detect cells and parasites; optionally draw them",
                  infer.cmd_detect)
    q.add_argument("--classes", action="append", metavar="NAMES",
                   help="class names to find (default: the model's); " + names.format("classes"))
    q.add_argument("--min-score", type=float, default=None,
                   help="score threshold (default: the model's model.reading.score_threshold, "
                   "the one its answers count at)")
    q.add_argument("--out", default=None, help=overlay)
    q = inference("segment", "per-pixel classes; optionally draw them", infer.cmd_segment)
    q.add_argument("--classes", action="append", metavar="NAMES",
                   help="classes, 'background' first (default: the model's); "
                   + names.format("classes"))
    q.add_argument("--out", default=None, help=overlay)
    q.add_argument("--mask", default=None, metavar="PATH",
                   help="also write the class-index mask: a uint8 PNG of the input's size, "
                   "pixel value = index in the class list (0 = background)")
    q = inference("classify", "choose a label among candidates", infer.cmd_classify)
    q.add_argument("--labels", action="append", required=True, metavar="NAMES",
                   help="candidate labels; " + names.format("labels"))
    inference("describe", "morphology attributes and a sentence for a cell image",
              infer.cmd_describe)

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

    cfg = sub.add_parser("config", help="show the resolved config or the schema")
    csub = cfg.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    cfg.set_defaults(func=lambda a: (cfg.print_help(), 2)[1])
    c = csub.add_parser("show", help="print a config with _base_ and overrides resolved")
    c.add_argument("file", nargs="?", default=None, help="YAML file (default: built-in defaults)")
    c.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides")
    c.set_defaults(func=cmd_config_show)
    c = csub.add_parser("schema", help="every key with type, default and meaning")
    c.set_defaults(func=cmd_config_schema)

    from unihema.baselines.cli import add_baseline_parser
    from unihema.evaluation.suite import add_eval_parser

    add_eval_parser(sub)
    add_baseline_parser(sub)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    from unihema.config import ConfigError
    from unihema.data.catalog import DataError

    from unihema.cli_inputs import take_extra_images

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not take_extra_images(args, extra):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _setup_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ConfigError, DataError, KeyError, FileNotFoundError, ValueError) as exc:
        if args.verbose:
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
