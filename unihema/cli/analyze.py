"""``unihema analyze``: a whole smear, every cell counted, typed, measured and shown.

    unihema analyze FIELD.png [FIELD2.png ...] --model DIR --out DIR [--um-per-px X]
    unihema analyze FOLDER --model DIR --out DIR        every image of the folder: one smear
    unihema analyze SCAN.tif --model DIR --out DIR      a tiled TIFF, read tile by tile

Writes cells.csv, cells.jsonl, summary.json, summary.csv, overlays/<field>.png and report.html
into ``--out`` (docs/analyze.md). Prints a short summary, or with ``--json`` summary.json on
stdout.
"""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = """outputs (in --out; docs/analyze.md describes every field):
  cells.csv, cells.jsonl   one row / object per cell: box, lineage, type, probabilities,
                           attributes, measurements, uncertainty, needs_review and reason
  summary.json, .csv       counts, differential with 95 % intervals, red-cell grades,
                           platelets, parasitaemia, flags, review (smear flags),
                           trust, scale, timings
  overlays/*.png           each field with its boxes (downscaled for large scans)
  report.html              one self-contained page: summary, chart, fields, cell gallery

examples:
  unihema data field --out /tmp/f && unihema analyze /tmp/f/field.png --model runs/demo/model \\
      --out /tmp/f/analysis --um-per-px 0.12
  unihema analyze scans/smear.tif --model runs/demo/model --out /tmp/smear --json"""


def add_analyze_parser(sub) -> None:
    p = sub.add_parser(
        "analyze", help="whole-smear analysis: count, type and measure every cell",
        description="Analyse one smear: one image, several fields (files or a folder) or a "
        "large tiled TIFF. Cells are found on overlapping tiles at the model's training "
        "scale, merged across seams, typed with probabilities, measured, and summarised.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="IMAGE|FOLDER|SCAN.tif",
                   help="the fields of one smear: image files, folders of images, or a tiled "
                   "TIFF")
    p.add_argument("--model", required=True, help="a save_pretrained model folder")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--um-per-px", type=float, default=None,
                   help="the images' scale in micrometres per pixel (default: estimated from "
                   "the red cells' size, reported with its interval)")
    p.add_argument("--tile", type=int, default=None,
                   help="tile side in pixels at the model's scale (default: its training "
                   "image size)")
    p.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass")
    p.add_argument("--min-score", type=_min_score, default=None,
                   help="least detection score kept, one (0.4) or per detected class "
                   "('white blood cell=0.2,platelet=0.3'; default: the model's reading "
                   "threshold)")
    p.add_argument("--gallery-limit", type=int, default=5000,
                   help="most cells shown in report.html (the most uncertain of each type)")
    p.add_argument("--patient-encoder", default=None, metavar="DIR",
                   help="a patient encoder (unihema patient train): adds the patient-level "
                   "prediction and its evidence cells (patient.json, report.html)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")
    p.add_argument("--flags", default=None, metavar="FILE",
                   help="smear-level review rules, YAML or JSON (default: the built-in ones; "
                        "docs/analyze.md, 'Smear flags')")
    p.add_argument("--json", action="store_true", help="print summary.json on stdout")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_analyze)


def _min_score(text: str):
    from unihema.analysis.reader import parse_min_score

    try:
        return parse_min_score(text)
    except ValueError as exc:  # argparse shows this message, not the function's name
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--min-score: ")) from None


def run_analyze(args: argparse.Namespace) -> int:
    from unihema.analysis.outputs import summary_dict, write_analysis
    from unihema.analysis.run import analyze, resolve_inputs
    from unihema.api import UniHemaPipeline

    if args.um_per_px is not None and not args.um_per_px > 0:
        raise ValueError(f"--um-per-px must be positive, got {args.um_per_px}")
    resolve_inputs(args.inputs)  # missing files and empty folders fail before the model loads
    policy = None
    if args.flags:
        from unihema.analysis.flags import load_policy

        policy = load_policy(args.flags)
    pipe = UniHemaPipeline.from_pretrained(args.model, device=args.device)
    result = analyze(pipe, args.inputs, um_per_px=args.um_per_px, tile=args.tile,
                     batch_size=args.batch_size, min_score=args.min_score, flags=policy,
                     progress=not args.no_progress and not args.json)
    if args.patient_encoder:
        from unihema.patient.verdict import attach_verdict

        attach_verdict(pipe, result, args.patient_encoder, args.inputs, args.out,
                       quiet=args.json)
    paths = write_analysis(result, args.out, args.gallery_limit)
    s = result.summary
    if args.json:
        print(json.dumps(summary_dict(result), indent=2))
    else:
        print(f"{s.n_cells} cells in {s.n_fields} field(s), {s.needs_review} to review "
              f"({result.timings['total']:.1f} s)")
        for name, k in s.lineages.items():
            print(f"  {name}: {k}")
        for m in s.messages:
            print(f"note: {m}")
        for f in s.review.get("flags", []):
            print(f"review: {f['reason']}")
        print(f"report: {paths['report.html']}")
    if not s.is_smear:
        print("warning: not analysed as a smear: " + "; ".join(s.messages), file=sys.stderr)
    return 0
