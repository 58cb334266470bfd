"""Measure the near-duplicate threshold on real data (the figures in docs/data_format.md).

    python experiments/measure_near_duplicates.py bccd=../shared/datasets/BCCD \\
        chula_rbc12=../shared/datasets/Chula-RBC-12 wbc_seg_zheng=../shared/datasets/WBC-Seg-Zheng

For each dataset (every split, each distinct image file once) it prints

* the pairs of distinct files (not byte copies) within ``--show`` bits, closest first, with their
  paths: look at them; each is either the same picture (a true near duplicate) or a false pair;
* how many such pairs lie within the threshold, and the closest distances;
* the distance between ``--copies`` images and a changed copy of each (JPEG quality 30-90 or
  PNG, resized by 0.5-1.5, cropped by up to ``--crop`` per axis, split at random between the two
  sides), as the matcher measures it: its maximum must stay within the threshold.

A pair of datasets is also compared (cross pairs within the threshold).
"""

from __future__ import annotations

import argparse
import io as _io
import random
from pathlib import Path

import numpy as np
from PIL import Image


from unihema.data import imagehash as ih  # noqa: E402
from unihema.data import io  # noqa: E402
from unihema.data.catalog import DataError, get_adapter  # noqa: E402
from unihema.data.duplicates import hash_files, image_file  # noqa: E402


def changed_copy(img: np.ndarray, rng: random.Random, crop: float) -> np.ndarray:
    h, w = img.shape[:2]
    cx, cy = rng.uniform(0, crop), rng.uniform(0, crop)
    left, top = rng.uniform(0, cx), rng.uniform(0, cy)
    out = Image.fromarray(img[round(top * h):h - round((cy - top) * h),
                              round(left * w):w - round((cx - left) * w)])
    scale = rng.choice([0.5, 0.75, 1.0, 1.25, 1.5])
    if scale != 1.0:
        out = out.resize((max(8, round(out.width * scale)), max(8, round(out.height * scale))),
                         rng.choice([Image.BILINEAR, Image.BICUBIC, Image.LANCZOS]))
    buf = _io.BytesIO()
    if rng.random() < 0.5:
        out.save(buf, "PNG")
    else:
        out.save(buf, "JPEG", quality=rng.choice([30, 50, 75, 90]))
    return np.asarray(Image.open(buf).convert("RGB"))


def load(key: str, root: str):
    adapter = get_adapter(key, root, on_error="skip")
    files = []
    for split in adapter.splits:
        try:
            files += [image_file(s.image_path) for s in adapter.load(split)]
        except DataError as exc:
            print(f"  {key}/{split}: not read: {exc}")
    files = list(dict.fromkeys(files))
    kept = [(f, g) for f, g in zip(files, hash_files(files)) if not isinstance(g, DataError)]
    return [f for f, _ in kept], [g[0] for _, g in kept], np.stack([g[1] for _, g in kept])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="+", metavar="KEY=DIR")
    ap.add_argument("--show", type=int, default=24, help="list distinct pairs within N bits")
    ap.add_argument("--copies", type=int, default=100, help="changed copies per dataset")
    ap.add_argument("--crop", type=float, default=0.03, help="largest crop per axis")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t = ih.NEAR_THRESHOLD
    print(f"threshold {t} of {ih.HASH_BITS} bits; changed copies cropped by up to "
          f"{args.crop:.0%} per axis")
    sets = {}
    for item in args.datasets:
        key, _, root = item.partition("=")
        files, shas, hashes = load(key, root)
        sets[key] = (root, files, shas, hashes)
        pairs = [(d, i, j) for i, j, d in ih.near_pairs(hashes, threshold=args.show)
                 if shas[i] != shas[j]]
        pairs.sort()
        exact = len(shas) - len(set(shas))
        print(f"\n{key}: {len(files)} files, {exact} byte copies; distinct pairs within "
              f"{args.show} bits: {len(pairs)}, within the threshold: "
              f"{sum(d <= t for d, _, _ in pairs)}")
        for d, i, j in pairs:
            rel = [Path(files[k]).resolve().relative_to(Path(root).resolve()).as_posix()
                   for k in (i, j)]
            print(f"  {d:3d}  {rel[0]}  {rel[1]}")
        rng = random.Random(args.seed)
        dists = []
        for k in rng.sample(range(len(files)), min(args.copies, len(files))):
            copy = ih.perceptual_hash(changed_copy(io.read_image(files[k]), rng, args.crop))
            dists.append(int(min(ih.distance(hashes[k, 0], copy).min(),
                                 ih.distance(copy[0], hashes[k]).min())))
        print(f"  changed copies ({len(dists)}): max {max(dists)}, median "
              f"{int(np.median(dists))}, within the threshold {sum(d <= t for d in dists)}")
    keys = list(sets)
    for a_i, a in enumerate(keys):
        for b in keys[a_i + 1:]:
            cross = ih.near_pairs(sets[a][3], sets[b][3], threshold=t)
            print(f"\n{a} x {b}: {len(cross)} pair(s) within the threshold")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
