"""SARIF 2.1.0 (https://docs.oasis-open.org/sarif/sarif/v2.1.0/): one rule per vulnerability id, one
result per (vulnerability, package). Valid against the OASIS schema vendored in ``schemas/`` (checked in
tests), and shaped for GitHub code scanning: ``security-severity`` on rules, a relative artifact URI
(the file that declared the package) on every result and ``partialFingerprints`` so that alerts survive
re-scans.
"""

from __future__ import annotations

import json
from typing import IO, Any

from garrison.model import Finding, Severity
from garrison.report.common import TOOL_NAME, finding_fingerprint, tool_version
from garrison.report.model import ScanReport

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.NEGLIGIBLE: "note",
    Severity.UNKNOWN: "note",
}
#: GitHub ranks alerts by ``security-severity`` (a CVSS-like number); used when no CVSS score is known.
_DEFAULT_SCORE = {
    Severity.CRITICAL: 9.5,
    Severity.HIGH: 8.0,
    Severity.MEDIUM: 5.5,
    Severity.LOW: 2.0,
    Severity.NEGLIGIBLE: 0.5,
    Severity.UNKNOWN: 0.0,
}


def _score(f: Finding) -> float:
    return f.advisory.cvss_score if f.advisory.cvss_score is not None else _DEFAULT_SCORE[f.severity]


def _help_url(f: Finding) -> str:
    vid = f.vulnerability_id
    if vid.startswith("CVE-") and f.advisory.source.startswith("Debian"):
        return f"https://security-tracker.debian.org/tracker/{vid}"
    return f"https://osv.dev/vulnerability/{f.advisory.id}"


def _rule(f: Finding) -> dict[str, Any]:
    adv = f.advisory
    title = adv.summary or (adv.details.split("\n", 1)[0][:120] if adv.details else f.vulnerability_id)
    refs = "\n".join(f"- {r}" for r in adv.references[:10])
    text = (
        f"{f.vulnerability_id}: {title}\nSeverity: {f.severity.name}"
        f"{' (known exploited)' if f.kev else ''}\nAdvisory: {adv.id}"
        + (f" (also {', '.join(f.merged_ids)})" if f.merged_ids else "")
    )
    markdown = (
        f"**{f.vulnerability_id}** {title}\n\n| Severity | Advisory |\n| --- | --- |\n"
        f"| {f.severity.name} | {adv.id} |\n\n{adv.details[:2000]}\n\n{refs}"
    )
    tags = ["vulnerability", "security", f.severity.name]
    if f.kev:
        tags.append("known-exploited")
    return {
        "id": f.vulnerability_id,
        "name": "Vulnerability" + "".join(c for c in f.vulnerability_id.title() if c.isalnum()),
        "shortDescription": {"text": f"{f.vulnerability_id}: {title}"[:1000]},
        "fullDescription": {"text": (adv.details or title)[:4000]},
        "helpUri": _help_url(f),
        "help": {"text": text, "markdown": markdown},
        "defaultConfiguration": {"level": _LEVEL[f.severity]},
        "properties": {"security-severity": f"{_score(f):.1f}", "tags": tags, "precision": "very-high"},
    }


def _uri(f: Finding, report: ScanReport) -> str:
    if f.package.locations:
        return f.package.locations[0].lstrip("/")
    return report.inventory.artifact.name or "unknown"


def _result(f: Finding, rule_index: int, report: ScanReport) -> dict[str, Any]:
    fixed = ", ".join(f.fixed_versions) or "no fix yet"
    msg = (
        f"{f.package.name} {f.package.version} is affected by {f.vulnerability_id} "
        f"({f.severity.name}); fixed in: {fixed}. Artifact: {report.inventory.artifact.name}"
    )
    props: dict[str, Any] = {
        "package": f.package.name,
        "installedVersion": f.package.version,
        "fixedVersions": list(f.fixed_versions),
        "purl": f.package.purl,
        "kev": f.kev,
    }
    if f.package.layer:
        props["layer"] = f.package.layer
    return {
        "ruleId": f.vulnerability_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[f.severity],
        "message": {"text": msg},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": _uri(f, report)},
                    "region": {"startLine": 1},
                },
                "message": {"text": f"{report.inventory.artifact.name}: {f.package.purl or f.package.name}"},
            }
        ],
        "partialFingerprints": {"garrisonFinding/v1": finding_fingerprint(f)},
        "properties": props,
    }


def sarif_document(report: ScanReport) -> dict[str, Any]:
    """The SARIF log as a dict."""
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    # Rule metadata comes from the most severe finding of each id (the order findings are sorted in).
    for f in sorted(report.findings, key=lambda f: (f.vulnerability_id, -int(f.severity))):
        if f.vulnerability_id not in index:
            index[f.vulnerability_id] = len(rules)
            rules.append(_rule(f))
    results = [_result(f, index[f.vulnerability_id], report) for f in report.findings]
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": tool_version(report.tool_version),
                        "semanticVersion": tool_version(report.tool_version),
                        "rules": rules,
                    }
                },
                "results": results,
                "columnKind": "utf16CodeUnits",
                "properties": {
                    "artifact": report.inventory.artifact.name,
                    "artifactDigest": report.inventory.artifact.digest,
                    "suppressedCount": len(report.suppressed),
                },
            }
        ],
    }


def render(report: ScanReport, out: IO[str]) -> None:
    json.dump(sarif_document(report), out, indent=2, ensure_ascii=False)
    out.write("\n")
