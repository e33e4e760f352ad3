"""The CI gate: does a run fail? One decision for every kind of finding."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from garrison.model.common import Finding, Severity


def should_fail(findings: Iterable[Finding[Any]], threshold: Severity = Severity.UNKNOWN) -> bool:
    """True when any open (not suppressed) finding is at or above ``threshold``. With the default
    threshold any open finding fails the gate, which is what ``--exit-code N`` means after the
    ``--severity`` filter has already narrowed the findings."""
    return any(f.severity >= threshold for f in findings)
