"""Adapters of public (and generated) hematology datasets; importing this package registers them.

Each module (one per dataset, named by its registry key) registers one
:class:`~unihema.data.catalog.DatasetAdapter` with ``@register_adapter("key")``. Every module of
this package whose name does not start with ``_`` is imported here, so adding a dataset means
adding a file. The core never imports these modules by name: it loads this package as a
``unihema.plugins`` entry point (see :mod:`unihema.registry`).
"""

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
