"""Train the demo's visual trunk alone on white-cell crops: the ceiling of its features.

A plain classifier (the tiny ResNet trunk, mean-pooled C5, one linear layer) trained on the
white-cell crops of a generated synthetic dataset, scored on its test crops. It has none of
the unified model's prompt, fusion or decoder, so a step costs a fraction of a unified step;
what it reaches for a number of crops shown is what the trunk can learn from that many, e.g.::

    python experiments/probe_trunk.py --data runs/demo/data --steps 700 --batch 32
    python experiments/probe_trunk.py --data runs/demo/data --steps 700 --target nucleus_shape

Crops are held in memory (the white cells of a demo dataset are a few tens of MB), flipped and
rotated by multiples of 90 degrees. Prints one JSON line: settings, seconds per step, crops
shown, test accuracy and macro-F1, per-class F1.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.classification import multiclass_f1_score

from unihema.data.catalog import load_dataset
from unihema.data.io import read_image
from unihema.modeling.backbone import PIXEL_MEAN, PIXEL_STD, ResNetTrunk
from unihema.synth import WHITE_TYPES


def load_white_crops(root: Path, split: str, target: str
                     ) -> Tuple[torch.Tensor, torch.Tensor, List[str]]:
    """``(images [N, 3, s, s] in [0, 1], labels [N], class names)`` of the white-cell crops of
    one split of a generated dataset (read by its adapter); ``target`` is ``type`` or a
    morphology attribute."""
    samples = [s for s in load_dataset("synthetic_smear", root, split)
               if s.meta.get("kind") == "crop" and s.label in WHITE_TYPES]
    if not samples:
        raise ValueError(f"{root}: split '{split}' has no white-cell crops")
    if target == "type":
        names: Sequence[str] = WHITE_TYPES
        values = [s.label for s in samples]
    else:
        missing = [s.sample_id for s in samples if target not in (s.attributes or {})]
        if missing:
            raise ValueError(f"{root}/{split}: crops {missing[:3]} have no attribute '{target}'")
        values = [s.attributes[target] for s in samples]
        names = sorted(set(values))
    images = np.stack([read_image(s.image_path) for s in samples])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    y = torch.tensor([list(names).index(v) for v in values])
    return x, y, list(names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, type=Path, help="a generated synthetic dataset")
    ap.add_argument("--steps", type=int, default=700, help="optimizer steps (default 700)")
    ap.add_argument("--batch", type=int, default=32, help="crops per step (default 32)")
    ap.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default 1e-3)")
    ap.add_argument("--width", type=int, default=16, help="trunk base width (the demo's: 16)")
    ap.add_argument("--depth", type=int, default=18, help="trunk depth (the demo's: 18)")
    ap.add_argument("--target", default="type",
                    help="'type' (default) or a morphology attribute, e.g. nucleus_shape")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    x_train, y_train, names = load_white_crops(args.data, "train", args.target)
    x_test, y_test, _ = load_white_crops(args.data, "test", args.target)
    mean = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD).view(1, 3, 1, 1)
    trunk = ResNetTrunk(depth=args.depth, width=args.width, norm="batch")
    head = nn.Linear(trunk.channels["C5"], len(names))
    params = list(trunk.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, args.lr, weight_decay=0.02)

    def logits(x: torch.Tensor) -> torch.Tensor:
        return head(trunk((x - mean) / std)["C5"].mean((2, 3)))

    t0 = time.perf_counter()
    for _ in range(args.steps):
        idx = torch.randint(len(x_train), (args.batch,))
        x = torch.rot90(x_train[idx], int(torch.randint(4, (1,))), (2, 3))
        if torch.rand(1) < 0.5:
            x = x.flip(3)
        loss = F.cross_entropy(logits(x), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    trunk.eval()
    with torch.no_grad():
        pred = torch.cat([logits(x_test[i:i + 64]).argmax(1) for i in range(0, len(x_test), 64)])
    n = len(names)
    per_class = multiclass_f1_score(pred, y_test, num_classes=n, average="none").tolist()
    print(json.dumps({
        "target": args.target, "steps": args.steps, "batch": args.batch, "lr": args.lr,
        "width": args.width, "train_crops": len(x_train), "test_crops": len(x_test),
        "crops_shown": args.steps * args.batch, "s_per_step": round(seconds / args.steps, 3),
        "accuracy": round(float((pred == y_test).float().mean()), 3),
        "macro_f1": round(float(multiclass_f1_score(pred, y_test, num_classes=n,
                                                    average="macro")), 3),
        "f1": {c: round(v, 3) for c, v in zip(names, per_class)}}))


if __name__ == "__main__":
    main()
