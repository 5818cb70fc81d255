"""Dataset adapters: one module per corpus, each registering its adapter in ``DATASETS``.

Importing this package imports every adapter module (cheap: adapters parse nothing until
``load`` is called); conventions are in ``facebehavior.data.datasets.base``.
"""

from __future__ import annotations

import importlib
import pkgutil

from facebehavior.data.datasets.base import (
    DatasetAdapter,
    DatasetNotFoundError,
    LabelFormatError,
    create_dataset,
    list_datasets,
    register_dataset,
    require_files,
)

__all__ = [
    "DatasetAdapter",
    "DatasetNotFoundError",
    "LabelFormatError",
    "create_dataset",
    "list_datasets",
    "register_dataset",
    "require_files",
]

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base" and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
