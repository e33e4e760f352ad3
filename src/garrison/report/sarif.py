"""SARIF 2.1.0 (https://docs.oasis-open.org/sarif/sarif/v2.1.0/): one rule per rule id (a vulnerability
id, a secret rule…), one result per finding of any kind. Valid against the OASIS schema vendored in
``schemas/`` (checked in tests), and shaped for GitHub code scanning: ``security-severity`` on rules, a
relative artifact URI (the file that declared the package, the file that holds the secret, with its
line) on every result and ``partialFingerprints`` (the finding's fingerprint) so that alerts survive
re-scans.
"""

from __future__ import annotations

from typing import IO, Any

from garrison.model.common import Finding, Severity
from garrison.model.posture import Misconfiguration
from garrison.model.secret import Secret
from garrison.model.vuln import Vulnerability
from garrison.report.common import TOOL_NAME, tool_version, write_json
from garrison.report.model import FindingsReport

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


def _score(f: Vulnerability) -> float:
    return f.advisory.cvss_score if f.advisory.cvss_score is not None else _DEFAULT_SCORE[f.severity]


def _help_url(f: Vulnerability) -> str:
    vid = f.vulnerability_id
    if vid.startswith("CVE-") and f.advisory.source.startswith("Debian"):
        return f"https://security-tracker.debian.org/tracker/{vid}"
    return f"https://osv.dev/vulnerability/{f.advisory.id}"


def _vuln_rule(f: Vulnerability) -> dict[str, Any]:
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


def _uri(f: Finding[Any], report: FindingsReport) -> str:
    return f.subject.path.lstrip("/") or report.target or "unknown"


def _secret_rule(s: Secret) -> dict[str, Any]:
    text = f"{s.title} ({s.category}). Severity: {s.severity.name}. Rotate the credential and remove it from the image."
    return {
        "id": s.rule_id,
        "name": "Secret" + "".join(c for c in s.rule_id.title() if c.isalnum()),
        "shortDescription": {"text": s.title[:1000]},
        "fullDescription": {"text": text},
        "help": {"text": text, "markdown": f"**{s.title}** ({s.category})\n\n{text}"},
        "defaultConfiguration": {"level": _LEVEL[s.severity]},
        "properties": {
            "security-severity": f"{_DEFAULT_SCORE[s.severity]:.1f}",
            "tags": ["secret", "security", s.severity.name],
            "precision": "high",
        },
    }


def _misconfiguration_rule(m: Misconfiguration) -> dict[str, Any]:
    refs = ", ".join(m.frameworks)
    also = ", ".join(m.equivalents)
    text = f"{m.title}. Fix: {m.remediation} Expected: {m.expected}." + (f" Frameworks: {refs}." if refs else "")
    markdown = (
        f"**{m.control_id}** {m.title}\n\n**Fix:** {m.remediation}\n\n**Expected:** {m.expected}"
        + (f"\n\n**Frameworks:** {refs}" if refs else "")
        + (f"\n\n**Same check in other tools:** {also}" if also else "")
    )
    return {
        "id": m.control_id,
        "name": "Posture" + "".join(c for c in m.control_id.title() if c.isalnum()),
        "shortDescription": {"text": m.title[:1000]},
        "fullDescription": {"text": text[:4000]},
        "help": {"text": text, "markdown": markdown},
        "defaultConfiguration": {"level": _LEVEL[m.severity]},
        "properties": {
            "security-severity": f"{_DEFAULT_SCORE[m.severity]:.1f}",
            "tags": ["misconfiguration", "security", m.family, m.severity.name, *m.frameworks],
            "precision": "very-high",
        },
    }


def _rule(f: Finding[Any]) -> dict[str, Any]:
    if isinstance(f.detail, Vulnerability):
        return _vuln_rule(f.detail)
    if isinstance(f.detail, Secret):
        return _secret_rule(f.detail)
    if isinstance(f.detail, Misconfiguration):
        return _misconfiguration_rule(f.detail)
    return {
        "id": f.rule.id,
        "shortDescription": {"text": (f.rule.title or f.rule.id)[:1000]},
        "defaultConfiguration": {"level": _LEVEL[f.severity]},
        "properties": {"security-severity": f"{_DEFAULT_SCORE[f.severity]:.1f}", "tags": [f.kind.value]},
    }


def _message(f: Finding[Any], artifact: str) -> tuple[str, dict[str, Any]]:
    """The result's text and properties for its kind."""
    d = f.detail
    if isinstance(d, Vulnerability):
        fixed = ", ".join(d.fixed_versions) or "no fix yet"
        msg = (
            f"{d.package.name} {d.package.version} is affected by {d.vulnerability_id} "
            f"({d.severity.name}); fixed in: {fixed}. Artifact: {artifact}"
        )
        props: dict[str, Any] = {
            "package": d.package.name,
            "installedVersion": d.package.version,
            "fixedVersions": list(d.fixed_versions),
            "purl": d.package.purl,
            "kev": d.kev,
        }
    elif isinstance(d, Secret):
        where = " (deleted by an upper layer, still in the image)" if d.deleted else ""
        msg = f"{d.title} in {d.path}:{d.line}{where}: {d.masked}. Artifact: {artifact}"
        props = {"category": d.category, "match": d.masked, "deleted": d.deleted}
    elif isinstance(d, Misconfiguration):
        where = d.object.display() + (f" container {d.container}" if d.container else "")
        msg = f"{where}: {d.title}. {d.path} is {d.actual}, expected {d.expected}. Fix: {d.remediation}"
        props = {"path": d.path, "actual": d.actual, "expected": d.expected, "object": d.object.display()}
        if d.container:
            props["container"] = d.container
    else:
        msg, props = f"{f.title}. Artifact: {artifact}", {}
    if f.subject.layer:
        props["layer"] = f.subject.layer
    return msg, props


def _result(f: Finding[Any], rule_index: int, report: FindingsReport) -> dict[str, Any]:
    artifact = report.target
    msg, props = _message(f, artifact)
    return {
        "ruleId": f.rule.id,
        "ruleIndex": rule_index,
        "level": _LEVEL[f.severity],
        "message": {"text": msg},
        "locations": [_location(f, report, artifact)],
        "partialFingerprints": {"garrisonFinding/v2": f.fingerprint},
        "properties": props,
    }


def _location(f: Finding[Any], report: FindingsReport, artifact: str) -> dict[str, Any]:
    """Where a result is: the file and line; for a posture finding the file with the object's line, and the
    object as a logical location (``Kind/namespace/name``, ``Kind/name`` when cluster-scoped)."""
    m = f.detail
    line = m.object.line if isinstance(m, Misconfiguration) else f.subject.line
    where: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": {"uri": _uri(f, report)},
            "region": {"startLine": max(1, line)},
        }
    }
    if isinstance(m, Misconfiguration):
        o = m.object
        where["logicalLocations"] = [{"fullyQualifiedName": o.display(), "name": o.name or o.kind, "kind": "resource"}]
        where["message"] = {"text": f"{o.display()}: {m.path}"}
    else:
        where["message"] = {"text": f"{artifact}: {f.subject.package or f.subject.path}"}
    return where


def sarif_document(report: FindingsReport) -> dict[str, Any]:
    """The SARIF log as a dict."""
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    # Rule metadata comes from the most severe finding of each id (the order findings are sorted in).
    for f in sorted(report.findings, key=lambda f: (f.rule.id, -int(f.severity))):
        if f.rule.id not in index:
            index[f.rule.id] = len(rules)
            rules.append(_rule(f))
    results = [_result(f, index[f.rule.id], report) for f in report.findings]
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
                    "artifact": report.target,
                    "artifactDigest": report.target_digest,
                    "suppressedCount": len(report.suppressed),
                },
            }
        ],
    }


def render(report: FindingsReport, out: IO[str]) -> None:
    write_json(sarif_document(report), out)
