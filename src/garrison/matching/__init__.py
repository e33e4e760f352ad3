"""Matching: installed packages against advisories, then ignore rules, VEX and severity filters.

Re-exports are lazy (PEP 562) so that importing one submodule does not import the others.
"""

from __future__ import annotations

from garrison._lazy import lazy_exports

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


__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
