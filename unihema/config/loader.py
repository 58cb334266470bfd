"""Load, merge, override, validate and dump configs.

A config file is YAML. ``_base_`` (a path or a list of paths, relative to the file) names files
merged first, in order; the file itself is merged on top. Merging is recursive for mappings;
any other value (lists included) replaces what was there. A mapping holding ``_delete_: true``
replaces its base instead of merging into it.

Command-line overrides are dotted paths with YAML values: ``train.lr=3e-4``,
``data.train.0.weight=2``, ``data.augment.scale=[0.5,2.0]``.

Validation walks the typed schema (:mod:`unihema.config.schema`): unknown keys, wrong types,
out-of-range values (a field's ``range``) and broken relations between fields of a section (a
field's ``at_most``, e.g. ``train.warmup_steps <= train.max_steps``) all raise one
:class:`ConfigError` listing every problem by key path, with the valid keys of the section
concerned. A key written twice in one YAML mapping is an error naming the file and both lines
(PyYAML would silently keep the last one, dropping a whole section for a repeated ``train:``).
A field typed ``Annotated[str, NameSet]`` (task names: :data:`unihema.config.schema.TaskName`)
takes one of the set's names at the time of loading; before rejecting a name the loader imports
the plugins once (:func:`unihema.registry.load_plugins`), since a plugin may register it.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import typing
from pathlib import Path
from typing import Annotated, Any, Dict, List, Optional, Sequence, Tuple, Union

import yaml

from unihema.config.schema import Config, NameSet
from unihema.registry import load_plugins
from unihema.utils import atomic_write_text

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"


class ConfigError(ValueError):
    """A config file or override is invalid; the message lists every problem found."""


# ------------------------------------------------------------------------------------- files
class DuplicateKeyError(yaml.YAMLError):
    """A key appears twice in one YAML mapping; ``line`` and ``first`` are 1-based lines."""

    def __init__(self, key: Any, line: int, first: int) -> None:
        self.key, self.line, self.first = key, line, first
        super().__init__(f"line {line}: duplicate key '{key}' (first written at line {first}; "
                         f"YAML would keep only the last value)")


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises :class:`DuplicateKeyError` for a key repeated in one
    mapping, instead of keeping the last value. Merge keys (``<<``) may still override."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Dict[Any, Any]:
        seen: Dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise DuplicateKeyError(key, key_node.start_mark.line + 1, seen[key])
            except TypeError:  # an unhashable key: SafeLoader's own error follows
                continue
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str) -> Any:
    """Parse YAML like ``yaml.safe_load``, but a repeated key in a mapping is an error.

    Raises:
        DuplicateKeyError: (a ``yaml.YAMLError``) naming the key and both lines.
        yaml.YAMLError: malformed YAML.
    """
    return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader: no arbitrary objects


def read_yaml(path: Union[str, Path]) -> Dict[str, Any]:
    """Read one YAML mapping (no ``_base_`` resolution).

    Raises:
        ConfigError: missing file, malformed YAML, a key repeated in a mapping (``<file>:<line>:
            duplicate key``), a top level that is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist")
    try:
        data = load_yaml_text(path.read_text(encoding="utf-8"))
    except DuplicateKeyError as exc:
        raise ConfigError(f"{path}:{exc.line}: duplicate key '{exc.key}' (first written at "
                          f"line {exc.first}); write each key once") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def merge(base: Dict[str, Any], top: Dict[str, Any]) -> Dict[str, Any]:
    """Recursive merge of ``top`` onto ``base`` (neither is modified)."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and value.get(DELETE_KEY):
            out[key] = {k: v for k, v in value.items() if k != DELETE_KEY}
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_file(path: Union[str, Path], _stack: Tuple[Path, ...] = ()) -> Dict[str, Any]:
    """Read ``path`` with its ``_base_`` chain merged in; cycles are errors."""
    path = Path(path).resolve()
    if path in _stack:
        chain = " -> ".join(str(p) for p in _stack + (path,))
        raise ConfigError(f"_base_ cycle: {chain}")
    data = read_yaml(path)
    bases = data.pop(BASE_KEY, [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: {BASE_KEY} must be a path or a list of paths, got {bases!r}")
    merged: Dict[str, Any] = {}
    for base in bases:
        base_path = (path.parent / base) if not os.path.isabs(base) else Path(base)
        if not base_path.is_file():
            raise ConfigError(f"{path}: {BASE_KEY} '{base}' not found (looked at {base_path})")
        merged = merge(merged, resolve_file(base_path, _stack + (path,)))
    return merge(merged, data)


# ------------------------------------------------------------------------------------- overrides
def apply_override(data: Dict[str, Any], override: str) -> Dict[str, Any]:
    """Apply one ``dotted.key=value`` override to a raw config mapping (in place; returned)."""
    if "=" not in override:
        raise ConfigError(f"override '{override}' must look like key.path=value")
    key, raw = override.split("=", 1)
    try:
        value = load_yaml_text(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{override}': value is not valid YAML: {exc}") from exc
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override '{override}': empty component in key '{key}'")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            node = node[_index(part, node, where)]
        else:
            if part not in node or node[part] is None:
                node[part] = {}
            node = node[part]
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"override '{override}': '{where}' is a value, not a section")
    last = parts[-1]
    if isinstance(node, list):
        node[_index(last, node, key)] = value
    else:
        node[last] = value
    return data


def _index(part: str, seq: list, where: str) -> int:
    try:
        i = int(part)
    except ValueError:
        raise ConfigError(f"'{where}' indexes a list; use a number, got '{part}'") from None
    if not -len(seq) <= i < len(seq):
        raise ConfigError(f"'{where}': index {i} out of range for a list of {len(seq)}")
    return i


# ------------------------------------------------------------------------------------- validation
def from_dict(cls: type, data: Any, path: str = "", errors: Optional[List[str]] = None) -> Any:
    """Build the dataclass ``cls`` from a mapping, collecting every problem into ``errors``."""
    top = errors is None
    errors = [] if errors is None else errors
    value = _convert(cls, data, path, errors, None)
    if top and errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(errors))
    return value


def _convert(tp: Any, value: Any, path: str, errors: List[str], bounds) -> Any:
    where = path or "<root>"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a mapping (section {tp.__name__}), got {value!r}")
            return tp()
        hints = typing.get_type_hints(tp, include_extras=True)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        for key in value:
            if key not in fields:
                close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.5)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                errors.append(
                    f"{_join(path, key)}: unknown key{hint}; valid keys of "
                    f"{path or 'the top level'}: {', '.join(fields)}"
                )
        kwargs = {}
        for name, f in fields.items():
            if name in value:
                kwargs[name] = _convert(
                    hints[name], value[name], _join(path, name), errors, f.metadata.get("range")
                )
        try:
            obj = tp(**kwargs)
        except (TypeError, ValueError) as exc:
            errors.append(f"{where}: {exc}")
            return tp()
        _check_relations(obj, fields, path, errors)
        return obj
    if origin is Annotated:
        value = _convert(args[0], value, path, errors, bounds)
        for names in (a for a in args[1:] if isinstance(a, NameSet)):
            _check_name(names, value, where, errors)
        return value
    if origin is Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, path, errors, bounds)
    if origin is typing.Literal:
        if value not in args:
            errors.append(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (list, List):
        if not isinstance(value, list):
            errors.append(f"{where}: expected a list, got {value!r}")
            return []
        return [_convert(args[0], v, f"{path}.{i}", errors, bounds) for i, v in enumerate(value)]
    if origin in (tuple, Tuple):
        if not isinstance(value, (list, tuple)):
            errors.append(f"{where}: expected a list of {len(args)} values, got {value!r}")
            return value
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{path}.{i}", errors, bounds)
                         for i, v in enumerate(value))
        if len(value) != len(args):
            errors.append(f"{where}: expected {len(args)} values, got {len(value)}: {value!r}")
            return tuple(value)
        out = tuple(_convert(a, v, f"{path}.{i}", errors, bounds)
                    for i, (a, v) in enumerate(zip(args, value)))
        if len(out) == 2 and all(isinstance(v, (int, float)) for v in out) and out[0] > out[1]:
            errors.append(f"{where}: expected (min, max) with min <= max, got {list(out)}")
        return out
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a mapping, got {value!r}")
            return {}
        return {
            _convert(args[0], k, f"{path}.{k}", errors, None):
            _convert(args[1], v, f"{path}.{k}", errors, bounds)
            for k, v in value.items()
        }
    if tp is Any:
        return value
    return _scalar(tp, value, where, errors, bounds)


def _check_name(names: NameSet, value: Any, where: str, errors: List[str]) -> None:
    """``value`` must be one of ``names`` (a plugin imported on a miss may add it)."""
    if not isinstance(value, str) or value in names:
        return  # a non-string was already reported by the str check
    load_plugins()
    if value not in names:
        close = difflib.get_close_matches(value, names.names(), n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        errors.append(f"{where}: expected one of {names.names()}, got {value!r}{hint}; a "
                      f"{names.kind} of a plugin is valid once the plugin registers it")


def _check_relations(obj: Any, fields: Dict[str, dataclasses.Field], path: str,
                     errors: List[str]) -> None:
    """Field metadata ``at_most``: the value must not exceed a sibling's (defaults included)."""
    for name, f in fields.items():
        other = f.metadata.get("at_most")
        if other is None:
            continue
        value, limit = getattr(obj, name), getattr(obj, other)
        if isinstance(value, (int, float)) and isinstance(limit, (int, float)) and value > limit:
            errors.append(f"{_join(path, name)}: {value} is more than {_join(path, other)} "
                          f"({limit}); expected at most {_join(path, other)}: lower "
                          f"{_join(path, name)} or raise {_join(path, other)}")


def _range_text(lo: float, hi: Optional[float]) -> str:
    return f"[{lo}, {hi}]" if hi is not None else f"[{lo}, inf)"


def _scalar(tp: type, value: Any, where: str, errors: List[str], bounds) -> Any:
    ok = False
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    if not ok:
        errors.append(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
        return value
    if bounds is not None and tp in (int, float):
        lo, hi = bounds
        if not (lo <= value and (hi is None or value <= hi)):
            errors.append(f"{where}: {value} is outside the allowed range {_range_text(lo, hi)}")
    return value


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


# ------------------------------------------------------------------------------------- public API
def load_config(
    path: Optional[Union[str, Path]] = None,
    overrides: Sequence[str] = (),
    schema: type = Config,
) -> Any:
    """Load a config: defaults <- ``path`` (with its ``_base_`` chain) <- ``overrides``.

    Returns an instance of ``schema`` (:class:`~unihema.config.schema.Config` by default).
    """
    data = resolve_file(path) if path is not None else {}
    for ov in overrides:
        apply_override(data, ov)
    try:
        return from_dict(schema, data)
    except ConfigError as exc:
        source = f"'{path}'" if path is not None else "the defaults"
        extra = f" with overrides {list(overrides)}" if overrides else ""
        raise ConfigError(f"{source}{extra}: {exc}") from None


def to_dict(cfg: Any) -> Dict[str, Any]:
    """A plain, YAML-ready dict of a config dataclass (tuples become lists)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def to_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None, width=100)


def dump_config(cfg: Any, run_dir: Union[str, Path], name: str = "config.yaml") -> Path:
    """Write the resolved config into the run folder (atomically); returns the file path."""
    return atomic_write_text(Path(run_dir) / name, to_yaml(cfg))


def schema_table(cls: type = Config, prefix: str = "") -> List[Tuple[str, str, str, str]]:
    """Rows ``(key, type, default, help)`` for every key of the schema, sections expanded."""
    rows = []
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        key = _join(prefix, f.name)
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows.append((key, "section", "", f.metadata.get("help", "")))
            rows.extend(schema_table(tp, key))
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = ""
        type_name = _type_name(tp)
        bounds, most = f.metadata.get("range"), f.metadata.get("at_most")
        limits = [f"range {_range_text(*bounds)}"] if bounds else []
        limits += [f"at most {_join(prefix, most)}"] if most else []
        meaning = f.metadata.get("help", "") + (f" ({'; '.join(limits)})" if limits else "")
        rows.append((key, type_name, yaml.safe_dump(to_dict(default), default_flow_style=True)
                     .strip().removesuffix("...").strip(), meaning))
        item = typing.get_args(tp)[0] if typing.get_origin(tp) in (list, List) else None
        if item is not None and dataclasses.is_dataclass(item):
            rows.extend(schema_table(item, key + ".N"))
    return rows


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is None:
        return getattr(tp, "__name__", str(tp))
    if origin is Annotated:
        names = [a for a in typing.get_args(tp)[1:] if isinstance(a, NameSet)]
        if names:
            return " | ".join(repr(n) for n in names[0])
        return _type_name(typing.get_args(tp)[0])
    args = ", ".join(_type_name(a) if a is not Ellipsis else "..." for a in typing.get_args(tp))
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    name = {list: "list", tuple: "tuple", dict: "dict", Union: "optional"}.get(origin, str(origin))
    return f"{name}[{args}]"
