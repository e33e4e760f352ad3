"""Matching: installed packages against advisories, then ignore rules, VEX and severity filters.

Re-exports are lazy (PEP 562) so that importing one submodule does not import the others.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    **dict.fromkeys(
        (
            "FilterOptions",
            "FilterResult",
            "IgnoreRule",
            "Suppressed",
            "VexStatement",
            "apply_filters",
            "build_options",
            "load_ignore_file",
            "load_openvex",
            "parse_severities",
            "should_fail",
        ),
        "garrison.matching.filters",
    ),
    "MatchResult": "garrison.matching.matcher",
    "match_inventory": "garrison.matching.matcher",
}


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'garrison.matching' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_EXPORTS)
