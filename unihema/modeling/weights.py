"""Reading weight files and their JSON descriptions so that every failure names its file.

A model folder (``config.json`` + ``model.safetensors``), a training checkpoint and a baseline
folder (``baseline.json`` + ``model.safetensors``) are read through these functions:

* :func:`read_json` parses a JSON file; an empty, cut or non-UTF-8 file raises
  :class:`WeightsError` naming the file, the line and column, and what was expected.
* :func:`read_header` checks a safetensors file *before* safetensors parses it: empty, too
  short, a pickle or a ``torch.save`` zip renamed to ``.safetensors``, a header that is not
  JSON, and tensor data cut short or followed by stray bytes each get their own message. Nothing
  is ever unpickled: a pickle is recognised by its first bytes only.
* :func:`mismatches` compares the tensors a file holds with those a model expects (name and
  shape; tied weights stored once count as present), and :func:`summarize` turns the list
  into one line, at most ten entries and then "and N more".
* :func:`load_into` is the three together: check, compare, then load.
"""

from __future__ import annotations

import collections.abc
import inspect
import json
import struct
import typing
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Union

import torch
from torch import nn

PathLike = Union[str, Path]
#: name -> shape of every tensor a safetensors file holds
Header = Dict[str, Tuple[int, ...]]

#: safetensors refuses headers above 100 MB; a larger length field means another format
_MAX_HEADER = 100_000_000


class WeightsError(ValueError):
    """A weights file or its JSON description is unreadable or does not fit the model; the
    message names the file, the key or tensor concerned and what was expected."""


def read_json(path: PathLike, expected: str) -> Any:
    """Parse the JSON file ``path``; ``expected`` (e.g. "the JSON object save_pretrained
    writes") ends every error message.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        WeightsError: empty, not UTF-8, or not valid JSON (with line and column).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; expected {expected}")
    raw = path.read_bytes()
    if not raw.strip():
        raise WeightsError(f"{path}: empty ({len(raw)} bytes); expected {expected}")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise WeightsError(f"{path}: not UTF-8 text (byte {exc.start}); expected "
                           f"{expected}") from None
    except json.JSONDecodeError as exc:
        end = raw.rstrip()
        cut = (" (the file ends mid-value: it was cut short)"
               if exc.pos >= len(end) or not end.endswith((b"}", b"]")) else "")
        raise WeightsError(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno} column "
                           f"{exc.colno}){cut}; expected {expected}") from None


def _not_safetensors(head: bytes, size: int) -> str:
    """Why a file that fails the header check is not safetensors, judged by its first bytes."""
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return (f"a Python pickle (protocol {head[1]}), not safetensors; unihema never "
                f"unpickles weights: convert it with safetensors.torch.save_file where you "
                f"trust its origin")
    if head[:4] == b"PK\x03\x04":
        return ("a zip archive (the torch.save format, which holds a pickle), not "
                "safetensors; unihema never unpickles weights: convert it with "
                "safetensors.torch.save_file where you trust its origin")
    return f"not a safetensors file ({size} bytes starting {head[:8]!r})"


def read_header(path: PathLike) -> Header:
    """Names and shapes of the tensors in the safetensors file ``path``, after checking that
    the file is complete: an 8-byte header length, a JSON header, then exactly the tensor data
    the header describes.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        WeightsError: empty, truncated, padded, a pickle or zip, or a malformed header.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; expected the model's weights "
                                f"(safetensors)")
    size = path.stat().st_size
    if size == 0:
        raise WeightsError(f"{path}: empty (0 bytes); expected safetensors weights (an "
                           f"interrupted copy or save?)")
    with open(path, "rb") as fh:
        head = fh.read(8)
        if size < 8:
            raise WeightsError(f"{path}: {size} bytes, too short for safetensors (8-byte "
                               f"header length, JSON header, tensor data)")
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER:
            raise WeightsError(f"{path}: {_not_safetensors(head, size)}")
        if n > size - 8:
            raise WeightsError(f"{path}: truncated: the header alone needs {n} bytes, the "
                               f"file holds {size - 8} after the length field; re-copy or "
                               f"re-save it")
        text = fh.read(n)
    try:
        header = json.loads(text.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError(f"a {type(header).__name__}, not an object")
        shapes: Header = {}
        end = 0
        for name, info in header.items():
            if name == "__metadata__":
                continue
            shapes[name] = tuple(int(d) for d in info["shape"])
            end = max(end, int(info["data_offsets"][1]))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise WeightsError(f"{path}: {_not_safetensors(head, size)}: its header is "
                           f"not a safetensors tensor table ({exc})") from None
    data = size - 8 - n
    if data < end:
        raise WeightsError(f"{path}: truncated: the header describes {end} bytes of tensor "
                           f"data, the file holds {data} ({size} bytes in all); re-copy or "
                           f"re-save it")
    if data > end:
        raise WeightsError(f"{path}: {data - end} stray bytes after the {end} bytes of tensor "
                           f"data the header describes; not a file safetensors wrote")
    return shapes


def _tie_groups(state: Dict[str, torch.Tensor]) -> Dict[str, List[str]]:
    """key -> every key sharing its storage (tied weights; the key itself included)."""
    by_ptr: Dict[Tuple[int, int], List[str]] = {}
    for k, v in state.items():
        if v.device.type != "meta" and v.numel():
            by_ptr.setdefault((v.untyped_storage().data_ptr(), v.numel()), []).append(k)
    return {k: group for group in by_ptr.values() for k in group}


def _old_scalar(stored: Tuple[int, ...], shape: torch.Size) -> bool:
    """A one-value parameter stored 0-dim by checkpoints written before it became ``[1]``
    (:func:`unihema.modeling.model.scalars_to_vectors` reshapes it on load)."""
    return tuple(stored) == () and tuple(shape) == (1,)


def mismatches(stored: Header, model: nn.Module) -> List[str]:
    """Tensors that differ between a file's header and ``model.state_dict()``: a shape that
    differs, a tensor the model expects but the file lacks (a tied weight stored under another
    of its names counts as present) and one the file holds but the model has not."""
    state = model.state_dict()
    ties = _tie_groups(state)
    out = []
    for k, v in state.items():
        if k in stored:
            if tuple(stored[k]) != tuple(v.shape) and not _old_scalar(stored[k], v.shape):
                out.append(f"{k} {list(stored[k])} in the file, {list(v.shape)} in the model")
        elif not any(t in stored for t in ties.get(k, [])):
            out.append(f"{k} {list(v.shape)} missing from the file")
    out += [f"{k} {list(shape)} in the file, not in the model"
            for k, shape in stored.items() if k not in state]
    return out


def summarize(items: Sequence[str], limit: int = 10) -> str:
    """``items`` joined by "; ", the first ``limit`` of them, then "and N more"."""
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def load_into(model: nn.Module, path: PathLike, *, device: str = "cpu",
              described_by: str = "") -> None:
    """Check ``path`` (:func:`read_header`), compare it with ``model`` (:func:`mismatches`),
    then load it (tied weights restored). ``described_by`` names what the model was built from
    (e.g. its config.json), for the message.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        WeightsError: the file is damaged or not safetensors, or its tensors do not fit.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    path = Path(path)
    differ = mismatches(read_header(path), model)
    if differ:
        source = f" built from {described_by}" if described_by else ""
        raise WeightsError(f"{path}: does not fit the model{source}: {len(differ)} tensor(s) "
                           f"differ: {summarize(differ)}")
    try:
        load_model(model, str(path), strict=True, device=device)
    except (SafetensorError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise WeightsError(f"{path}: unreadable as safetensors weights ({detail})") from None


def load_tensors(path: PathLike, device: str = "cpu") -> Dict[str, torch.Tensor]:
    """Every tensor of the safetensors file ``path``, checked first by :func:`read_header`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    read_header(path)
    try:
        return load_file(str(path), device=device)
    except SafetensorError as exc:
        raise WeightsError(f"{path}: unreadable as safetensors ({exc})") from None


# --------------------------------------------------------------------------- config.json
#: what ``config.json`` must be, for error messages
MODEL_JSON = ('the JSON object UniHema.save_pretrained writes: {"model": {...model config...}, '
              '"t5_config": {...}, ...}')
#: keys inference reads from a model folder's config.json besides "model": (test, expected)
_META_TYPES = {
    "image_size": (lambda v: type(v) is int and v > 0, "a positive integer (pixels)"),
    "crop_size": (lambda v: type(v) is int and v >= 0, "an integer >= 0 (pixels; 0 = native)"),
    "upscale": (lambda v: isinstance(v, bool), "true or false"),
    "classes": (lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(c, list) and all(isinstance(x, str) for x in c)
        for k, c in v.items()), 'a mapping task -> list of class names, e.g. {"detect": '
                                '["RBC", "WBC"]}'),
    "t5_config": (lambda v: isinstance(v, dict), "a mapping (a T5Config as a dict)"),
}


def read_model_config(path: PathLike):
    """``(ModelConfig, meta)`` of a model folder's ``config.json``: the ``model`` section
    validated against the schema with every key path prefixed ``model.``, and the keys that
    inference reads (``image_size``, ``crop_size``, ``upscale``, ``classes``, ``t5_config``)
    checked for type.

    Raises:
        FileNotFoundError: no such file.
        WeightsError: unreadable JSON or any invalid key, every problem listed with its path.
    """
    from unihema.config.loader import from_dict
    from unihema.config.schema import ModelConfig

    path = Path(path)
    meta = read_json(path, MODEL_JSON)
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict):
        got = (f"a {type(meta).__name__}" if not isinstance(meta, dict)
               else f"keys {sorted(meta)}")
        raise WeightsError(f"{path}: no 'model' section (got {got}); expected {MODEL_JSON}")
    errors: List[str] = []
    config = from_dict(ModelConfig, meta["model"], "model", errors)
    for key, (ok, expected) in _META_TYPES.items():
        if key in meta and meta[key] is not None and not ok(meta[key]):
            errors.append(f"{key}: expected {expected}, got {meta[key]!r}")
    if errors:
        raise WeightsError(f"{path}: {len(errors)} invalid key(s) in this model description:"
                           + "".join(f"\n  {e}" for e in errors))
    return config, meta


# --------------------------------------------------------------------------- constructor kwargs
def _fits(tp: Any, value: Any) -> bool:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Union:
        return any(_fits(a, value) for a in args)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return type(value) is int
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (list, tuple, collections.abc.Sequence) and args:
        return isinstance(value, list) and all(_fits(args[0], v) for v in value)
    return True  # a type JSON cannot carry: the constructor judges it


def _type_name(tp: Any) -> str:
    args = typing.get_args(tp)
    if typing.get_origin(tp) is Union:
        return " or ".join(_type_name(a) for a in args)
    if args and typing.get_origin(tp) in (list, tuple, collections.abc.Sequence):
        return f"a list of {_type_name(args[0])}"
    return {type(None): "null", bool: "true/false", int: "int", float: "number",
            str: "str"}.get(tp, getattr(tp, "__name__", str(tp)))


def kwargs_problems(cls: type, kwargs: Dict[str, Any], prefix: str = "kwargs") -> List[str]:
    """``"kwargs.image_size: expected int, got 'big'"`` for every JSON value of ``kwargs`` that
    does not fit the annotated type of ``cls.__init__``'s argument, and every name it has no
    argument for (unless it takes ``**options``)."""
    params = inspect.signature(cls.__init__).parameters
    hints = typing.get_type_hints(cls.__init__)
    open_ended = any(p.kind is p.VAR_KEYWORD for p in params.values())
    out = []
    for name, value in kwargs.items():
        if name not in params and not open_ended:
            accepted = [n for n, p in params.items() if n != "self"]
            out.append(f"{prefix}.{name}: not an argument of {cls.__name__} (accepted: "
                       f"{', '.join(accepted)})")
        elif name in hints and not _fits(hints[name], value):
            out.append(f"{prefix}.{name}: expected {_type_name(hints[name])}, got {value!r}")
    return out
