"""A plain CNN on the demo's crops: how much compute white-cell typing needs by itself.

ResNet trunk (our ``ResNetTrunk``) + global average pooling + one linear layer, AdamW with a
one-cycle schedule, batch 32, the same crops, augmentation and white-cell macro-F1 as the
demo's classification task; no text, no fusion, no other task. For example::

    python experiments/probe_plain_cnn.py --data runs/demo/data --steps 600 --width 32

Prints one line: settings, seconds, accuracy over all crops, white-cell macro-F1, then the
white-cell confusion counts (rows = truth).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from unihema.config.loader import load_config
from unihema.pipeline.collate import collate
from unihema.demo import PRESETS
from unihema.engine.data import build_task_splits
from unihema.modeling.backbone import PIXEL_MEAN, PIXEL_STD, ResNetTrunk
from unihema.synth import WHITE_TYPES


def macro_f1(truth, pred) -> float:
    scores = []
    for c in set(truth):
        tp = sum(t == c and p == c for t, p in zip(truth, pred))
        fp = sum(t != c and p == c for t, p in zip(truth, pred))
        fn = sum(t == c and p != c for t, p in zip(truth, pred))
        scores.append(2 * tp / max(1, 2 * tp + fp + fn))
    return sum(scores) / max(1, len(scores))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a generated synthetic dataset folder")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--width", type=int, default=16, help="ResNet base width (demo: 16)")
    ap.add_argument("--norm", default="batch", choices=["batch", "group"])
    ap.add_argument("--lr", type=float, default=2e-3)
    args = ap.parse_args()
    entries = [x for s in ("train", "test")
               for x in (f"data.{s}.0.root={args.data}", f"data.{s}.0.tasks=[classify]")]
    cfg = load_config(str(PRESETS / "demo.yaml"), entries + ["model.tasks=[classify]"])
    train = build_task_splits(cfg.data.train, cfg, train=True)[0]
    test = build_task_splits(cfg.data.test, cfg, train=False)[0]
    names = sorted({s.label for s in train.samples})
    torch.manual_seed(0)
    trunk = ResNetTrunk(depth=18, width=args.width, norm=args.norm)
    fc = nn.Linear(trunk.channels["C5"], len(names))
    params = list(trunk.parameters()) + list(fc.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.02)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=args.steps,
                                                pct_start=0.1)
    mean, std = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), torch.tensor(PIXEL_STD).view(1, 3, 1, 1)

    def forward(b):
        return fc(trunk((b["images"] - mean) / std)["C5"].mean((2, 3)))

    def labels(b):
        return torch.tensor([names.index(c[i]) for c, i in zip(b["classes"],
                                                                 b["labels"].tolist())])

    t0, step = time.perf_counter(), 0
    trunk.train()
    while step < args.steps:
        for b in DataLoader(train.dataset, batch_size=32, shuffle=True, collate_fn=collate):
            loss = F.cross_entropy(forward(b), labels(b))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step >= args.steps:
                break
    trunk.eval()
    pred, truth = [], []
    with torch.no_grad():
        for b in DataLoader(test.dataset, batch_size=64, collate_fn=collate):
            pred += forward(b).argmax(1).tolist()
            truth += labels(b).tolist()
    white = [i for i, y in enumerate(truth) if names[y] in WHITE_TYPES]
    acc = sum(p == y for p, y in zip(pred, truth)) / len(truth)
    f1 = macro_f1([truth[i] for i in white], [pred[i] for i in white])
    print(f"steps {args.steps} width {args.width} norm {args.norm} lr {args.lr}: "
          f"{time.perf_counter() - t0:.0f} s, accuracy (all crops) {acc:.3f}, "
          f"white-cell macro-F1 {f1:.3f}")
    conf = Counter((names[truth[i]], names[pred[i]]) for i in white)
    types = sorted({names[truth[i]] for i in white})
    for t in types:
        print(f"  {t[:20]:20s}", [conf[(t, p)] for p in types])


if __name__ == "__main__":
    main()
