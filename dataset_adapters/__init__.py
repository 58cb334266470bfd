"""Adapters of public (and generated) hematology datasets; importing this package registers them.

Each module registers one :class:`~unihema.data.catalog.DatasetAdapter` with
``@register_adapter("key")``. The core never imports these modules by name: it loads this package
as a ``unihema.plugins`` entry point (see :mod:`unihema.registry`).
"""

from dataset_adapters import synthetic_smear  # noqa: F401
