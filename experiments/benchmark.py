"""Parameters and CPU inference latency of the unified model.

    python experiments/benchmark.py                      # tiny and base configs at 512x512
    python experiments/benchmark.py --models tiny --size 256 --repeats 10

For each model: parameters per part, and the median latency (batch 1, ``torch.inference_mode``,
after one warm-up) of
  * ``shared``: the six-task forward sharing one trunk: the image is encoded once
    (``encode_image``), the task prompts are fused with it as two batches (detection and
    segmentation with the per-pixel maps, the four others without them, as
    ``TaskHead.dense`` says), and each head runs on its slice;
  * ``separate``: six independent task forwards (trunk, text encoder, fusion, head each time).
Text heads run the decoder over a fixed 16-token target (teacher forcing) so that the cost
does not depend on when a randomly initialised model happens to stop generating.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from unihema.config import load_config
from unihema.tasks import prompts
from unihema.modeling.model import UniHema

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"tiny": ROOT / "unihema/presets/tiny_model.yaml",
          "base": ROOT / "configs/_base_/models/base.yaml"}
TARGET = "a b c d e f g h i j k l m n o"  # 15 words -> 16 decoder tokens with </s>


def task_batches(size: int):
    classes = {"detect": ["red blood cell", "white blood cell", "platelet", "ring form"],
               "segment": ["background", "red blood cell", "nucleus", "cytoplasm", "platelet",
                           "malaria parasite"],
               "classify": ["lymphocyte", "monocyte", "neutrophil", "eosinophil", "basophil"]}
    fields = {"detect": {"classes": classes["detect"]}, "segment": {"classes": classes["segment"]},
              "classify": {"classes": classes["classify"]}, "morphology": {},
              "mlm": {"text": "This field shows <extra_id_0> red blood cells."},
              "vqa": {"question": "How many platelets are in the image?"}}
    out = {}
    for task, f in fields.items():
        out[task] = {"task": task, "prompts": [prompts.render(task, **f)],
                     "classes": [classes.get(task, [])], "orig_sizes": [(size, size)],
                     "scales": [1.0], "keys": ["bench"], "targets": [TARGET]}
    return out


TEXT_TASKS = ("morphology", "mlm", "vqa")


def run_dense_head(model, task, fused, batch):
    """Head of a non-text task; morphology runs its attribute layers (its sentence is text)."""
    head = model.heads[task]
    if task == "morphology":
        return head.hidden(fused["joint"])
    return head.postprocess(head(fused, batch), batch)


def slice_fused(fused, i):
    return fused.take([i])


def bench(name: str, size: int, repeats: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = load_config(MODELS[name])
    model = UniHema.from_config(cfg).eval()
    for head in model.heads.values():
        head.eval()
    image = torch.rand(1, 3, size, size)
    mask = torch.ones(1, size, size, dtype=torch.bool)
    batches = task_batches(size)
    tasks = list(batches)

    # the heads that read the per-pixel maps, then the others (which skip them, TaskHead.dense)
    groups = [[t for t in tasks if model.heads[t].dense],
              [t for t in tasks if not model.heads[t].dense]]

    def shared():
        visual = model.encode_image(image, mask)
        for group in groups:
            n = len(group)
            lean = {k: v for k, v in visual.items()
                    if model.heads[group[0]].dense or k not in ("P2", "C1")}
            fused = model.fuse({k: v.expand(n, *v.shape[1:]) for k, v in lean.items()},
                               mask.expand(n, -1, -1), [batches[t]["prompts"][0] for t in group])
            for i, t in enumerate(group):
                if t not in ("mlm", "vqa"):
                    run_dense_head(model, t, slice_fused(fused, i), batches[t])
            rows = [group.index(t) for t in TEXT_TASKS if t in group]
            if rows:  # one decoder pass for the text answers
                model.text.decoder_loss(fused["memory"][rows], fused["memory_mask"][rows],
                                        [TARGET] * len(rows))

    def separate():
        for t in tasks:
            # as in training and prediction: cell and text heads skip the per-pixel maps
            fused = model.encode(image, mask, batches[t]["prompts"], dense=model.heads[t].dense)
            if t != "mlm" and t != "vqa":
                run_dense_head(model, t, fused, batches[t])
            if t in TEXT_TASKS:
                fused["decoder_loss"]([TARGET])

    timings = {}
    with torch.inference_mode():
        for label, fn in (("shared", shared), ("separate", separate)):
            fn()  # warm-up
            runs = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                runs.append(time.perf_counter() - t0)
            timings[label] = statistics.median(runs)
    params = {k: round(v / 1e6, 2) for k, v in model.num_parameters().items()}
    return {"model": name, "size": size, "threads": threads, "repeats": repeats,
            "params_m": params, "latency_s": {k: round(v, 3) for k, v in timings.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["tiny", "base"], choices=sorted(MODELS))
    p.add_argument("--size", type=int, default=512, help="image side (default 512)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs; the median is reported")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()
    results = [bench(m, args.size, args.repeats, args.threads) for m in args.models]
    print("| model | params (M) | shared six-task forward (s) | six separate forwards (s) | "
          "speed-up |\n|---|---|---|---|---|")
    for r in results:
        lat = r["latency_s"]
        print(f"| {r['model']} | {r['params_m']['total']} | {lat['shared']} | {lat['separate']} "
              f"| {lat['separate'] / max(lat['shared'], 1e-9):.1f}x |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
