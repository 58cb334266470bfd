"""Dataset adapters: the registry, the base class and the loading entry point.

An adapter turns one public dataset, exactly as it is downloaded, into
:class:`~unihema.data.sample.UnifiedSample` records. Adapters live outside the core (in the
``dataset_adapters`` package or a user's own package) and register here::

    @register_adapter("my_set")
    class MySet(DatasetAdapter):
        tasks = ("detect",)
        splits = ("train", "test")
        classes = {"detect": ("red blood cell", "white blood cell")}
        license = "CC BY 4.0"
        citation = "..."
        url = "https://..."

        def _load(self, split):
            for ...:
                yield UnifiedSample(...)

Bad input never passes silently. An adapter reports each problem with :meth:`report`; with
``on_error="raise"`` (the default) the first problem raises :class:`DataError` naming the file
and the reason, with ``on_error="skip"`` the sample is left out and the problem is kept in
:attr:`problems` for ``unihema data check`` to print.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Dict, Iterable, List, Optional, Tuple, Union

from unihema.data.sample import TASKS, UnifiedSample
from unihema.registry import Registry


class DataError(ValueError):
    """Bad input data; the message names the file (and line or field) and what was expected."""


@dataclass(frozen=True)
class Problem:
    """One problem found while reading a dataset."""

    file: str
    reason: str
    line: Optional[int] = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.reason}"


class DatasetAdapter:
    """Base class of every adapter.

    Class attributes declare what the dataset is; subclasses implement :meth:`_load`.

    Args:
        root: the dataset folder as downloaded (the adapter's docstring gives the layout).
        on_error: ``"raise"`` (default) or ``"skip"`` (leave bad samples out, keep problems).
    """

    name: ClassVar[str] = ""
    tasks: ClassVar[Tuple[str, ...]] = ()
    splits: ClassVar[Tuple[str, ...]] = ("train", "val", "test")
    #: canonical class names per task ("detect", "segment", "classify"); the prompt's class list.
    classes: ClassVar[Dict[str, Tuple[str, ...]]] = {}
    license: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    url: ClassVar[str] = ""
    #: direct download files, each ``{"url": ..., "sha256": ... or None, "filename": ...}``
    #: (``unihema data download``, :mod:`unihema.data.download`)
    downloads: ClassVar[Tuple[Dict[str, Optional[str]], ...]] = ()
    #: where and how to get a dataset that has no direct URL (login, form, request)
    access: ClassVar[str] = ""
    #: size of the full dataset in words ("364 images", "17,092 crops"), for ``data list``
    size: ClassVar[str] = ""
    #: side in pixels of the square box drawn around each labelled point (point-labelled sets)
    point_box_size: ClassVar[Optional[int]] = None

    def __init__(self, root: Union[str, Path], *, on_error: str = "raise") -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got '{on_error}'")
        self.root = Path(root).expanduser()
        self.on_error = on_error
        self.problems: List[Problem] = []
        #: remarks that are not errors (a documented repair of the source's data); listed by
        #: ``unihema data check`` beside the problems, never raised
        self.notes: List[Problem] = []
        if not self.root.is_dir():
            raise DataError(
                f"{self.name}: dataset root '{self.root}' is not a folder. Expected layout:\n"
                f"{self.layout()}"
            )

    @classmethod
    def layout(cls) -> str:
        """The expected on-disk layout (the class docstring)."""
        return (cls.__doc__ or "(no layout documented)").strip()

    def report(self, file: Union[str, Path], reason: str, line: Optional[int] = None) -> None:
        """Record a problem; raises :class:`DataError` unless ``on_error="skip"``."""
        problem = Problem(str(file), reason, line)
        if self.on_error == "raise":
            raise DataError(f"{self.name}: {problem}")
        self.problems.append(problem)

    def note(self, file: Union[str, Path], reason: str, line: Optional[int] = None) -> None:
        """Record a remark that is not an error (a documented repair, a suspicious value kept
        as the source has it); ``unihema data check`` lists the notes, loading never fails."""
        self.notes.append(Problem(str(file), reason, line))

    def report_error(self, file: Union[str, Path], exc: Exception) -> None:
        """Report a format reader's :class:`DataError` (``<file>[:<line>]: <reason>``) as a
        problem of ``file``, keeping its line number and without repeating the file name."""
        text, prefix, line = str(exc), str(file), None
        if text.startswith(prefix):
            rest = text[len(prefix):]
            if rest.startswith(":"):
                head, sep, tail = rest[1:].partition(": ")
                if sep and head.isdigit():
                    line, rest = int(head), ": " + tail
            text = rest[2:] if rest.startswith(": ") else rest.lstrip(":").strip()
        self.report(file, text, line)

    def images_in_no_split(self) -> List[Problem]:
        """Image files of the dataset that no split takes, one note each (``unihema data check``
        lists them when it reads every split). Adapters whose splits come from list files
        (:mod:`unihema.data.splitlists`) override it; the default finds none."""
        return []

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        """Write a tiny dataset in this source's native layout into ``root``.

        A few small generated images with the source's real file names, folder structure and
        annotation format (helpers in ``dataset_adapters/_examples.py``); ``unihema data example
        KEY --out DIR`` calls it so users see the expected layout, and the adapter contract
        test loads it. Returns the number of samples each split should load.
        """
        raise NotImplementedError(
            f"{cls.__name__} ({cls.name}) does not implement write_example(root); every adapter "
            f"writes a tiny example of its native layout"
        )

    def load(self, split: str) -> List[UnifiedSample]:
        """All samples of ``split``, each validated against the record contract."""
        if split not in self.splits:
            raise KeyError(f"{self.name} has no split '{split}'; splits: {', '.join(self.splits)}")
        out: List[UnifiedSample] = []
        # the dataset's full class list is the prompt's class list (negatives included), not
        # just the classes one image happens to contain
        class_lists = {f"classes_{task}": list(names) for task, names in self.classes.items()}
        for sample in self._load(split):
            problems = sample.validate()
            if problems:
                self.report(sample.image_path, "; ".join(problems))
                continue
            for key, names in class_lists.items():
                sample.meta.setdefault(key, names)
            out.append(sample)
        return out

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        raise NotImplementedError(f"{type(self).__name__} must implement _load(split)")

    @classmethod
    def info(cls) -> Dict[str, object]:
        """A JSON-ready description (used by ``unihema data info``)."""
        return {
            "name": cls.name,
            "tasks": list(cls.tasks),
            "splits": list(cls.splits),
            "classes": {k: list(v) for k, v in cls.classes.items()},
            "license": cls.license,
            "citation": cls.citation,
            "url": cls.url,
            "size": cls.size,
            "downloads": [dict(d) for d in cls.downloads],
            "access": cls.access,
            "layout": cls.layout(),
        }

    @classmethod
    def check_declaration(cls) -> List[str]:
        """Problems with the class attributes themselves (the adapter contract test uses it)."""
        from unihema.data import vocab

        problems = []
        if not cls.name:
            problems.append("no name")
        for t in cls.tasks:
            if t not in TASKS:
                problems.append(f"unknown task '{t}'; valid: {TASKS}")
        for task, names in cls.classes.items():
            for n in names:
                if not vocab.is_canonical(n):
                    problems.append(f"classes[{task}] has non-canonical '{n}'")
        if not cls.license:
            problems.append("no license")
        if not cls.citation:
            problems.append("no citation")
        return problems


ADAPTERS: Registry[type] = Registry(
    "dataset adapter",
    signature="cls(root: str | Path, *, on_error: 'raise' | 'skip' = 'raise'); "
    ".load(split: str) -> list[UnifiedSample]",
)


def register_adapter(name: str):
    """``@register_adapter("key")``: register a :class:`DatasetAdapter` subclass as ``key``."""

    def deco(cls):
        cls.name = name
        return ADAPTERS.register(name, cls)

    return deco


def get_adapter(name: str, root: Union[str, Path], *, on_error: str = "raise",
                **options) -> DatasetAdapter:
    """Build the adapter registered as ``name`` over ``root`` (``options``: adapter-specific
    keyword arguments, e.g. ``spec=`` of the generic adapter)."""
    return ADAPTERS.get(name)(root, on_error=on_error, **options)


def load_dataset(
    name: str, root: Union[str, Path], split: str, *, on_error: str = "raise"
) -> List[UnifiedSample]:
    """Load one split of a registered dataset: ``load_dataset("bccd", root, "test")``."""
    return get_adapter(name, root, on_error=on_error).load(split)
