"""One de-duplication step for findings of every kind.

Two findings with one fingerprint are one finding (the same secret matched by two overlapping rules on
one line has two rule ids and stays two; the same rule on the same line reached twice through a
hard-linked path is one). The most severe copy wins; ties keep the first seen, so the result does not
depend on hash order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from garrison.model.common import Finding


def dedupe(findings: Iterable[Finding[Any]]) -> tuple[Finding[Any], ...]:
    """``findings`` with one entry per fingerprint, in first-seen order."""
    best: dict[str, Finding[Any]] = {}
    for f in findings:
        fp = f.fingerprint
        seen = best.get(fp)
        if seen is None or f.severity > seen.severity:
            best[fp] = f
    return tuple(best.values())
