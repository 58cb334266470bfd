"""Training checkpoints that resume exactly, written so that a crash never leaves a usable-looking
but damaged one.

Layout of ``<output_dir>/checkpoints/step_00000120/``::

    model.safetensors       the model's state_dict (plain path; a DeepSpeed run writes its own
                            engine folder ``deepspeed/`` instead, partitioned per rank)
    optimizer.safetensors   every optimizer state tensor, keyed ``state.<param index>.<name>``
    state.json              step, optimizer structure (param groups, non-tensor state values),
                            scheduler, grad scaler, sampler position, Python and NumPy RNG states
    rng_rank<r>.safetensors torch CPU (and CUDA) generator states of rank r
    rng_rank<r>.json        Python and NumPy generator states of rank r
    COMPLETE                JSON {"step": N, "files": {relative path: sha256}}, written last

No pickle is written or read on the plain path: tensors live in safetensors, the rest in JSON.
(DeepSpeed's engine folder is DeepSpeed's own format, written and read by DeepSpeed for the run
that made it.)

Atomicity: a checkpoint is assembled in a hidden temporary folder beside its final name, renamed
into place, and only then is ``COMPLETE`` written (itself through a temporary file and a
rename). :func:`find_latest` accepts a folder only when ``COMPLETE`` exists and every file it
lists exists with the recorded sha256; a partial or damaged checkpoint (no marker, missing or
truncated file, changed bytes) is skipped with a warning in favour of the previous one.

Exact resume needs every piece of state that decides the next step:

* weights, optimizer moments and step counts, the LR scheduler and the fp16 grad scaler;
* the mixture sampler's position (``MixtureSampler.state_dict``). With DataLoader workers the
  sampler runs ahead of training (prefetch), so the trainer records the sampler state *as of
  the last consumed batch*, not the sampler's live state;
* augmentation randomness, which is not carried: each item's generator is seeded from
  ``(seed, global step, item index)`` (``TaskDataset`` epoch = the step that drew it), so it does
  not depend on which worker process decoded the item or on how many items were decoded before;
* the Python, NumPy and torch generators of the training process (dropout, any sampling in
  heads), per rank.

Bitwise equality after resume additionally requires the same hardware, thread count and
deterministic kernels (``torch.use_deterministic_algorithms``); on CPU this holds.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch

from unihema.modeling import weights
from unihema.utils import sha256_file

logger = logging.getLogger(__name__)

MARKER = "COMPLETE"
STATE = "state.json"
MODEL = "model.safetensors"
OPTIMIZER = "optimizer.safetensors"
DS_FOLDER = "deepspeed"  # the DeepSpeed engine checkpoint inside a unihema checkpoint folder
DS_TAG = "ds"
_NAME = re.compile(r"^step_(\d{8,})$")


class CheckpointError(RuntimeError):
    """A checkpoint is incomplete, damaged or does not fit this run."""


def step_dir(root: Path, step: int) -> Path:
    return Path(root) / f"step_{step:08d}"


# --------------------------------------------------------------------------- RNG states
def rng_state() -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
    """``(json part, tensor part)`` of the Python, NumPy and torch generators."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    js = {"python": [version, list(internal), gauss],
          "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda{i}"] = s
    return js, tensors


def set_rng_state(js: Dict[str, Any], tensors: Dict[str, torch.Tensor]) -> None:
    version, internal, gauss = js["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = js["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = sorted(k for k in tensors if k.startswith("torch_cuda"))
    if cuda and torch.cuda.is_available():
        n = min(len(cuda), torch.cuda.device_count())
        torch.cuda.set_rng_state_all([tensors[f"torch_cuda{i}"] for i in range(n)])


# --------------------------------------------------------------------------- optimizer
def flatten_optimizer(state: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
    """A torch optimizer ``state_dict()`` -> ``(JSON structure, flat tensors)``.

    Tensor values become ``state.<param index>.<name>`` entries; plain values stay in the JSON
    under the same keys. :func:`unflatten_optimizer` inverts it exactly.
    """
    tensors: Dict[str, torch.Tensor] = {}
    plain: Dict[str, Dict[str, Any]] = {}
    for idx, entry in state["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"state.{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                plain.setdefault(str(idx), {})[name] = value
    return {"param_groups": state["param_groups"], "plain": plain}, tensors


def unflatten_optimizer(js: Dict[str, Any], tensors: Dict[str, torch.Tensor]) -> Dict[str, Any]:
    state: Dict[int, Dict[str, Any]] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    for idx, entry in js["plain"].items():
        state.setdefault(int(idx), {}).update(entry)
    return {"state": state, "param_groups": js["param_groups"]}


# --------------------------------------------------------------------------- write
def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, allow_nan=True), encoding="utf-8")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def prepare(root: Path, step: int) -> Path:
    """A fresh hidden temporary folder in ``root`` to assemble the checkpoint of ``step``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".tmp_step_{step:08d}_", dir=root))


def write_rank_files(tmp: Path, rank: int) -> None:
    """This rank's RNG states (every rank calls it, rank 0 too)."""
    from safetensors.torch import save_file

    js, tensors = rng_state()
    _write_json(tmp / f"rng_rank{rank}.json", js)
    save_file(tensors, str(tmp / f"rng_rank{rank}.safetensors"))


def write_main_files(tmp: Path, *, step: int, state: Dict[str, Any],
                     model: Optional[torch.nn.Module] = None,
                     optimizer_state: Optional[Dict[str, Any]] = None) -> None:
    """Rank 0's part: model and optimizer tensors (plain path) and ``state.json``.

    The model goes through ``safetensors.torch.save_model``, which stores tied weights (the T5
    embeddings) once; :func:`load_model` restores the ties.
    """
    from safetensors.torch import save_file, save_model

    state = dict(state, step=step)
    if model is not None:
        save_model(model, str(tmp / MODEL))
    if optimizer_state is not None:
        js, tensors = flatten_optimizer(optimizer_state)
        save_file(tensors, str(tmp / OPTIMIZER))
        state["optimizer"] = js
    _write_json(tmp / STATE, state)


def finalize(tmp: Path, root: Path, step: int, keep_last: int) -> Path:
    """Rename ``tmp`` to its final name, write ``COMPLETE`` last, prune to ``keep_last``."""
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    digests = {str(p.relative_to(tmp)): sha256_file(p) for p in files}
    for p in files:
        with open(p, "rb+") as f:
            os.fsync(f.fileno())
    final = step_dir(root, step)
    if final.exists():  # a rerun of the same step (e.g. after a resume): replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(Path(root))
    marker_tmp = final / f".{MARKER}.tmp"
    _write_json(marker_tmp, {"step": step, "files": digests})
    with open(marker_tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(marker_tmp, final / MARKER)
    _fsync_dir(final)
    prune(root, keep_last)
    return final


def prune(root: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` complete checkpoints, and leftover temporary
    folders of interrupted writes; damaged checkpoints older than the kept ones go too."""
    root = Path(root)
    for tmp in root.glob(".tmp_step_*"):
        shutil.rmtree(tmp, ignore_errors=True)
    complete = [d for d in list_checkpoints(root) if (d / MARKER).is_file()]
    keep = set(complete[-keep_last:])
    oldest_kept = min((_step_of(d) for d in keep), default=None)
    for d in list_checkpoints(root):
        if d not in keep and oldest_kept is not None and _step_of(d) < oldest_kept:
            shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------- read
def _step_of(d: Path) -> int:
    m = _NAME.match(d.name)
    return int(m.group(1)) if m else -1


def list_checkpoints(root: Path) -> List[Path]:
    """Checkpoint folders of ``root``, oldest first (complete or not)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted((d for d in root.iterdir() if d.is_dir() and _NAME.match(d.name)),
                  key=_step_of)


def verify(directory: Path) -> None:
    """Raise :class:`CheckpointError` naming the problem unless ``directory`` is complete."""
    directory = Path(directory)
    marker = directory / MARKER
    if not marker.is_file():
        raise CheckpointError(f"{directory}: no {MARKER} marker (the write was interrupted)")
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
        files = dict(info["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{marker}: unreadable marker ({exc})") from None
    if STATE not in files:
        raise CheckpointError(f"{marker}: lists no {STATE}")
    for rel, digest in files.items():
        path = directory / rel
        if not path.is_file():
            raise CheckpointError(f"{path}: listed in {MARKER} but missing")
        if sha256_file(path) != digest:
            raise CheckpointError(f"{path}: sha256 differs from {MARKER} (truncated or altered; "
                                  f"{path.stat().st_size} bytes)")


def scan(root: Path) -> Tuple[Optional[Path], List[Tuple[Path, str]]]:
    """``(newest checkpoint of root that passes verify, [(damaged checkpoint, why)])``: the
    damaged ones newer than it (all of them when none passes), each logged as a warning. Older
    ones are not read (hashing every checkpoint would slow each resume). Nothing is changed."""
    damaged: List[Tuple[Path, str]] = []
    for d in reversed(list_checkpoints(root)):
        try:
            verify(d)
        except CheckpointError as exc:
            logger.warning("skipping damaged checkpoint: %s", exc)
            damaged.append((d, str(exc)))
            continue
        return d, damaged
    return None, damaged


def find_latest(root: Path) -> Optional[Path]:
    """The newest checkpoint in ``root`` that passes :func:`verify`; damaged ones are skipped
    with a warning naming the reason. ``None`` when there is none."""
    return scan(root)[0]


def set_aside(root: Path, resumed: Optional[Path], *, damaged: bool) -> List[Path]:
    """Rename every checkpoint of ``root`` newer than ``resumed`` (all of them when ``None``: a
    run from step 0) out of the run's way, so that it neither resumes from, overwrites nor
    prunes them, nor lets a later ``--resume auto`` pick one from another history:

    * ``damaged=True`` (``--resume auto``, where every newer one failed :func:`verify`):
      ``step_N`` -> ``step_N.damaged`` with a ``DAMAGED`` note of why;
    * ``damaged=False`` (a fresh start or a resume from a given checkpoint): complete ones of
      the abandoned history -> ``step_N.abandoned`` with an ``ABANDONED`` note.

    A taken name gets ``.2``, ``.3``, ... Returns the new paths.
    """
    out = []
    after = _step_of(resumed) if resumed is not None else -1
    for d in list_checkpoints(root):
        if _step_of(d) <= after or d == resumed:
            continue
        if damaged:
            try:
                verify(d)
                continue  # complete after all (written since the scan): not damaged
            except CheckpointError as exc:
                why = str(exc)
        else:
            why = (f"abandoned: the run in {Path(root).parent} restarted from "
                   f"{resumed if resumed is not None else 'step 0'}")
        kind = "damaged" if damaged else "abandoned"
        target, i = d.with_name(f"{d.name}.{kind}"), 1
        while target.exists():
            i += 1
            target = d.with_name(f"{d.name}.{kind}.{i}")
        os.replace(d, target)
        (target / kind.upper()).write_text(why + "\n", encoding="utf-8")
        logger.warning("moved the %s checkpoint %s aside to %s (%s)", kind, d.name, target, why)
        out.append(target)
    return out


def resolve(resume: str, root: Path, *, fresh: bool = False) -> Optional[Path]:
    """``train.resume`` -> the checkpoint folder to load (``None``: start fresh). Nothing is
    changed on disk (:func:`set_aside` moves damaged checkpoints once the run goes ahead).

    ``'auto'`` picks the newest complete checkpoint under ``root`` (``None`` when there is no
    checkpoint at all); a path must be a complete checkpoint (or a folder of them, whose newest
    complete one is taken).

    Raises:
        CheckpointError: ``'auto'`` finds checkpoints but every one is damaged (each listed
            with its reason), unless ``fresh``; a given path is damaged.
        ValueError: ``fresh`` without ``'auto'``.
    """
    if fresh and resume != "auto":
        raise ValueError(f"--fresh (fresh=True) only applies with --resume auto (got resume="
                         f"'{resume}'): it lets an automatic resume start from step 0 when "
                         f"every checkpoint is damaged")
    if not resume:
        return None
    if resume == "auto":
        found, damaged = scan(root)
        if found is None and damaged and not fresh:
            listed = "; ".join(why for _, why in damaged)
            raise CheckpointError(
                f"resume=auto: all {len(damaged)} checkpoint(s) in {root} are damaged ({listed}). "
                f"Nothing was changed. Resume from a copy you trust with --resume PATH, or "
                f"add --fresh to move them aside (step_N.damaged) and start from step 0")
        if found is None:
            logger.info("resume=auto: no %scheckpoint in %s, starting fresh",
                        "usable " if damaged else "", root)
        return found
    path = Path(resume)
    if not path.is_dir():
        raise FileNotFoundError(f"train.resume: '{resume}' is not a folder (give 'auto', a "
                                f"checkpoint folder step_NNNNNNNN, or a folder of them)")
    if not (path / MARKER).exists() and list_checkpoints(path):
        found = find_latest(path)
        if found is None:
            raise CheckpointError(f"train.resume: no complete checkpoint in '{path}'")
        return found
    verify(path)
    return path


def misfits(model: torch.nn.Module, directory: Path) -> List[str]:
    """Tensors of ``model.safetensors`` in ``directory`` that do not fit ``model`` (name, shape
    in the file, shape in the model); empty when it fits. Reads the file's header only."""
    try:
        return weights.mismatches(weights.read_header(Path(directory) / MODEL), model)
    except weights.WeightsError as exc:
        raise CheckpointError(str(exc)) from None


def load_model(model: torch.nn.Module, directory: Path, device: str = "cpu") -> None:
    """Load ``model.safetensors`` of a checkpoint into ``model`` (strict; a misfit names the
    tensors that differ)."""
    try:
        weights.load_into(model, Path(directory) / MODEL, device=device,
                          described_by="this run's config")
    except weights.WeightsError as exc:
        raise CheckpointError(str(exc)) from None


def read_json(path: Path) -> Any:
    try:
        return weights.read_json(path, "the JSON a training checkpoint holds")
    except weights.WeightsError as exc:
        raise CheckpointError(str(exc)) from None


def read_state(directory: Path) -> Dict[str, Any]:
    return read_json(Path(directory) / STATE)


def read_tensors(path: Path, device: str = "cpu") -> Dict[str, torch.Tensor]:
    try:
        return weights.load_tensors(path, device=device)
    except weights.WeightsError as exc:
        raise CheckpointError(str(exc)) from None


def read_rank(directory: Path, rank: int) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
    directory = Path(directory)
    js_path = directory / f"rng_rank{rank}.json"
    if not js_path.is_file():
        raise CheckpointError(f"{directory}: no RNG state for rank {rank} (the checkpoint was "
                              f"written by a run with fewer processes)")
    return (read_json(js_path),
            read_tensors(directory / f"rng_rank{rank}.safetensors"))


def load_optimizer_state(directory: Path) -> Dict[str, Any]:
    directory = Path(directory)
    js = read_state(directory).get("optimizer")
    if js is None:
        raise CheckpointError(f"{directory}: no optimizer state in {STATE}")
    return unflatten_optimizer(js, read_tensors(directory / OPTIMIZER))


def files_of(directory: Path) -> Iterable[Path]:
    return sorted(p for p in Path(directory).rglob("*") if p.is_file())
