"""Pure data model shared by every pipeline stage.

Frozen dataclasses only: no I/O, no imports from other garrison packages. Results are replaced,
never mutated (use :func:`dataclasses.replace`).
"""

from typing import TYPE_CHECKING, Any

from garrison.model.artifact import Artifact, LayerInfo, SourceKind
from garrison.model.inventory import Inventory
from garrison.model.package import OSInfo, Package, PackageType

if TYPE_CHECKING:
    from garrison.model.vuln import Advisory, Finding, MatchDetail, Severity

#: Imported on first use: an inventory (``garrison sbom``) never needs the vulnerability model.
_VULN = frozenset(("Advisory", "Finding", "MatchDetail", "Severity"))


def __getattr__(name: str) -> Any:
    if name in _VULN:
        from garrison.model import vuln

        return getattr(vuln, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Advisory",
    "Artifact",
    "Finding",
    "Inventory",
    "LayerInfo",
    "MatchDetail",
    "OSInfo",
    "Package",
    "PackageType",
    "Severity",
    "SourceKind",
]
