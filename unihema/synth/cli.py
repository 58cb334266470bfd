"""``unihema data field`` and ``unihema data scan``: full-size synthetic fields and stitched
scans with exact per-cell truth (see docs/synthetic.md, "Full-size fields and scans");
``unihema data cohort``: a synthetic patient cohort (docs/patient_data.md)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Dict


def _shares(text: str, what: str) -> Dict[str, float]:
    """``"schistocyte=0.02,target cell=0.05"`` -> ``{"schistocyte": 0.02, ...}``."""
    out = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"{what} expects NAME=SHARE[,NAME=SHARE...], got '{part}'")
    return out


def spec_from_args(args: argparse.Namespace):
    from unihema.synth.layout import NORMAL_DIFFERENTIAL, SmearSpec

    spec = SmearSpec(red_coverage=args.coverage, red_mix=_shares(args.red_mix, "--red-mix"),
                     white_per_100_red=args.white_per_100_red,
                     white_mix=_shares(args.white_mix, "--white-mix") or dict(NORMAL_DIFFERENTIAL),
                     platelets_per_100_red=args.platelets_per_100_red,
                     parasitaemia=args.parasitaemia, domain=args.domain)
    spec.check()
    return spec


def _add_spec_args(d: argparse.ArgumentParser) -> None:
    d.add_argument("--um-per-px", type=float, default=0.12,
                   help="scale in micrometres per pixel (100x oil: 0.1-0.25; default 0.12)")
    d.add_argument("--seed", type=int, default=0, help="layout seed (default 0)")
    d.add_argument("--coverage", type=float, default=0.45,
                   help="share of the area covered by red cells (default 0.45)")
    d.add_argument("--red-mix", default="", metavar="TYPE=SHARE,...",
                   help="abnormal red cells, e.g. 'schistocyte=0.02,target cell=0.05'")
    d.add_argument("--white-mix", default="", metavar="TYPE=WEIGHT,...",
                   help="white-cell proportions (default: a normal adult differential)")
    d.add_argument("--white-per-100-red", type=float, default=1.0, help="default 1")
    d.add_argument("--platelets-per-100-red", type=float, default=8.0, help="default 8")
    d.add_argument("--parasitaemia", type=float, default=0.0,
                   help="share of red cells carrying a ring form, 0..0.5 (default 0)")
    d.add_argument("--domain", type=float, default=0.0, help="stain/optics shift 0..1")


def cmd_field(args: argparse.Namespace) -> int:
    from unihema.synth.layout import plan_smear
    from unihema.synth.smear import render_layout, write_field

    spec = spec_from_args(args)
    t0 = time.perf_counter()
    um = args.um_per_px
    layout = plan_smear(args.width * um, args.height * um, args.seed, spec)
    factors = [float(f) for f in args.magnifications.split(",")] if args.magnifications else [1.0]
    written = {}
    for f in factors:
        name = "field" if f == 1.0 and len(factors) == 1 else f"field_x{f:g}"
        written[name] = write_field(args.out, render_layout(layout, um / f), name=name)
    dt = time.perf_counter() - t0
    if args.json:
        print(json.dumps({k: v["summary"] for k, v in written.items()}, indent=2))
    for name, meta in written.items():
        print(f"{args.out}/{name}.png: {meta['width']}x{meta['height']} px at "
              f"{meta['um_per_px']:g} um/px, cells {meta['summary']['lineages']}")
    print(f"done in {dt:.1f} s; truth in <name>_cells.jsonl, summary in <name>.json")
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    from unihema.synth.scan import write_scan

    spec = spec_from_args(args)
    size = (args.height or args.size, args.size)
    meta = write_scan(args.out, size, um_per_px=args.um_per_px, seed=args.seed, spec=spec,
                      seam=args.seam or None, seam_cells=args.seam_cells, tile=args.tile,
                      compression=None if args.compression == "none" else args.compression,
                      instances=not args.no_instances, progress=not args.no_progress)
    if args.json:
        print(json.dumps(meta, indent=2))
    print(f"{args.out}/scan.tif: {meta['width']}x{meta['height']} px at {meta['um_per_px']:g} "
          f"um/px, {meta['cells']} cells ({meta['cells_on_seams']} on seams, "
          f"{meta['seam_cells']} placed there) in {meta['seconds']['total']:.1f} s")
    return 0


def cmd_cohort(args: argparse.Namespace) -> int:
    from unihema.synth.cohort import generate_cohort

    s = generate_cohort(args.out, patients=args.patients, cells_per_patient=args.cells,
                        seed=args.seed, size=args.crop_size, domain=args.domain,
                        workers=args.workers, progress=not args.no_progress)
    if args.json:
        print(json.dumps(s, indent=2))
    per = ", ".join(f"{k} {v}" for k, v in s["diagnoses"].items())
    print(f"{args.out}/cohort.jsonl: {s['patients']} patients ({per}), {s['cells']} cells of "
          f"{s['crop_size']} px in {s['seconds']:.1f} s ({args.workers} process(es))")
    return 0


def add_cohort_command(dsub) -> None:
    """Add ``cohort`` (a synthetic patient cohort, :mod:`unihema.synth.cohort`) to ``dsub``."""
    d = dsub.add_parser("cohort", help="write a synthetic patient cohort with exact truth",
                        description="Patients with a diagnosis (healthy or one of four AML "
                        "subtypes), genetic findings and 100s of single white-cell crops whose "
                        "types and look follow the diagnosis (see docs/patient_data.md).")
    d.add_argument("--out", required=True, help="output folder")
    d.add_argument("--patients", type=int, default=300, help="default 300")
    d.add_argument("--cells", default="100:200", metavar="LO:HI",
                   help="cells per patient, drawn uniformly in LO..HI (default 100:200)")
    d.add_argument("--seed", type=int, default=0, help="default 0")
    d.add_argument("--crop-size", type=int, default=64,
                   help="crop side in pixels (default 64, as the demo's classify crops)")
    d.add_argument("--domain", type=float, default=0.0, help="stain/optics shift 0..1")
    d.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.add_argument("--json", action="store_true", help="print cohort.json")
    d.set_defaults(func=cmd_cohort)


def add_synth_commands(dsub) -> None:
    """Add ``field``, ``scan`` and ``cohort`` to the ``unihema data`` subparsers ``dsub``."""
    add_cohort_command(dsub)
    d = dsub.add_parser("field", help="write one full-size synthetic field with per-cell truth",
                        description="Render a camera field (default 1920x1440 at 0.12 um/px) "
                        "with exact truth for every cell: box, lineage, type, attributes, "
                        "instance mask, infection.")
    d.add_argument("--out", required=True, help="output folder")
    d.add_argument("--width", type=int, default=1920, help="pixels (default 1920)")
    d.add_argument("--height", type=int, default=1440, help="pixels (default 1440)")
    d.add_argument("--magnifications", default="", metavar="F,F,...",
                   help="also render the same content at these factors, e.g. 0.5,1,2")
    _add_spec_args(d)
    d.add_argument("--json", action="store_true", help="print the truth summaries as JSON")
    d.set_defaults(func=cmd_field)

    d = dsub.add_parser("scan", help="write a stitched synthetic scan as a tiled TIFF",
                        description="Stream a large scan tile by tile into a tiled TIFF with "
                        "its instance map and one JSON line of truth per cell, including "
                        "cells placed on the seams of analysis tiles.")
    d.add_argument("--out", required=True, help="output folder")
    d.add_argument("--size", type=int, default=6000, help="width in pixels (default 6000)")
    d.add_argument("--height", type=int, default=None, help="height (default: --size)")
    d.add_argument("--seam", type=int, default=512,
                   help="analysis tile side whose borders get seam cells (0: none)")
    d.add_argument("--seam-cells", type=int, default=40, help="cells on seams (default 40)")
    d.add_argument("--tile", type=int, default=512, help="TIFF tile side (default 512)")
    d.add_argument("--compression", default="zlib", choices=("zlib", "none"))
    d.add_argument("--no-instances", action="store_true", help="skip scan_instances.tif")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_spec_args(d)
    d.add_argument("--json", action="store_true", help="print scan.json")
    d.set_defaults(func=cmd_scan)
