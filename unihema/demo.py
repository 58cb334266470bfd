"""``unihema demo``: the end-to-end run on the embedded synthetic smears.

Steps: generate train/val/test fields (reused when the folder already holds the same
generation), check them, draw a preview grid, and write ``report.md`` beside a summary table.
Every file lands under the run folder; nothing outside it is touched.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from unihema.config import dump_config, load_config, to_dict
from unihema.config.loader import atomic_write_text
from unihema.data.sample import TASKS
from unihema.tables import markdown_table, plain_table

logger = logging.getLogger(__name__)

#: ``--quick``: the same path on a small generation, for tests and a first look.
QUICK_OVERRIDES = ("synth.train=48", "synth.val=12", "synth.test=12")


def _reuse(data_dir: Path, synth_cfg) -> bool:
    manifest = data_dir / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        old = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return old.get("config") == to_dict(synth_cfg)


def run_demo(
    out: str | Path,
    *,
    quick: bool = False,
    config: Optional[str] = None,
    overrides: Sequence[str] = (),
) -> int:
    """Run the demo into ``out``; returns a process exit code (0 = everything checked out)."""
    from unihema.data.catalog import get_adapter
    from unihema.data.check import check_dataset
    from unihema.data.preview import pick_samples, preview_grid
    from unihema.synth import generate_dataset

    t_start = time.perf_counter()
    out = Path(out)
    cfg = load_config(config, list(QUICK_OVERRIDES if quick else ()) + list(overrides))
    out.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out)
    data_dir = out / "data"

    # 1. data
    if _reuse(data_dir, cfg.synth):
        logger.info("reusing the synthetic dataset in %s (same generator config)", data_dir)
        gen_s = 0.0
    else:
        logger.info("generating synthetic smears into %s", data_dir)
        t0 = time.perf_counter()
        # generate beside the old folder and swap, so no stale file of an older generation
        # survives and an interrupted run leaves the previous data intact
        staging = out / "data.partial"
        shutil.rmtree(staging, ignore_errors=True)
        generate_dataset(staging, cfg.synth)
        shutil.rmtree(data_dir, ignore_errors=True)
        staging.rename(data_dir)
        gen_s = time.perf_counter() - t0
    # 2. check
    report = check_dataset("synthetic_smear", data_dir)
    report.write_json(out / "data_check.json")
    # 3. preview
    adapter = get_adapter("synthetic_smear", data_dir)
    samples = adapter.load("train")
    preview = preview_grid(pick_samples(samples, 12), out / "preview.png")

    # 4. tables
    rows: List[List[str]] = [["split", "samples", *TASKS]]
    for s in report.splits:
        rows.append([s.split, str(s.summary["samples"]),
                     *(str(s.summary["tasks"].get(t, 0)) for t in TASKS)])
    train_summary: Dict = report.splits[0].summary
    class_rows = [["class", "boxes (train)"]] + [
        [k, str(v)] for k, v in train_summary["boxes_per_class"].items()
    ]
    total_s = time.perf_counter() - t_start
    md = [
        "# unihema demo",
        "",
        f"Synthetic smears in `{data_dir}`, generated in {gen_s:.1f} s"
        f" (size {cfg.synth.size}, seed {cfg.synth.seed}, domain {cfg.synth.domain}).",
        "",
        "## Supervision per task (samples)",
        "",
        markdown_table(rows),
        "",
        "## Objects per class",
        "",
        markdown_table(class_rows),
        "",
        f"## Data check: {'no problems' if report.ok else f'{len(report.problems)} problem(s)'}",
        "",
        *(f"- {p}" for p in report.problems[:50]),
        "## Preview",
        "",
        f"![preview]({preview.name})",
        "",
        f"Total time {total_s:.1f} s.",
    ]
    atomic_write_text(out / "report.md", "\n".join(md) + "\n")

    print("\nsupervision per task (samples):")
    print(plain_table(rows))
    print(f"\ndata check: {'no problems' if report.ok else f'{len(report.problems)} problem(s)'}")
    for p in report.problems[:20]:
        print(f"  {p}")
    print(f"\nwrote {out / 'report.md'}, {preview}, {out / 'data_check.json'}, "
          f"{out / 'config.yaml'}")
    print(f"demo finished in {total_s:.1f} s")
    return 0 if report.ok else 1
