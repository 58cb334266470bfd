"""The inference commands of ``unihema`` (ask, detect, segment, classify, describe) and how
their results are printed.

Each command prints one :class:`~unihema.api.UniHemaPipeline` result through :func:`emit`:
as text lines, or with ``--json`` as the result dict in JSON on stdout; either way each
warning goes to stderr as ``warning [code]: message`` (codes: docs/model.md, "Warnings").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np

from unihema.utils import atomic_save, jsonable


def emit(args: argparse.Namespace, result: Dict[str, Any],
         text: Callable[[Dict[str, Any]], List[str]]) -> int:
    """Print ``result``: JSON with ``args.json``, else the lines ``text(result)``; warnings
    to stderr. Returns the exit status (0)."""
    for w in result.get("warnings", []):
        print(f"warning [{w['code']}]: {w['message']}", file=sys.stderr)
    if getattr(args, "json", False):
        if getattr(args, "several", False):  # one JSON line per image, naming it
            print(json.dumps({"image": str(args.image), **jsonable(result, finite=False)}))
        else:
            print(json.dumps(jsonable(result, finite=False), indent=2))
    else:
        for line in text(result):
            print(line)
    return 0


def _save_overlay(picture, path: Path, size: tuple, result: Dict[str, Any]) -> None:
    """Write an overlay atomically; warn when it had to be drawn smaller than the input."""
    from unihema.api.checks import warning
    from unihema.evaluation.visualize import OVERLAY_MAX_SIDE

    from PIL import Image

    fmt = Image.registered_extensions()[path.suffix.lower()]
    atomic_save(path, lambda tmp: picture.save(tmp, format=fmt))
    h, w = size
    if max(h, w) > OVERLAY_MAX_SIDE:
        result["warnings"].append(warning(
            "overlay_downscaled", f"{path}: the {w}x{h} input was drawn with its longest side "
            f"at {OVERLAY_MAX_SIDE} px"))
    result["overlay"] = str(path)


def _pipeline(args: argparse.Namespace):
    if getattr(args, "pipeline", None) is not None:  # loaded once by cli.inputs.per_image
        return args.pipeline
    from unihema.api import UniHemaPipeline

    return UniHemaPipeline.from_pretrained(args.model, device=getattr(args, "device", "cpu"))


def cmd_ask(args: argparse.Namespace) -> int:
    pipe = _pipeline(args)
    res = pipe.ask(args.image, args.question)
    if args.show_reading:
        reading = pipe.read(args.image)
        res["reading"] = reading["entries"]

    def text(r):
        lines = [r["answer"]]
        if "reading" in r:
            lines.append("reading: " + ("; ".join(
                f"{e['text']} ({e['confidence']:.2f})" for e in r["reading"])
                or "(this model reads nothing: it was trained without model.reading)"))
        return lines

    return emit(args, res, text)


def cmd_detect(args: argparse.Namespace) -> int:
    from unihema.data.io import read_image
    from unihema.evaluation.visualize import draw_detections

    out = Path(args.out) if args.out else None  # checked by inputs.per_image
    pipe = _pipeline(args)
    res = pipe.detect(args.image, args.classes or None, min_score=args.min_score)
    if out:
        arr = read_image(args.image)
        _save_overlay(draw_detections(arr, res["objects"]), out, arr.shape[:2], res)

    def text(r):
        lines = [f"{o['label']:24s} {o['score']:.3f}  {o['box']}" for o in r["objects"]]
        lines.append(f"counts (score >= {r['min_score']:g}): "
                     + ", ".join(f"{k} {v}" for k, v in r["counts"].items()))
        return lines + ([f"wrote {r['overlay']}"] if "overlay" in r else [])

    return emit(args, res, text)


def cmd_segment(args: argparse.Namespace) -> int:
    from PIL import Image

    from unihema.data.io import read_image
    from unihema.evaluation.visualize import draw_mask

    out = Path(args.out) if args.out else None  # checked by inputs.per_image
    mask_out = Path(args.mask) if args.mask else None
    pipe = _pipeline(args)
    res = pipe.segment(args.image, args.classes or None)
    mask = res.pop("mask")
    if len(res["classes"]) > 256:
        raise ValueError(f"{len(res['classes'])} classes do not fit a uint8 mask (256 at most)")
    res["fractions"] = {n: round(float(np.count_nonzero(mask == i)) / mask.size, 6)
                        for i, n in enumerate(res["classes"])}
    if mask_out:
        atomic_save(mask_out, lambda tmp: Image.fromarray(mask.astype(np.uint8)).save(
            tmp, format="PNG"))
        res["mask_file"] = str(mask_out)
    if out:
        arr = read_image(args.image)
        _save_overlay(draw_mask(arr, mask, res["classes"]), out, arr.shape[:2], res)

    def text(r):
        lines = [f"{n:20s} {100.0 * p:6.2f} %" for n, p in r["fractions"].items()]
        if "mask_file" in r:
            lines.append(f"wrote {r['mask_file']} (pixel value = index in: "
                         f"{', '.join(r['classes'])})")
        return lines + ([f"wrote {r['overlay']}"] if "overlay" in r else [])

    return emit(args, res, text)


def cmd_classify(args: argparse.Namespace) -> int:
    res = _pipeline(args).classify(args.image, args.labels)
    return emit(args, res, lambda r: [
        f"{n:24s} {p:.3f}" for n, p in sorted(r["probs"].items(), key=lambda kv: -kv[1])]
        + [f"label: {r['label']}"])


def cmd_describe(args: argparse.Namespace) -> int:
    res = _pipeline(args).describe(args.image)
    return emit(args, res, lambda r: [f"{k:28s} {v}" for k, v in r["attributes"].items()]
                + ([f"{'label':28s} {r['label']}"] if r["label"] else []) + [r["text"]])


def add_inference_parsers(sub) -> None:
    """Add ask, detect, segment, classify and describe to the ``unihema`` subparsers."""
    from unihema.cli.inputs import per_image

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
    q = inference("ask", "answer a free-text question about an image", cmd_ask)
    q.add_argument("question", help='e.g. "How many platelets are in the image?"')
    q.add_argument("--show-reading", action="store_true",
                   help="also print what the model read on the image (counts, types, places)")
    q = inference("detect", "detect cells and parasites; optionally draw them",
                  cmd_detect)
    q.add_argument("--classes", action="append", metavar="NAMES",
                   help="class names to find (default: the model's); " + names.format("classes"))
    q.add_argument("--min-score", type=float, default=None,
                   help="score threshold (default: the model's model.reading.score_threshold, "
                   "the one its answers count at)")
    q.add_argument("--out", default=None, help=overlay)
    q = inference("segment", "per-pixel classes; optionally draw them", cmd_segment)
    q.add_argument("--classes", action="append", metavar="NAMES",
                   help="classes, 'background' first (default: the model's); "
                   + names.format("classes"))
    q.add_argument("--out", default=None, help=overlay)
    q.add_argument("--mask", default=None, metavar="PATH",
                   help="also write the class-index mask: a uint8 PNG of the input's size, "
                   "pixel value = index in the class list (0 = background)")
    q = inference("classify", "choose a label among candidates", cmd_classify)
    q.add_argument("--labels", action="append", required=True, metavar="NAMES",
                   help="candidate labels; " + names.format("labels"))
    inference("describe", "morphology attributes and a sentence for a cell image",
              cmd_describe)
