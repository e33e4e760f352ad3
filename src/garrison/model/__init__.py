"""Pure data model shared by every pipeline stage.

Frozen dataclasses only: no I/O, no imports from other garrison packages. Results are replaced,
never mutated (use :func:`dataclasses.replace`).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from garrison.model.artifact import Artifact, LayerInfo, SourceKind
    from garrison.model.common import (
        ClusterId,
        Digest,
        Evidence,
        Finding,
        FindingId,
        FindingKind,
        RuleId,
        RuleRef,
        Severity,
        Subject,
        SubjectKind,
        Suppressed,
        Suppression,
    )
    from garrison.model.inventory import Inventory
    from garrison.model.package import OSInfo, Package, PackageType
    from garrison.model.secret import Secret, secret_finding
    from garrison.model.vuln import Advisory, MatchDetail, Vulnerability, vulnerability_finding

#: Imported on first use: an inventory (``garrison sbom``) never needs the findings model, and importing
#: one module of the package (``garrison.model.common`` for ``garrison posture``) runs this file first,
#: so it must not pull in the inventory model either.
_LAZY = {
    **dict.fromkeys(("Artifact", "LayerInfo", "SourceKind"), "artifact"),
    "Inventory": "inventory",
    **dict.fromkeys(("OSInfo", "Package", "PackageType"), "package"),
    **dict.fromkeys(
        (
            "ClusterId",
            "Digest",
            "Evidence",
            "Finding",
            "FindingId",
            "FindingKind",
            "RuleId",
            "RuleRef",
            "Severity",
            "Subject",
            "SubjectKind",
            "Suppressed",
            "Suppression",
        ),
        "common",
    ),
    **dict.fromkeys(("Advisory", "MatchDetail", "Vulnerability", "vulnerability_finding"), "vuln"),
    **dict.fromkeys(("Secret", "secret_finding"), "secret"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(f"garrison.model.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Advisory",
    "Artifact",
    "ClusterId",
    "Digest",
    "Evidence",
    "Finding",
    "FindingId",
    "FindingKind",
    "Inventory",
    "LayerInfo",
    "MatchDetail",
    "OSInfo",
    "Package",
    "PackageType",
    "RuleId",
    "RuleRef",
    "Secret",
    "Severity",
    "SourceKind",
    "Subject",
    "SubjectKind",
    "Suppressed",
    "Suppression",
    "Vulnerability",
    "secret_finding",
    "vulnerability_finding",
]
