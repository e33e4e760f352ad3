"""The documented Python API. The CLI is a thin layer over these functions.

>>> from garrison import api
>>> inv = api.inventory("oci:build/debian:12")                       # doctest: +SKIP
>>> report = api.scan("oci:build/debian:12", options=api.ScanOptions(severities=("CRITICAL",)))  # doctest: +SKIP
>>> [(f.package.name, f.vulnerability_id) for f in report.findings]  # doctest: +SKIP

Every function raises :class:`garrison.errors.GarrisonError` subclasses on failure; none prints or exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from garrison.config import Settings
from garrison.model import Inventory
from garrison.progress import NO_PROGRESS, Progress

if TYPE_CHECKING:
    from garrison.matching.filters import FilterOptions
    from garrison.report.model import ScanReport


@dataclass(frozen=True)
class ScanOptions:
    """What to keep of the findings (the CLI's filter flags)."""

    #: Keep only these severities (names, e.g. ``("HIGH", "CRITICAL")``); empty = all.
    severities: tuple[str, ...] = ()
    #: Hide findings that have no fixed version yet.
    ignore_unfixed: bool = False
    #: YAML ignore rules (advisory ids, packages, expiry dates, reasons); see docs/vulnerabilities.md.
    ignore_file: Path | None = None
    #: OpenVEX documents; ``not_affected`` and ``fixed`` statements suppress findings.
    vex: tuple[Path, ...] = ()


def inventory(
    reference: str, settings: Settings | None = None, progress: Progress = NO_PROGRESS
) -> Inventory:
    """Open ``reference`` (``oci:DIR[:tag]``, ``docker-archive:FILE``, ``dir:PATH``, ``docker:IMAGE`` or a
    registry reference) and return what is installed in it."""
    from garrison.inventory.scan import scan_reference

    return scan_reference(reference, settings or Settings(), progress)


def scan(
    reference: str,
    settings: Settings | None = None,
    options: ScanOptions | None = None,
    progress: Progress = NO_PROGRESS,
) -> ScanReport:
    """Inventory ``reference`` and match it against the advisory database (built first when missing)."""
    settings = settings or Settings()
    filters = _filter_options(options or ScanOptions())  # a bad ignore file fails before any download
    return _match(inventory(reference, settings, progress), settings, filters, progress)


def scan_sbom(
    path: Path,
    settings: Settings | None = None,
    options: ScanOptions | None = None,
    progress: Progress = NO_PROGRESS,
) -> ScanReport:
    """Match the packages of a CycloneDX or SPDX JSON SBOM (garrison's, trivy's, syft's…)."""
    from garrison.sources.sbom import load_sbom

    settings = settings or Settings()
    filters = _filter_options(options or ScanOptions())
    return _match(load_sbom(path), settings, filters, progress)


def scan_inventory(
    inv: Inventory,
    settings: Settings | None = None,
    options: ScanOptions | None = None,
    progress: Progress = NO_PROGRESS,
) -> ScanReport:
    """Match an inventory you already have."""
    settings = settings or Settings()
    return _match(inv, settings, _filter_options(options or ScanOptions()), progress)


def _filter_options(options: ScanOptions) -> FilterOptions:
    from garrison.matching.filters import build_options

    return build_options(
        severity=",".join(options.severities),
        ignore_unfixed=options.ignore_unfixed,
        ignore_file=options.ignore_file,
        vex=options.vex,
    )


def _match(inv: Inventory, settings: Settings, filters: FilterOptions, progress: Progress) -> ScanReport:
    import datetime as dt

    from garrison import __version__
    from garrison.errors import DatabaseError
    from garrison.report.model import scan_report
    from garrison.vulndb.store import AdvisoryDB

    try:
        # The usual case: the database is there and current. Opening it directly spares importing the
        # update machinery (httpx, the builder, multiprocessing: ~0.15 s of start-up) and a second open.
        db = AdvisoryDB.open(settings.database_file)
    except DatabaseError:  # missing, unreadable or of another schema (SchemaError is a DatabaseError)
        from garrison.vulndb.update import ensure_database

        db = AdvisoryDB.open(ensure_database(settings, progress))
    try:
        return scan_report(
            inv,
            db,
            filters,
            generated_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            tool_version=__version__,
        )
    finally:
        db.close()
