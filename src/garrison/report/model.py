"""What a renderer gets: one value holding everything a scan produced."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from garrison.model import Finding, Inventory, Severity

if TYPE_CHECKING:  # the matching stage is imported only when a scan runs, not for `garrison sbom`
    from garrison.matching.filters import FilterOptions, Suppressed


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


def provenance_from_status(status: Any) -> DBProvenance:
    """A report's provenance from :meth:`garrison.vulndb.store.AdvisoryDB.status` (duck-typed so that the
    report stage does not import the database stage)."""
    return DBProvenance(
        schema_version=int(status.schema_version),
        built_at=str(status.built_at),
        sources=tuple(
            DBSource(
                name=str(s.name),
                updated=str(s.last_modified or s.fetched_at),
                records=int(s.records),
                url=str(s.url),
            )
            for s in status.sources
        ),
    )


def scan_report(
    inv: Inventory,
    db: Any,
    options: FilterOptions | None = None,
    *,
    generated_at: str = "",
    tool_version: str = "",
) -> ScanReport:
    """Match ``inv`` against ``db`` (an :class:`~garrison.vulndb.store.AdvisoryDB`), apply the filters and
    return the report every renderer takes: the one call a ``scan`` command needs after the inventory."""
    from garrison.matching.filters import FilterOptions, apply_filters
    from garrison.matching.matcher import match_inventory

    matched = match_inventory(inv, db)
    filtered = apply_filters(matched.findings, options or FilterOptions())
    status = getattr(db, "status", None)
    return ScanReport(
        inventory=inv,
        findings=filtered.kept,
        suppressed=filtered.suppressed,
        warnings=matched.warnings,
        db=provenance_from_status(status()) if callable(status) else None,
        generated_at=generated_at,
        tool_version=tool_version,
    )
