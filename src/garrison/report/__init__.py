"""Report renderers: table, JSON, SARIF, CycloneDX, SPDX.

The formats are declared once, in :data:`FORMATS`; the CLI reads its ``-f`` choices from there.
A renderer is a module with ``render(report, out)`` (a scan report: findings of every kind) and/or
``render_inventory(inv, out)`` (an SBOM). Renderer modules are imported on use, so that asking for
JSON never imports rich.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Protocol, cast

from garrison._lazy import lazy_exports
from garrison.errors import UsageError

if TYPE_CHECKING:
    from garrison.model import Inventory
    from garrison.report.model import DBProvenance, DBSource, ScanReport, provenance_from_status

#: Re-exported from :mod:`garrison.report.model`, imported on first use (an SBOM needs none of them).
_MODEL = frozenset(("DBProvenance", "DBSource", "ScanReport", "provenance_from_status"))


__getattr__ = lazy_exports(__name__, dict.fromkeys(_MODEL, "garrison.report.model"))


class ReportRenderer(Protocol):
    """Renders a scan report: every kind of finding (CycloneDX and SPDX: packages and vulnerabilities)."""

    def render(self, report: ScanReport, out: IO[str]) -> None:
        """Write ``report``. Table, JSON and SARIF take any :class:`~garrison.report.model.FindingsReport`."""
        ...


class InventoryRenderer(Protocol):
    """Renders an inventory alone (``garrison sbom``)."""

    def render_inventory(self, inv: Inventory, out: IO[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class Format:
    """One output format."""

    #: What the user types after ``-f``.
    name: str
    #: The renderer module.
    module: str
    #: Renders scan reports (``garrison scan -f``).
    scan: bool
    #: Renders inventories (``garrison sbom -f``).
    sbom: bool
    #: One line for ``--help`` and the docs.
    description: str


FORMATS: tuple[Format, ...] = (
    Format("table", "garrison.report.table", True, True, "for people and CI logs (default)"),
    Format("json", "garrison.report.json_report", True, True, "garrison's versioned JSON"),
    Format("sarif", "garrison.report.sarif", True, False, "SARIF 2.1.0 for code-scanning UIs"),
    Format("cyclonedx", "garrison.report.cyclonedx", True, True, "CycloneDX 1.6 JSON (SBOM + vulnerabilities)"),
    Format("spdx-json", "garrison.report.spdx", True, True, "SPDX 2.3 JSON (SBOM)"),
)
#: ``garrison scan -f`` choices.
SCAN_FORMATS: tuple[str, ...] = tuple(f.name for f in FORMATS if f.scan)
#: ``garrison sbom -f`` choices.
INVENTORY_FORMATS: tuple[str, ...] = tuple(f.name for f in FORMATS if f.sbom)


def _module(fmt: str, scan: bool) -> object:
    chosen = [f for f in FORMATS if f.name == fmt and (f.scan if scan else f.sbom)]
    if not chosen:
        names = SCAN_FORMATS if scan else INVENTORY_FORMATS
        what = "report" if scan else "SBOM"
        raise UsageError(f"unknown {what} format {fmt!r} (choose from {', '.join(names)})")
    return importlib.import_module(chosen[0].module)


def report_renderer(fmt: str) -> ReportRenderer:
    """The renderer for ``garrison scan -f fmt``; an unknown format is a usage error."""
    return cast("ReportRenderer", _module(fmt, scan=True))


def inventory_renderer(fmt: str) -> InventoryRenderer:
    """The renderer for ``garrison sbom -f fmt``; an unknown format is a usage error."""
    return cast("InventoryRenderer", _module(fmt, scan=False))


def render(report: ScanReport, fmt: str, out: IO[str]) -> None:
    """Write ``report`` to ``out`` in ``fmt`` (one of :data:`SCAN_FORMATS`)."""
    report_renderer(fmt).render(report, out)


def render_inventory(inv: Inventory, fmt: str, out: IO[str]) -> None:
    """Write an inventory (``garrison sbom``) in ``fmt`` (one of :data:`INVENTORY_FORMATS`)."""
    inventory_renderer(fmt).render_inventory(inv, out)


__all__ = [
    "FORMATS",
    "INVENTORY_FORMATS",
    "SCAN_FORMATS",
    "DBProvenance",
    "DBSource",
    "Format",
    "InventoryRenderer",
    "ReportRenderer",
    "ScanReport",
    "inventory_renderer",
    "provenance_from_status",
    "render",
    "render_inventory",
    "report_renderer",
]
