"""Report renderers: table, JSON, SARIF, CycloneDX, SPDX.

One explicit registry per entry point. Renderer modules are imported on use, so that asking for JSON
never imports rich or cyclonedx.
"""

from __future__ import annotations

import importlib
from typing import IO, TYPE_CHECKING

from garrison._lazy import lazy_exports
from garrison.errors import UsageError

if TYPE_CHECKING:
    from garrison.model import Inventory
    from garrison.report.model import DBProvenance, DBSource, ScanReport, provenance_from_status, scan_report

#: Re-exported from :mod:`garrison.report.model`, imported on first use (an SBOM needs none of them).
_MODEL = frozenset(("DBProvenance", "DBSource", "ScanReport", "provenance_from_status", "scan_report"))


__getattr__ = lazy_exports(__name__, dict.fromkeys(_MODEL, "garrison.report.model"))


#: ``garrison scan -f`` formats → module with ``render(report, out)``.
SCAN_FORMATS: dict[str, str] = {
    "table": "garrison.report.table",
    "json": "garrison.report.json_report",
    "sarif": "garrison.report.sarif",
    "cyclonedx": "garrison.report.cyclonedx",
    "spdx-json": "garrison.report.spdx",
}
#: ``garrison sbom -f`` formats → module with ``render_inventory(inv, out)``.
INVENTORY_FORMATS: dict[str, str] = {
    "table": "garrison.report.table",
    "json": "garrison.report.json_report",
    "cyclonedx": "garrison.report.cyclonedx",
    "spdx-json": "garrison.report.spdx",
}


def _module(registry: dict[str, str], fmt: str, what: str) -> object:
    try:
        name = registry[fmt]
    except KeyError:
        raise UsageError(f"unknown {what} format {fmt!r} (choose from {', '.join(registry)})") from None
    return importlib.import_module(name)


def render(report: ScanReport, fmt: str, out: IO[str]) -> None:
    """Write ``report`` to ``out`` in ``fmt`` (one of :data:`SCAN_FORMATS`)."""
    _module(SCAN_FORMATS, fmt, "report").render(report, out)  # type: ignore[attr-defined]


def render_inventory(inv: Inventory, fmt: str, out: IO[str]) -> None:
    """Write an inventory (``garrison sbom``) in ``fmt`` (one of :data:`INVENTORY_FORMATS`)."""
    _module(INVENTORY_FORMATS, fmt, "SBOM").render_inventory(inv, out)  # type: ignore[attr-defined]


__all__ = [
    "INVENTORY_FORMATS",
    "SCAN_FORMATS",
    "DBProvenance",
    "DBSource",
    "ScanReport",
    "provenance_from_status",
    "render",
    "render_inventory",
    "scan_report",
]
