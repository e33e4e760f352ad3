"""Pure data model shared by every pipeline stage.

Frozen dataclasses only: no I/O, no imports from other garrison packages. Results are replaced,
never mutated (use :func:`dataclasses.replace`).
"""

from garrison.model.artifact import Artifact, LayerInfo, SourceKind
from garrison.model.inventory import Inventory
from garrison.model.package import OSInfo, Package, PackageType
from garrison.model.vuln import Advisory, Finding, MatchDetail, Severity

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
