"""Lazy re-exports for package ``__init__`` modules (PEP 562).

Start-up time counts for every scan, so a package's convenience names must not import the modules
behind them until somebody uses one: ``garrison.vulndb`` re-exports the store, the updater (httpx) and
the version schemes, and importing one scheme must not pull in the rest.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` (a module path) on first use of ``name``."""

    def __getattr__(name: str) -> Any:
        try:
            module = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        return getattr(importlib.import_module(module), name)

    return __getattr__
