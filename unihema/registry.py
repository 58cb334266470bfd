"""Named registries: the extension points of unihema.

A :class:`Registry` maps a name to an object (a class or a factory function). Extension code
registers with a decorator and the rest of the library looks objects up by the name given in a
config file or on the command line::

    from unihema.data.catalog import ADAPTERS

    @ADAPTERS.register("my_dataset")
    class MyDataset(DatasetAdapter):
        ...

Lookups of unknown names fail with the list of registered names. Before the first lookup, every
module declared under the ``unihema.plugins`` entry-point group is imported once, so that
packages installed beside unihema (``dataset_adapters`` among them) register themselves without
the core ever naming them.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
from importlib import metadata
from typing import Any, Dict, Generic, Iterator, List, Optional, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

PLUGIN_GROUP = "unihema.plugins"
#: Extra plugin modules to import, comma-separated (for code that is not an installed package).
PLUGIN_ENV = "UNIHEMA_PLUGINS"

_plugins_loaded = False


def load_plugins(force: bool = False) -> List[str]:
    """Import every plugin module once; returns the module names imported.

    Plugins come from the ``unihema.plugins`` entry-point group and from the comma-separated
    ``UNIHEMA_PLUGINS`` environment variable. A plugin that fails to import raises: a registry
    that silently lacks half its entries is worse than a loud error.
    """
    global _plugins_loaded
    if _plugins_loaded and not force:
        return []
    _plugins_loaded = True
    names: List[str] = []
    for ep in metadata.entry_points(group=PLUGIN_GROUP):
        names.append(ep.value)
    names.extend(n.strip() for n in os.environ.get(PLUGIN_ENV, "").split(",") if n.strip())
    if not names:
        # Running from a source tree that was never pip-installed: the bundled adapters are
        # still the expected default.
        names.append("dataset_adapters")
    imported = []
    for name in dict.fromkeys(names):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name and name == "dataset_adapters":
                logger.debug("bundled dataset_adapters not importable: %s", exc)
                continue
            raise
        if getattr(module, "__file__", None) is None:
            # a bare folder of the same name earlier on sys.path (tests/dataset_adapters, say)
            # shadows the real package and would register nothing
            raise ImportError(f"plugin '{name}' resolved to a namespace folder "
                              f"{list(getattr(module, '__path__', []))}, not the package; a "
                              f"folder of that name on sys.path shadows it")
        imported.append(name)
    return imported


class Registry(Generic[T]):
    """A name -> object table with a documented call signature.

    Args:
        kind: what is registered ("dataset adapter", "task head", ...), used in messages.
        signature: the contract every registered object follows, shown by ``describe()``.
    """

    def __init__(self, kind: str, signature: str = "") -> None:
        self.kind = kind
        self.signature = signature
        self._table: Dict[str, T] = {}

    def register(self, name: Optional[str] = None, obj: Optional[T] = None) -> Any:
        """Register ``obj`` under ``name``; used bare, as ``@register("name")`` or ``@register()``.

        ``name`` defaults to the object's ``name`` attribute, else its ``__name__``. Registering
        a name twice is an error (two adapters silently shadowing each other is a real bug).
        """

        def _do(o: T) -> T:
            key = name or getattr(o, "name", None) or getattr(o, "__name__")
            if not isinstance(key, str) or not key:
                raise ValueError(f"cannot register {o!r} as a {self.kind}: no name given")
            if key in self._table and self._table[key] is not o:
                raise KeyError(
                    f"{self.kind} '{key}' is already registered by {self._table[key]!r}; "
                    f"pick another name"
                )
            self._table[key] = o
            return o

        if obj is not None:
            return _do(obj)
        return _do

    def get(self, name: str) -> T:
        """Return the object registered as ``name``; unknown names list the registered ones."""
        load_plugins()
        if name not in self._table:
            known = sorted(self._table)
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise KeyError(
                f"unknown {self.kind} '{name}'.{hint} Registered: {', '.join(known) or '(none)'}"
            )
        return self._table[name]

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._table

    def __iter__(self) -> Iterator[str]:
        load_plugins()
        return iter(sorted(self._table))

    def __len__(self) -> int:
        load_plugins()
        return len(self._table)

    def names(self) -> List[str]:
        """Registered names, sorted."""
        return list(self)

    def items(self):
        load_plugins()
        return sorted(self._table.items())

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests that register temporary entries)."""
        self._table.pop(name, None)

    def describe(self) -> str:
        """A one-paragraph description: the kind, the call signature and the registered names."""
        return f"{self.kind} registry\nsignature: {self.signature}\nregistered: {', '.join(self)}"

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._table)} entries)"

