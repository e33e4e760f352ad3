"""Matching: installed packages against advisories. What is then done to the findings (ignore rules,
VEX, severity filters) is in :mod:`garrison.findings`, shared with every other kind of finding.

Re-exports are lazy (PEP 562) so that importing one submodule does not import the others.
"""

from __future__ import annotations

from garrison._lazy import lazy_exports

_EXPORTS = {
    "MatchResult": "garrison.matching.matcher",
    "match_inventory": "garrison.matching.matcher",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
