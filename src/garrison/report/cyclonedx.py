"""CycloneDX 1.6 JSON, written as plain dicts.

Why not through ``cyclonedx-python-lib``'s object model: building and serialising its objects cost
about 0.35 s for the 193 packages of the app test image (a warm ``sbom -f cyclonedx`` took 0.52 s
against 0.14 s for ``-f json``), and an SBOM that users hand on must not be the slow path. The document
is checked instead: the tests validate every rendering with the library's strict 1.6 JSON schema
validator and compare its content with what the library's own model serialises.

The artifact is ``metadata.component`` (type ``container``), the OS an ``operating-system``
component, every package a ``library`` with its purl and ``garrison:*`` properties (layer diff_id,
source package, locations). Vulnerability findings become ``vulnerabilities`` with ratings, fixes in
``recommendation`` and ``affects`` pointing at the component's ``bom-ref``; findings suppressed by VEX
or an ignore rule are written with an ``analysis`` (``not_affected`` or ``resolved`` for VEX, as its
status says; ``in_triage`` with the rule's reason for an ignore rule, which states no verdict) so that
consumers see the decision. Secrets have no place in CycloneDX 1.6
and are left out.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from typing import IO, Any

from garrison.model import Inventory, Package
from garrison.model.common import Finding, Severity, Suppressed
from garrison.model.vuln import Vulnerability
from garrison.report.common import TOOL_NAME, package_refs, random_uuid, timestamp, tool_version, write_json
from garrison.report.json_report import sorted_packages
from garrison.report.model import ScanReport

SPEC_VERSION = "1.6"
SCHEMA_URI = "http://cyclonedx.org/schema/bom-1.6.schema.json"

_SEVERITY = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "high",
    Severity.MEDIUM: "medium",
    Severity.LOW: "low",
    Severity.NEGLIGIBLE: "info",
    Severity.UNKNOWN: "unknown",
}


@functools.lru_cache(maxsize=1)
def _spdx_ids() -> dict[str, str]:
    """SPDX license ids (lower-case → canonical), from the list the CycloneDX schema itself enumerates
    (shipped with cyclonedx-python-lib): an id outside it would make the document invalid."""
    import importlib.resources

    res = importlib.resources.files("cyclonedx") / "schema" / "_res" / "spdx.SNAPSHOT.schema.json"
    return {i.lower(): i for i in json.loads(res.read_text(encoding="utf-8"))["enum"]}


_OPERATORS = (" AND ", " OR ", " WITH ")


@functools.lru_cache(maxsize=256)
def _license(text: str) -> dict[str, Any]:
    """One ``licenses[]`` entry: an SPDX id when the text is one, a valid SPDX expression as
    ``expression``, anything else as a free-text ``name``."""
    t = text.strip()
    known = _spdx_ids().get(t.lower())
    if known:
        return {"license": {"id": known}}
    if any(op in t for op in _OPERATORS):
        from garrison.report.spdx import valid_expression

        expr = valid_expression(t)
        if expr:
            return {"expression": expr}
    return {"license": {"name": t}}


def _licenses(pkg: Package) -> list[dict[str, Any]]:
    entries = [_license(t) for t in pkg.licenses if t.strip()]
    # The schema allows either a list of licenses or exactly one expression.
    exprs = [e for e in entries if "expression" in e]
    if exprs and len(entries) > 1:
        return [e for e in entries if "expression" not in e] or exprs[:1]
    return entries


def _properties(pkg: Package) -> list[dict[str, str]]:
    props = [("garrison:package:type", pkg.type.value)]
    if pkg.layer:
        props.append(("garrison:layer:diff_id", pkg.layer))
    if pkg.source_name:
        props.append(("garrison:package:source_name", pkg.source_name))
    if pkg.source_version:
        props.append(("garrison:package:source_version", pkg.source_version))
    if pkg.arch:
        props.append(("garrison:package:arch", pkg.arch))
    props.extend(("garrison:location", loc) for loc in pkg.locations)
    return [{"name": k, "value": v} for k, v in sorted(props)]


def _component(p: Package, ref: str) -> dict[str, Any]:
    comp: dict[str, Any] = {"type": "library", "bom-ref": ref, "name": p.name}
    if p.namespace:
        comp["group"] = p.namespace
    if p.version:
        comp["version"] = p.version
    lic = _licenses(p)
    if lic:
        comp["licenses"] = lic
    if p.purl.startswith("pkg:"):
        comp["purl"] = p.purl
    comp["properties"] = _properties(p)
    return comp


def _bom(
    inv: Inventory,
    generated_at: str,
    version: str,
    findings: Iterable[Finding[Any]] = (),
    suppressed: Iterable[Suppressed[Any]] = (),
) -> dict[str, Any]:
    art = inv.artifact
    root_props = [{"name": "garrison:artifact:kind", "value": art.kind.value}]
    if art.config_digest:
        root_props.insert(0, {"name": "garrison:artifact:config_digest", "value": art.config_digest})
    root: dict[str, Any] = {"type": "container", "bom-ref": "artifact", "name": art.name or "unknown"}
    if art.digest:
        root["version"] = art.digest
    root["properties"] = root_props
    components: list[dict[str, Any]] = []
    if inv.os is not None:
        osc: dict[str, Any] = {"type": "operating-system", "bom-ref": "os", "name": inv.os.family}
        if inv.os.version_id:
            osc["version"] = inv.os.version_id
        if inv.os.pretty_name:
            osc["description"] = inv.os.pretty_name
        components.append(osc)
    pkgs = sorted_packages(inv.packages)
    refs = package_refs(pkgs)
    components.extend(_component(p, refs[p]) for p in pkgs)
    vulns = [_vulnerability(f.detail, refs, None) for f in findings if isinstance(f.detail, Vulnerability)]
    # Only decisions about a finding (VEX, ignore rules) belong in the BOM; findings hidden by
    # --severity or --ignore-unfixed are a view of the report, not an analysis of the vulnerability.
    vulns.extend(
        _vulnerability(s.finding.detail, refs, s)
        for s in suppressed
        if isinstance(s.finding.detail, Vulnerability) and s.suppression.by in ("vex", "ignore-file")
    )
    bom: dict[str, Any] = {
        "$schema": SCHEMA_URI,
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{random_uuid()}",
        "version": 1,
        "metadata": {
            "timestamp": timestamp(generated_at),
            "tools": {"components": [{"type": "application", "name": TOOL_NAME, "version": tool_version(version)}]},
            "component": root,
        },
        "components": components,
        "dependencies": [{"ref": "artifact", "dependsOn": [c["bom-ref"] for c in components]}]
        + [{"ref": c["bom-ref"]} for c in components],
    }
    if vulns:
        bom["vulnerabilities"] = vulns
    return bom


def _analysis(s: Suppressed[Any]) -> dict[str, Any]:
    d = s.suppression
    # VEX states a verdict; an ignore rule only records that someone looked.
    state = ("not_affected" if "not_affected" in d.reason else "resolved") if d.by == "vex" else "in_triage"
    return {"state": state, "detail": f"suppressed by {d.by}: {d.reason}"}


def _vulnerability(v: Vulnerability, refs: dict[Package, str], sup: Suppressed[Any] | None) -> dict[str, Any]:
    adv = v.advisory
    ratings: list[dict[str, Any]] = [{"source": {"name": adv.source or "osv"}, "severity": _SEVERITY[v.severity]}]
    for vec in adv.cvss_vectors:
        method = _cvss_method(vec)
        # CycloneDX names the scheme in ``method`` and keeps the vector without its ``CVSS:3.1/`` prefix
        # (as the reference library writes it).
        rating: dict[str, Any] = {"vector": re.sub(r"^CVSS:\d\.\d/?", "", vec), "method": method}
        if adv.cvss_score is not None:
            rating["score"] = adv.cvss_score
        ratings.append(rating)
    ref = refs.get(v.package, "")
    other = sorted({i for i in (adv.id, *v.merged_ids, *adv.aliases) if i != v.vulnerability_id})
    out: dict[str, Any] = {
        "bom-ref": f"{v.vulnerability_id}/{ref}",
        "id": v.vulnerability_id,
        "source": {"name": adv.source or "osv", "url": f"https://osv.dev/vulnerability/{adv.id}"},
    }
    if other:
        out["references"] = [{"id": i, "source": {"name": "osv"}} for i in other]
    out["ratings"] = ratings
    if adv.summary:
        out["description"] = adv.summary
    if adv.details:
        out["detail"] = adv.details
    fixed = ", ".join(v.fixed_versions)
    if fixed:
        out["recommendation"] = f"Upgrade {v.package.name} to {fixed}"
    links = [{"url": u} for u in adv.references[:20] if u.startswith("http")]
    if links:
        out["advisories"] = links
    for key, text in (("published", adv.published), ("updated", adv.modified)):
        when = _date(text)
        if when:
            out[key] = when
    if sup is not None:
        out["analysis"] = _analysis(sup)
    out["affects"] = [{"ref": ref, "versions": [{"version": v.package.version, "status": "affected"}]}]
    return out


def _cvss_method(vector: str) -> str:
    """The CycloneDX scoring method of a CVSS vector string (a bare ``AV:…/Au:…`` vector is CVSS 2, as
    OSV writes those)."""
    if vector.startswith("CVSS:4"):
        return "CVSSv4"
    if vector.startswith("CVSS:3.1"):
        return "CVSSv31"
    if vector.startswith("CVSS:3"):
        return "CVSSv3"
    if vector.startswith(("CVSS:2", "AV:", "(AV:")):
        return "CVSSv2"
    return "other"


def _date(text: str) -> str:
    """An OSV time as the schema's ``date-time``; "" when it is not one (left out)."""
    if not text:
        return ""
    m = re.match(r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?)?$", text.strip())
    if not m:
        return ""
    day, clock, frac, zone = m.groups()
    zone = "Z" if zone in (None, "Z") else zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    return f"{day}T{clock or '00:00:00'}{frac or ''}{zone}"


def _write(bom: dict[str, Any], out: IO[str]) -> None:
    write_json(bom, out)


def render(report: ScanReport, out: IO[str]) -> None:
    _write(
        _bom(report.inventory, report.generated_at, report.tool_version, report.findings, report.suppressed),
        out,
    )


def render_inventory(inv: Inventory, out: IO[str]) -> None:
    _write(_bom(inv, "", ""), out)


def bom_document(inv: Inventory, generated_at: str = "", version: str = "") -> dict[str, Any]:
    """An inventory as a CycloneDX 1.6 BOM (a dict): a stored image's SBOM exported by the server."""
    return _bom(inv, generated_at, version)
