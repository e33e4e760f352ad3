"""What a runtime evaluation produced, as a :class:`~garrison.report.model.FindingsReport`: the alerts
(each a finding of kind ``alert``), what was read and what the rules were."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from garrison.model.common import Finding, Severity, Suppressed
from garrison.model.runtime import Alert, alert_finding
from garrison.runtime.engine import SkippedRule


@dataclass(frozen=True, slots=True)
class InputStats:
    """What the source read (lines only for files and stdin; bodies only for the receiver)."""

    events: int = 0
    lines: int = 0
    malformed: int = 0
    oversized: int = 0
    #: Receiver: events refused because the queue was full (said, never silent), bodies refused.
    dropped: int = 0
    rejected_bodies: int = 0


@dataclass(frozen=True, slots=True)
class RuntimeReport:
    """A runtime evaluation: alerts (highest severity first, then first seen) and what was evaluated."""

    target: str
    alerts: tuple[Alert, ...]
    #: Matches folded into the alerts (the sum of their counts).
    matches: int
    stats: InputStats
    #: Rules loaded and enabled, and the files they came from.
    rules: int
    rule_files: tuple[str, ...]
    skipped: tuple[SkippedRule, ...] = ()
    warnings: tuple[str, ...] = ()
    generated_at: str = ""
    tool_version: str = ""
    suppressed: tuple[Suppressed[Any], ...] = ()
    target_digest: str = ""
    _findings: tuple[Finding[Alert], ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_findings", tuple(alert_finding(a) for a in self.alerts))

    @property
    def findings(self) -> tuple[Finding[Any], ...]:
        return self._findings

    def all_warnings(self) -> tuple[str, ...]:
        return self.warnings

    def counts(self) -> dict[Severity, int]:
        from garrison.model.common import severity_counts

        return severity_counts(self._findings)

    def extra(self) -> dict[str, Any]:
        s = self.stats
        return {
            "runtime": {
                "events": s.events,
                "lines": s.lines,
                "malformed": s.malformed,
                "oversized": s.oversized,
                "dropped": s.dropped,
                "matches": self.matches,
                "alerts": len(self.alerts),
                "rules": self.rules,
                "rule_files": list(self.rule_files),
                "skipped_rules": [{"rule": r.name, "file": r.file, "reason": r.reason} for r in self.skipped],
            }
        }
