"""CycloneDX 1.6 JSON through ``cyclonedx-python-lib`` (the reference implementation, so that the
output follows the schema by construction; tests also run the library's JSON schema validator).

The artifact is ``metadata.component`` (type ``container``), the OS an ``operating-system``
component, every package a ``library`` with its purl and ``garrison:*`` properties (layer diff_id,
source package, locations). Findings become ``vulnerabilities`` with ratings, fixes in
``recommendation`` and ``affects`` pointing at the component's ``bom-ref``; findings suppressed by VEX
or an ignore rule are written with an ``analysis`` so that consumers see the decision.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable
from decimal import Decimal
from typing import IO, TYPE_CHECKING

from garrison.model import Finding, Inventory, Package, Severity
from garrison.report.common import TOOL_NAME, package_refs, timestamp, tool_version
from garrison.report.json_report import sorted_packages
from garrison.report.model import ScanReport

if TYPE_CHECKING:
    from garrison.matching.filters import Suppressed

_SEVERITY = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "high",
    Severity.MEDIUM: "medium",
    Severity.LOW: "low",
    Severity.NEGLIGIBLE: "info",
    Severity.UNKNOWN: "unknown",
}


def _properties(pkg: Package) -> list[tuple[str, str]]:
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
    return props


def _bom(
    inv: Inventory,
    generated_at: str,
    version: str,
    findings: Iterable[Finding] = (),
    suppressed: Iterable[Suppressed] = (),
) -> object:
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.tool import ToolRepository
    from packageurl import PackageURL

    bom = Bom()
    bom.metadata.timestamp = dt.datetime.fromisoformat(timestamp(generated_at).replace("Z", "+00:00"))
    tools = ToolRepository()
    tools.components.add(
        Component(name=TOOL_NAME, version=tool_version(version), type=ComponentType.APPLICATION)
    )
    bom.metadata.tools = tools
    art = inv.artifact
    root_props = [Property(name="garrison:artifact:kind", value=art.kind.value)]
    if art.config_digest:
        root_props.append(Property(name="garrison:artifact:config_digest", value=art.config_digest))
    root = Component(
        name=art.name or "unknown",
        type=ComponentType.CONTAINER,
        version=art.digest or None,
        bom_ref="artifact",
        properties=root_props,
    )
    bom.metadata.component = root
    components: list[Component] = []
    if inv.os is not None:
        osc = Component(
            name=inv.os.family,
            version=inv.os.version_id or None,
            type=ComponentType.OPERATING_SYSTEM,
            bom_ref="os",
            description=inv.os.pretty_name or None,
        )
        components.append(osc)
    lic = LicenseFactory()
    pkgs = sorted_packages(inv.packages)
    refs = package_refs(pkgs)
    by_ref: dict[str, Component] = {}
    for p in pkgs:
        purl = None
        if p.purl:
            try:
                purl = PackageURL.from_string(p.purl)
            except ValueError:
                purl = None
        comp = Component(
            name=p.name,
            version=p.version or None,
            type=ComponentType.LIBRARY,
            bom_ref=refs[p],
            purl=purl,
            group=p.namespace or None,
            licenses=[lic.make_from_string(t) for t in p.licenses if t.strip()],
            properties=[Property(name=k, value=v) for k, v in _properties(p)],
        )
        by_ref[refs[p]] = comp
        components.append(comp)
    for c in components:
        bom.components.add(c)
    bom.register_dependency(root, components)
    for f in findings:
        bom.vulnerabilities.add(_vulnerability(f, refs, None))
    for s in suppressed:
        # Only decisions about a finding (VEX, ignore rules) belong in the BOM; findings hidden by
        # --severity or --ignore-unfixed are a view of the report, not an analysis of the vulnerability.
        if s.filter in ("vex", "ignore-file"):
            bom.vulnerabilities.add(_vulnerability(s.finding, refs, s))
    return bom


def _vulnerability(f: Finding, refs: dict[Package, str], sup: Suppressed | None) -> object:
    from cyclonedx.model import XsUri
    from cyclonedx.model.impact_analysis import ImpactAnalysisAffectedStatus, ImpactAnalysisState
    from cyclonedx.model.vulnerability import (
        BomTarget,
        BomTargetVersionRange,
        Vulnerability,
        VulnerabilityAdvisory,
        VulnerabilityAnalysis,
        VulnerabilityRating,
        VulnerabilityReference,
        VulnerabilityScoreSource,
        VulnerabilitySeverity,
        VulnerabilitySource,
    )

    adv = f.advisory
    ratings = [
        VulnerabilityRating(
            severity=VulnerabilitySeverity(_SEVERITY[f.severity]),
            source=VulnerabilitySource(name=adv.source or "osv"),
        )
    ]
    for vec in adv.cvss_vectors:
        method = VulnerabilityScoreSource.get_from_vector(vec)
        ratings.append(
            VulnerabilityRating(
                vector=vec,
                method=method,
                score=Decimal(str(adv.cvss_score)) if adv.cvss_score is not None else None,
            )
        )
    ref = refs.get(f.package, "")
    other = [i for i in (adv.id, *f.merged_ids, *adv.aliases) if i != f.vulnerability_id]
    analysis = None
    if sup is not None:
        state = (
            ImpactAnalysisState.NOT_AFFECTED
            if sup.filter == "vex" and "not_affected" in sup.reason
            else ImpactAnalysisState.RESOLVED
            if sup.filter == "vex"
            else ImpactAnalysisState.IN_TRIAGE
        )
        analysis = VulnerabilityAnalysis(state=state, detail=f"suppressed by {sup.filter}: {sup.reason}")
    fixed = ", ".join(f.fixed_versions)
    return Vulnerability(
        bom_ref=f"{f.vulnerability_id}/{ref}",
        id=f.vulnerability_id,
        source=VulnerabilitySource(
            name=adv.source or "osv", url=XsUri(f"https://osv.dev/vulnerability/{adv.id}")
        ),
        references=[
            VulnerabilityReference(id=i, source=VulnerabilitySource(name="osv")) for i in sorted(set(other))
        ],
        ratings=ratings,
        description=adv.summary or None,
        detail=adv.details or None,
        recommendation=f"Upgrade {f.package.name} to {fixed}" if fixed else None,
        advisories=[VulnerabilityAdvisory(url=XsUri(u)) for u in adv.references[:20] if u.startswith("http")],
        published=_date(adv.published),
        updated=_date(adv.modified),
        analysis=analysis,
        affects=[
            BomTarget(
                ref=ref,
                versions=[
                    BomTargetVersionRange(
                        version=f.package.version, status=ImpactAnalysisAffectedStatus.AFFECTED
                    )
                ],
            )
        ],
    )


def _date(text: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _write(bom: object, out: IO[str]) -> None:
    from cyclonedx.output.json import JsonV1Dot6

    with warnings.catch_warnings():
        # The library warns about incomplete dependency graphs of third-party components; ours is flat.
        warnings.simplefilter("ignore")
        text = JsonV1Dot6(bom).output_as_string(indent=2)  # type: ignore[arg-type]
    out.write(text)
    out.write("\n")


def render(report: ScanReport, out: IO[str]) -> None:
    _write(
        _bom(report.inventory, report.generated_at, report.tool_version, report.findings, report.suppressed),
        out,
    )


def render_inventory(inv: Inventory, out: IO[str]) -> None:
    _write(_bom(inv, "", ""), out)
