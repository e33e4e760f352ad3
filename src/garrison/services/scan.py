"""The image scan service: source → inventory (+ secrets) → matching → envelope → de-duplication →
suppression → report.

One :class:`ScanService` holds an open advisory database across scans, so that the CLI (one scan), the
Python API and the server's workers (many scans) run the same pipeline and none of them wires an
engine by hand. Nothing here prints or exits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from garrison.config import Settings
from garrison.errors import UsageError
from garrison.findings.dedupe import dedupe
from garrison.findings.suppress import SuppressOptions, suppress
from garrison.model import Inventory
from garrison.model.common import Finding
from garrison.model.secret import secret_finding
from garrison.model.vuln import vulnerability_finding
from garrison.progress import NO_PROGRESS, Progress
from garrison.report.model import ScanReport, provenance_from_status

if TYPE_CHECKING:
    from garrison.inventory.base import Analyzer
    from garrison.vulndb.store import AdvisoryDB


class Scanner(StrEnum):
    """What a scan looks for (``--scanners vuln,secret``)."""

    VULN = "vuln"
    SECRET = "secret"  # noqa: S105 - a scanner name, not a password


#: What a scan looks for when nobody says (as Trivy's ``image`` does: vulnerabilities and secrets).
DEFAULT_SCANNERS = frozenset({Scanner.VULN, Scanner.SECRET})


def parse_scanners(text: str) -> frozenset[Scanner]:
    """``vuln,secret`` → that set. An empty list or an unknown name is a usage error."""
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    try:
        chosen = frozenset(Scanner(n) for n in names)
    except ValueError:
        bad = next(n for n in names if n not in {s.value for s in Scanner})
        raise UsageError(
            f"--scanners: unknown scanner {bad!r} (choose from {', '.join(s.value for s in Scanner)})"
        ) from None
    if not chosen:
        raise UsageError("--scanners: name at least one scanner (vuln, secret)")
    return chosen


@dataclass(frozen=True)
class ScanRequest:
    """What one scan is asked to do."""

    scanners: frozenset[Scanner] = DEFAULT_SCANNERS
    #: The suppression step's inputs (severity filter, ignore rules, VEX…).
    suppress: SuppressOptions = field(default_factory=SuppressOptions)
    #: The user's secret rule file (extra rules, disabled built-ins, allow rules).
    secret_config: Path | None = None


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ScanService:
    """Scans images, trees and SBOMs. Use as a context manager, or call :meth:`close`.

    The advisory database is opened on the first vulnerability scan (built first when missing or of
    another schema) and kept open until :meth:`close`.
    """

    def __init__(self, settings: Settings | None = None, progress: Progress = NO_PROGRESS) -> None:
        self.settings = settings or Settings()
        self.progress = progress
        self._db: AdvisoryDB | None = None
        self._secret_analyzers: dict[Path | None, Analyzer] = {}

    def __enter__(self) -> ScanService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the advisory database (a later scan opens it again)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    # ------------------------------------------------------------------------------------------ engines

    def database(self) -> AdvisoryDB:
        """The open advisory database, built first when missing, unreadable or of another schema."""
        if self._db is None:
            from garrison.errors import DatabaseError
            from garrison.vulndb.store import AdvisoryDB

            try:
                # The usual case: the database is there and current. Opening it directly spares importing
                # the update machinery (httpx, the builder, multiprocessing: ~0.15 s of start-up).
                self._db = AdvisoryDB.open(self.settings.database_file)
            except DatabaseError:  # missing, unreadable or of another schema (SchemaError is one)
                from garrison.vulndb.update import ensure_database

                self._db = AdvisoryDB.open(ensure_database(self.settings, self.progress))
        return self._db

    def _secret_analyzer(self, config: Path | None) -> Analyzer:
        """The secret analyzer for a rule configuration, compiled once per service."""
        if config not in self._secret_analyzers:
            from garrison.secrets.analyzer import secret_analyzer

            self._secret_analyzers[config] = secret_analyzer(config)
        return self._secret_analyzers[config]

    def inventory(
        self, reference: str, scanners: Iterable[Scanner] = (Scanner.VULN,), secret_config: Path | None = None
    ) -> Inventory:
        """Walk ``reference`` once: packages when vulnerabilities are asked for, secrets when they are."""
        from garrison.inventory.scan import scan_reference

        chosen = frozenset(scanners)
        extra = (self._secret_analyzer(secret_config),) if Scanner.SECRET in chosen else ()
        return scan_reference(reference, self.settings, self.progress, packages=Scanner.VULN in chosen, extra=extra)

    # ------------------------------------------------------------------------------------------ use cases

    def scan(self, reference: str, request: ScanRequest | None = None) -> ScanReport:
        """Scan an image or tree (any source syntax) for what ``request.scanners`` names."""
        request = request or ScanRequest()
        inv = self.inventory(reference, request.scanners, request.secret_config)
        return self.scan_inventory(inv, request)

    def scan_inventory(self, inv: Inventory, request: ScanRequest | None = None) -> ScanReport:
        """Match and suppress an inventory already taken (an SBOM, a stored inventory to rescan)."""
        request = request or ScanRequest()
        now = _now()
        art = inv.artifact
        findings: list[Finding[Any]] = []
        warnings: tuple[str, ...] = ()
        provenance = None
        if Scanner.VULN in request.scanners:
            from garrison.matching.matcher import match_inventory

            db = self.database()
            matched = match_inventory(inv, db)
            warnings = matched.warnings
            provenance = provenance_from_status(db.status())
            findings.extend(vulnerability_finding(v, art.name, art.digest) for v in matched.findings)
        if Scanner.SECRET in request.scanners:
            findings.extend(secret_finding(s, art.name, art.digest) for s in inv.secrets)
        stamped = [replace(f, first_seen=now, last_seen=now) for f in dedupe(findings)]
        result = suppress(stamped, request.suppress)
        return ScanReport(
            inventory=inv,
            findings=result.kept,
            suppressed=result.suppressed,
            warnings=warnings,
            db=provenance,
            generated_at=now,
            tool_version=_tool_version(),
            scanners=tuple(s.value for s in Scanner if s in request.scanners),
        )


def _tool_version() -> str:
    from garrison import __version__

    return __version__
