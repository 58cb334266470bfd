"""What the inference commands (ask, detect, segment, classify, describe) are given, checked
before the model is loaded: images, class names, the output file and the device.

* ``IMAGE`` is one or more image files or folders (a folder stands for its image files, sorted
  by name, not recursive); the model is loaded once and each image's result is printed under a
  ``== IMAGE ==`` header when there are several. One image that cannot be read is reported on
  stderr and the others still run (exit status 2 at the end).
* ``--classes`` / ``--labels`` take one value each, a comma-separated list, and may repeat
  (``--classes "red blood cell,platelet"`` or ``--classes "red blood cell" --classes
  platelet``): a value never swallows the image that follows it, as a space-separated list
  (``nargs``) would.
* ``--out`` must name a new or existing *file* with an image extension in an existing folder,
  and goes with a single image; otherwise the command stops before loading anything.
* ``--device`` must exist on this machine (``cuda`` without CUDA is an error, not a fallback).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, List, Optional

from unihema.data.catalog import DataError

#: files a folder given as IMAGE contributes
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif")
#: extensions an overlay can be written with (``--out``)
OUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
#: options holding comma-separated name lists
NAME_OPTIONS = ("classes", "labels")


def split_names(values: Optional[List[str]], option: str) -> Optional[List[str]]:
    """The names of a repeatable, comma-separated option (``None`` when not given)."""
    if not values:
        return None
    names = [name.strip() for value in values for name in value.split(",")]
    if any(not name for name in names):
        shown = " ".join(f"{option} {v!r}" for v in values)
        raise ValueError(f"{shown}: an empty name; give names separated by commas, e.g. "
                         f"{option} 'red blood cell,platelet'")
    return names


def expand_images(items: List[str], names_given: Optional[str] = None) -> List[str]:
    """Image paths from files and folders, in the order given (each folder sorted).
    ``names_given``: the name-list option on the command line, for the hint of a path that
    does not exist (``--classes red blood cell IMAGE`` makes ``blood`` an image)."""
    from unihema.data.io import split_crop_path, split_npz_path

    images: List[str] = []
    for item in items:
        path = Path(item)
        if split_npz_path(item) is not None or split_crop_path(item) is not None:
            images.append(item)  # an archive member or a window: read_image checks it
        elif path.is_dir():
            found = sorted(str(f) for f in path.iterdir()
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise DataError(f"{item}: the folder holds no image files "
                                f"({', '.join(IMAGE_SUFFIXES)})")
            images.extend(found)
        elif not path.exists():
            hint = (f" ({names_given} takes one comma-separated value: {names_given} "
                    f"'red blood cell,platelet' IMAGE)") if names_given else ""
            raise DataError(f"{item}: no such image file or folder{hint}")
        else:
            images.append(item)
    return images


def check_out(out: Optional[str], n_images: int, suffixes=OUT_SUFFIXES,
              option: str = "--out") -> None:
    """Refuse an ``--out`` (or ``--mask``) that could not be written, before any inference."""
    if out is None:
        return
    path = Path(out)
    allowed = ", ".join(suffixes)
    if path.is_dir() or out.endswith(("/", "\\")):
        raise ValueError(f"{option} {out}: is a folder; give an image file name ending in "
                         f"one of {allowed}")
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"{option} {out}: unknown image extension '{path.suffix}'; use one "
                         f"of {allowed}")
    if not path.parent.is_dir():
        raise ValueError(f"{option} {out}: the folder {path.parent} does not exist")
    if n_images > 1:
        raise ValueError(f"{option} {out}: writes one image, but {n_images} images were "
                         f"given; run one image per {option}")


def take_extra_images(args: argparse.Namespace, extra: List[str]) -> bool:
    """Add images given after an option (``IMAGE --out x.png IMAGE2``: argparse fills a
    positional list once) to ``args.image``; ``False`` when ``extra`` holds anything else.
    Not for ``ask``, whose question is the last positional."""
    if not isinstance(getattr(args, "image", None), list) or hasattr(args, "question"):
        return False
    if any(item.startswith("-") for item in extra):
        return False
    args.image.extend(extra)
    return True


def per_image(command: Callable[[argparse.Namespace], int]
              ) -> Callable[[argparse.Namespace], int]:
    """``command`` (which handles ``args.image``, one path) run on every image of
    ``args.image`` (a list of files and folders), after checking every input and loading the
    model once into ``args.pipeline``."""

    def run(args: argparse.Namespace) -> int:
        from unihema.api.pipeline import UniHemaPipeline, resolve_device

        names_given = None
        for option in NAME_OPTIONS:
            if getattr(args, option, None) is not None:
                setattr(args, option, split_names(getattr(args, option), f"--{option}"))
                names_given = f"--{option}"
        images = expand_images(list(args.image), names_given)
        check_out(getattr(args, "out", None), len(images))
        if getattr(args, "mask", None):
            check_out(args.mask, len(images), suffixes=(".png",), option="--mask")
        args.several = len(images) > 1
        device = resolve_device(args.device)
        pipeline = UniHemaPipeline.from_pretrained(args.model, device=device)
        if len(images) == 1:
            return command(argparse.Namespace(**{**vars(args), "image": images[0],
                                                 "pipeline": pipeline}))
        status = 0
        for image in images:
            print(f"== {image} ==", flush=True)
            one = argparse.Namespace(**{**vars(args), "image": image, "pipeline": pipeline})
            try:
                status = max(status, int(command(one) or 0))
            except (DataError, ValueError) as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
                status = 2
        return status

    return run
