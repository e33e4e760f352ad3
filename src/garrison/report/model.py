"""What a renderer gets: one value holding everything a scan produced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from garrison.model import Inventory
from garrison.model.common import Finding, FindingKind, Severity, Suppressed, severity_counts
from garrison.model.secret import Secret
from garrison.model.vuln import Vulnerability


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


class FindingsReport(Protocol):
    """What the table, JSON and SARIF renderers need of any report, whatever pillar made it: an image
    scan (:class:`ScanReport`), a posture assessment, a runtime evaluation."""

    @property
    def target(self) -> str:
        """What was assessed, as the user named it (an image reference, a manifest folder, a cluster)."""
        ...

    @property
    def target_digest(self) -> str:
        """The target's content digest when it has one ("" otherwise)."""
        ...

    @property
    def findings(self) -> tuple[Finding[Any], ...]: ...

    @property
    def suppressed(self) -> tuple[Suppressed[Any], ...]: ...

    @property
    def generated_at(self) -> str: ...

    @property
    def tool_version(self) -> str: ...

    def all_warnings(self) -> tuple[str, ...]:
        """Every warning of the run, one line each, in the order they arose."""
        ...

    def counts(self) -> dict[Severity, int]:
        """Open findings per severity, every severity present, highest first."""
        ...

    def extra(self) -> dict[str, Any]:
        """Top-level keys of the pillar's own for the JSON document (a score, resources assessed…)."""
        ...


@dataclass(frozen=True, slots=True)
class ScanReport:
    """Everything one scan produced, the input of every renderer: the inventory it walked, the open
    findings of every kind (vulnerabilities, secrets…), the suppressed ones with their decisions, the
    warnings and the advisory data's provenance."""

    #: The walked artifact, its OS and packages (empty packages when only secrets were scanned).
    inventory: Inventory
    #: Open findings, every kind, sorted for display (vulnerabilities by package, then secrets by path).
    findings: tuple[Finding[Any], ...] = ()
    #: Findings set aside by the suppression step, each with its decision.
    suppressed: tuple[Suppressed[Any], ...] = ()
    #: Matching warnings (no data for the OS, versions not comparable…); inventory warnings stay in
    #: ``inventory.warnings``.
    warnings: tuple[str, ...] = ()
    #: Which advisory data the vulnerabilities come from (None when the vulnerability scanner did not run).
    db: DBProvenance | None = None
    #: ISO 8601 UTC time of the scan ("" = the renderer uses the current time).
    generated_at: str = ""
    tool_version: str = ""
    #: The scanners that ran (``vuln``, ``secret``), so that a report can tell "none found" from "not looked".
    scanners: tuple[str, ...] = ("vuln",)

    @property
    def target(self) -> str:
        """The artifact's name as the user typed it."""
        return self.inventory.artifact.name

    @property
    def target_digest(self) -> str:
        """The image's manifest digest ("" for trees and SBOMs without one)."""
        return self.inventory.artifact.digest

    def all_warnings(self) -> tuple[str, ...]:
        """Inventory warnings, then matching warnings."""
        return (*self.inventory.warnings, *self.warnings)

    def counts(self) -> dict[Severity, int]:
        """Open findings per severity, every severity present (highest first), for summaries."""
        return severity_counts(self.findings)

    def extra(self) -> dict[str, Any]:
        """An image scan's own keys are written by the scan document itself."""
        return {}

    def of_kind(self, kind: FindingKind) -> tuple[Finding[Any], ...]:
        """The open findings of one kind, in report order."""
        return tuple(f for f in self.findings if f.kind is kind)

    @property
    def vulnerabilities(self) -> tuple[Finding[Vulnerability], ...]:
        """The open vulnerability findings."""
        return tuple(f for f in self.findings if isinstance(f.detail, Vulnerability))

    @property
    def secrets(self) -> tuple[Finding[Secret], ...]:
        """The open secret findings."""
        return tuple(f for f in self.findings if isinstance(f.detail, Secret))


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
