"""What a renderer gets: one value holding everything a scan produced."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from garrison.matching.filters import Suppressed
from garrison.model import Finding, Inventory, Severity


@dataclass(frozen=True, slots=True)
class DBSource:
    """Provenance of one advisory source in the database (one OSV ecosystem file, the KEV catalog)."""

    name: str
    #: When the source was last fetched or modified (ISO 8601), "" when unknown.
    updated: str = ""
    records: int = 0
    url: str = ""


@dataclass(frozen=True, slots=True)
class DBProvenance:
    """Which advisory data the findings come from, so a report can be reproduced or judged stale."""

    schema_version: int = 0
    built_at: str = ""
    sources: tuple[DBSource, ...] = ()


@dataclass(frozen=True, slots=True)
class ScanReport:
    """Inventory + findings + suppressed findings + warnings + DB provenance: the input of every renderer."""

    inventory: Inventory
    findings: tuple[Finding, ...] = ()
    suppressed: tuple[Suppressed, ...] = ()
    #: Matching warnings (no data for the OS, versions not comparable…); inventory warnings stay in
    #: ``inventory.warnings``.
    warnings: tuple[str, ...] = ()
    db: DBProvenance | None = None
    #: ISO 8601 UTC time of the scan ("" = the renderer uses the current time).
    generated_at: str = ""
    tool_version: str = ""

    def counts(self) -> dict[Severity, int]:
        """Findings per severity, every severity present (highest first), for summaries."""
        c = Counter(f.severity for f in self.findings)
        return {s: c.get(s, 0) for s in sorted(Severity, reverse=True)}
