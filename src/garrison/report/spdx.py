"""SPDX 2.3 JSON (https://spdx.github.io/spdx-spec/v2.3/): an inventory as an SPDX document.

The artifact is the described package (``primaryPackagePurpose: CONTAINER``), the OS one
``OPERATING_SYSTEM`` package, every installed package a package with its purl as a
``PACKAGE-MANAGER``/``purl`` external reference. Relationships: the document DESCRIBES the artifact,
the artifact CONTAINS every package. Valid against the SPDX 2.3 JSON schema vendored in ``schemas/``
(checked in tests). Findings are not part of SPDX 2.3; a scan rendered as SPDX holds the inventory.
"""

from __future__ import annotations

import functools
import re
from typing import IO, Any

from garrison.model import Inventory, Package
from garrison.report.common import TOOL_NAME, random_uuid, timestamp, tool_version, write_json
from garrison.report.json_report import sorted_packages
from garrison.report.model import ScanReport

SPDX_VERSION = "SPDX-2.3"
#: Unique, never resolved: SPDX only requires the namespace to be a unique URI.
NAMESPACE_BASE = "https://garrison.invalid/spdxdocs"
_NOT_ID = re.compile(r"[^A-Za-z0-9.-]+")


def _spdx_id(prefix: str, text: str, used: set[str]) -> str:
    base = f"SPDXRef-{prefix}-{_NOT_ID.sub('-', text).strip('-')}"[:200]
    ref, n = base, 1
    while ref in used:
        n += 1
        ref = f"{base}-{n}"
    used.add(ref)
    return ref


@functools.lru_cache(maxsize=1)
def _licensing() -> Any:
    from license_expression import get_spdx_licensing  # type: ignore[import-untyped]

    return get_spdx_licensing()


def valid_expression(expr: str) -> str:
    """``expr`` normalised when it is a valid SPDX license expression, else "" (the parser raises several
    unrelated types on junk; CycloneDX uses this too)."""
    try:
        info = _licensing().validate(expr)
    except Exception:
        return ""
    if info.errors or not info.normalized_expression:
        return ""
    return str(info.normalized_expression)


def _license(pkg: Package) -> str:
    """A valid SPDX expression for the declared licenses, else NOASSERTION (free-text Debian license
    names are not SPDX ids, and an invalid expression makes the whole document invalid)."""
    if not pkg.licenses:
        return "NOASSERTION"
    expr = " AND ".join(f"({t})" if " " in t.strip() else t.strip() for t in pkg.licenses if t.strip())
    return valid_expression(expr) or "NOASSERTION"


def _package(pkg: Package, spdx_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "SPDXID": spdx_id,
        "name": pkg.name,
        "versionInfo": pkg.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": _license(pkg),
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "LIBRARY",
    }
    if pkg.purl:
        out["externalRefs"] = [
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": pkg.purl}
        ]
    if pkg.source_name:
        # The phrase trivy uses too, so that garrison.sources.sbom reads the source package back from
        # either producer (advisories for Debian are keyed by it).
        out["sourceInfo"] = f"built package from: {pkg.source_name} {pkg.source_version}".strip()
    attrs = [f"type: {pkg.type.value}"]
    if pkg.layer:
        attrs.append(f"layer: {pkg.layer}")
    attrs.extend(f"location: {loc}" for loc in pkg.locations)
    out["comment"] = "; ".join(attrs)
    return out


def spdx_document(inv: Inventory, generated_at: str = "", version: str = "") -> dict[str, Any]:
    """The SPDX 2.3 document as a dict."""
    used: set[str] = {"SPDXRef-DOCUMENT"}
    art = inv.artifact
    name = art.name or "unknown"
    root_id = _spdx_id("Artifact", name, used)
    root: dict[str, Any] = {
        "SPDXID": root_id,
        "name": name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
    }
    if art.digest:
        root["versionInfo"] = art.digest
        algo, _, hexd = art.digest.partition(":")
        if algo == "sha256" and len(hexd) == 64:
            root["checksums"] = [{"algorithm": "SHA256", "checksumValue": hexd}]
    packages = [root]
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": root_id}
    ]
    if inv.os is not None:
        os_id = _spdx_id("OperatingSystem", inv.os.family, used)
        packages.append(
            {
                "SPDXID": os_id,
                "name": inv.os.family,
                "versionInfo": inv.os.version_id,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": False,
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": "NOASSERTION",
                "copyrightText": "NOASSERTION",
                "primaryPackagePurpose": "OPERATING_SYSTEM",
            }
        )
        relationships.append({"spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": os_id})
    for p in sorted_packages(inv.packages):
        pid = _spdx_id("Package", f"{p.type.value}-{p.name}-{p.version}", used)
        packages.append(_package(p, pid))
        relationships.append({"spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": pid})
    slug = _NOT_ID.sub("-", name).strip("-") or "artifact"
    return {
        "spdxVersion": SPDX_VERSION,
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": f"{NAMESPACE_BASE}/{slug}-{random_uuid()}",
        "creationInfo": {
            "created": timestamp(generated_at),
            "creators": [f"Tool: {TOOL_NAME}-{tool_version(version)}"],
        },
        "documentDescribes": [root_id],
        "packages": packages,
        "relationships": relationships,
    }


def _dump(doc: dict[str, Any], out: IO[str]) -> None:
    write_json(doc, out)


def render(report: ScanReport, out: IO[str]) -> None:
    _dump(spdx_document(report.inventory, report.generated_at, report.tool_version), out)


def render_inventory(inv: Inventory, out: IO[str]) -> None:
    _dump(spdx_document(inv), out)
