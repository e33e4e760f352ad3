"""The JSON report: garrison's own, documented and versioned format.

``garrison.scan/v2`` (``garrison scan -f json``)::

    {
      "schema": "garrison.scan/v2",
      "generator": {"name": "garrison", "version": "0.1.0"},
      "generated_at": "2026-01-01T00:00:00Z",
      "scanners": ["vuln", "secret"],
      "artifact": {"name", "kind", "digest", "config_digest", "architecture", "os",
                   "layers": [{"index", "digest", "diff_id", "size", "media_type", "created_by"}], ...},
      "os": {"family", "version_id", "codename", "pretty_name", "distroless"} | null,
      "packages": [{"ref", "name", "version", "type", "purl", "source_name", "source_version", "arch",
                    "layer", "locations", "licenses", "namespace", "epoch", "from_lockfile"}],
      "findings": [{"kind", "fingerprint", "severity", "title",
                    "rule": {"id", "source", "title", "aliases", "url", "version"},
                    "subject": {"kind", "artifact", "digest", "layer", "path", "line", "package", ...},
                    "evidence": [{"label", "value"}], "first_seen", "last_seen",
                    "vulnerability": {...} (kind "vulnerability") | "secret": {...} (kind "secret")}],
      "suppressed": [{... a finding ..., "suppression": {"by", "reason", "decided_by", "expires", "origin"}}],
      "summary": {"findings": N, "by_severity": {"CRITICAL": n, ...}, "by_kind": {"vulnerability": n, ...},
                  "kev": N, "suppressed": N, "packages": N},
      "warnings": ["..."],
      "database": {"schema_version", "built_at", "sources": [{"name", "updated", "records", "url"}]} | null
    }

A vulnerability's block: ``vulnerability_id, advisory_id, merged_ids, aliases, package_ref,
package{name, version, type, purl}, severity, cvss_score, cvss_vectors, fixed_versions, kev, summary,
references, published, source, match{ecosystem, searched_name, searched_version, matched_range, scheme}``.
A secret's block: ``rule_id, category, title, severity, path, line, layer, deleted, match`` (masked).
A misconfiguration's block (``garrison.findings/v2`` of ``garrison posture``): ``control_id, title, severity,
family, object{kind, name, namespace, api_version, source, line, document, cluster, host, ref}, container,
path, actual, expected, remediation, frameworks, context`` (equivalent ids in other tools: ``rule.aliases``).
An alert's block (``garrison runtime audit -f findings``): the JSON-lines alert of
:mod:`garrison.report.alerts_jsonl` (``rule, priority, severity, count, time, first_seen, last_seen, output,
source, entities, mitre, equivalents, events``).

``garrison.inventory/v1`` (``garrison sbom -f json``) holds ``schema``, ``generator``, ``generated_at``,
``artifact``, ``os``, ``packages`` and ``warnings`` with the same shapes. Keys are only ever added
within a major schema version; a removal or change of meaning bumps it (v2: findings of every kind in
one envelope). Vulnerabilities come first, sorted by package then severity, then secrets by path and
line; packages by type, name and version, so that output is diff-able.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import IO, TYPE_CHECKING, Any

from garrison.report.common import package_refs, timestamp, tool_version, write_json

if TYPE_CHECKING:
    from garrison.model import Artifact, Inventory, OSInfo, Package
    from garrison.model.common import Finding, Subject, Suppressed
    from garrison.model.secret import Secret
    from garrison.model.vuln import Vulnerability
    from garrison.report.model import FindingsReport, ScanReport

SCAN_SCHEMA = "garrison.scan/v2"
#: The document of a report that is not an image scan (a posture assessment, a runtime evaluation).
FINDINGS_SCHEMA = "garrison.findings/v2"
INVENTORY_SCHEMA = "garrison.inventory/v1"


def _artifact(a: Artifact) -> dict[str, Any]:
    return {
        "name": a.name,
        "kind": a.kind.value,
        "digest": a.digest,
        "config_digest": a.config_digest,
        "architecture": a.architecture,
        "os": a.os,
        "repo_tags": list(a.repo_tags),
        "repo_digests": list(a.repo_digests),
        "labels": dict(sorted(a.labels.items())),
        "layers": [
            {
                "index": lyr.index,
                "digest": lyr.digest,
                "diff_id": lyr.diff_id,
                "size": lyr.size,
                "media_type": lyr.media_type,
                "created_by": lyr.created_by,
            }
            for lyr in a.layers
        ],
    }


def _os(o: OSInfo | None) -> dict[str, Any] | None:
    if o is None:
        return None
    return {
        "family": o.family,
        "version_id": o.version_id,
        "codename": o.codename,
        "pretty_name": o.pretty_name,
        "distroless": o.distroless,
    }


def sorted_packages(packages: tuple[Package, ...]) -> list[Package]:
    return sorted(packages, key=lambda p: (p.type.value, p.name, p.version, p.locations))


def _package(p: Package, ref: str) -> dict[str, Any]:
    return {
        "ref": ref,
        "name": p.name,
        "version": p.version,
        "type": p.type.value,
        "purl": p.purl,
        "source_name": p.source_name,
        "source_version": p.source_version,
        "arch": p.arch,
        "layer": p.layer,
        "locations": list(p.locations),
        "licenses": list(p.licenses),
        "namespace": p.namespace,
        "epoch": p.epoch,
        "from_lockfile": p.from_lockfile,
    }


def _vulnerability(f: Vulnerability, refs: dict[Package, str]) -> dict[str, Any]:
    adv = f.advisory
    m = f.match
    return {
        "vulnerability_id": f.vulnerability_id,
        "advisory_id": adv.id,
        "merged_ids": list(f.merged_ids),
        "aliases": list(adv.aliases),
        "package_ref": refs.get(f.package, ""),
        "package": {
            "name": f.package.name,
            "version": f.package.version,
            "type": f.package.type.value,
            "purl": f.package.purl,
        },
        "severity": f.severity.name,
        "cvss_score": adv.cvss_score,
        "cvss_vectors": list(adv.cvss_vectors),
        "fixed_versions": list(f.fixed_versions),
        "kev": f.kev,
        "summary": adv.summary,
        "references": list(adv.references),
        "published": adv.published,
        "source": adv.source,
        "match": None
        if m is None
        else {
            "ecosystem": m.ecosystem,
            "searched_name": m.searched_name,
            "searched_version": m.searched_version,
            "matched_range": m.matched_range,
            "scheme": m.scheme,
        },
    }


def _secret(s: Secret) -> dict[str, Any]:
    return {
        "rule_id": s.rule_id,
        "category": s.category,
        "title": s.title,
        "severity": s.severity.name,
        "path": s.path,
        "line": s.line,
        "layer": s.layer,
        "deleted": s.deleted,
        "match": s.masked,
    }


_SUBJECT_FIELDS: tuple[str, ...] = ()


def _subject(sub: Subject) -> dict[str, Any]:
    """The subject's set fields only (a package finding has no namespace, a secret no package)."""
    global _SUBJECT_FIELDS
    if not _SUBJECT_FIELDS:
        from dataclasses import fields

        _SUBJECT_FIELDS = tuple(fd.name for fd in fields(sub) if fd.name != "kind")
    out: dict[str, Any] = {"kind": sub.kind.value}
    for name in _SUBJECT_FIELDS:
        value = getattr(sub, name)
        if value:
            out[name] = value
    return out


def finding_document(f: Finding[Any], refs: dict[Package, str]) -> dict[str, Any]:
    """One finding of any kind: the envelope, then the kind's own block."""
    from garrison.model.secret import Secret
    from garrison.model.vuln import Vulnerability

    out: dict[str, Any] = {
        "kind": f.kind.value,
        "fingerprint": f.fingerprint,
        "severity": f.severity.name,
        "title": f.title,
        "rule": {
            "id": f.rule.id,
            "source": f.rule.source,
            "title": f.rule.title,
            "aliases": list(f.rule.aliases),
            "url": f.rule.url,
            "version": f.rule.version,
        },
        "subject": _subject(f.subject),
        "evidence": [{"label": k, "value": v} for k, v in f.evidence],
        "first_seen": f.first_seen,
        "last_seen": f.last_seen,
    }
    if isinstance(f.detail, Vulnerability):
        out["vulnerability"] = _vulnerability(f.detail, refs)
    elif isinstance(f.detail, Secret):
        out["secret"] = _secret(f.detail)
    else:
        from garrison.model.posture import Misconfiguration

        if isinstance(f.detail, Misconfiguration):
            out["misconfiguration"] = _misconfiguration(f.detail)
        else:
            from garrison.model.runtime import Alert

            if isinstance(f.detail, Alert):
                from garrison.report.alerts_jsonl import alert_line

                out["alert"] = alert_line(f.detail)
    return out


def _misconfiguration(m: Any) -> dict[str, Any]:
    """A misconfiguration's block: the control, the object (with file, line, document), the JSON path,
    the actual and expected value, the fix and the frameworks (the equivalent ids in other tools are
    the envelope's ``rule.aliases``)."""
    o = m.object
    return {
        "control_id": m.control_id,
        "title": m.title,
        "severity": m.severity.name,
        "family": m.family,
        "object": {
            "kind": o.kind,
            "name": o.name,
            "namespace": o.namespace,
            "api_version": o.api_version,
            "source": o.source,
            "line": o.line,
            "document": o.document,
            "cluster": o.cluster,
            "host": o.host,
            "ref": o.display(),
        },
        "container": m.container,
        "path": m.path,
        "actual": m.actual,
        "expected": m.expected,
        "remediation": m.remediation,
        "frameworks": list(m.frameworks),
        "context": dict(m.context),
    }


def _suppressed(s: Suppressed[Any], refs: dict[Package, str]) -> dict[str, Any]:
    out = finding_document(s.finding, refs)
    d = s.suppression
    out["suppression"] = {
        "by": d.by,
        "reason": d.reason,
        "decided_by": d.decided_by,
        "expires": d.expires,
        "origin": d.origin,
    }
    return out


def inventory_document(inv: Inventory, generated_at: str = "", version: str = "") -> dict[str, Any]:
    """The ``garrison.inventory/v1`` document as a dict."""
    pkgs = sorted_packages(inv.packages)
    refs = package_refs(pkgs)
    return {
        "schema": INVENTORY_SCHEMA,
        "generator": {"name": "garrison", "version": tool_version(version)},
        "generated_at": timestamp(generated_at),
        "artifact": _artifact(inv.artifact),
        "os": _os(inv.os),
        "packages": [_package(p, refs[p]) for p in pkgs],
        "warnings": list(inv.warnings),
    }


def scan_document(report: ScanReport) -> dict[str, Any]:
    """The ``garrison.scan/v1`` document as a dict."""
    doc = inventory_document(report.inventory, report.generated_at, report.tool_version)
    refs = package_refs(sorted_packages(report.inventory.packages))
    db = report.db
    doc["schema"] = SCAN_SCHEMA
    doc["scanners"] = list(report.scanners)
    doc["findings"] = [finding_document(f, refs) for f in report.findings]
    doc["suppressed"] = [_suppressed(s, refs) for s in report.suppressed]
    doc["summary"] = {
        "packages": len(report.inventory.packages),
        "findings": len(report.findings),
        "by_severity": {s.name: n for s, n in report.counts().items()},
        "by_kind": dict(Counter(f.kind.value for f in report.findings)),
        "kev": sum(1 for f in report.vulnerabilities if f.detail.kev),
        "suppressed": len(report.suppressed),
    }
    doc["warnings"] = list(report.all_warnings())
    doc["database"] = (
        None
        if db is None
        else {
            "schema_version": db.schema_version,
            "built_at": db.built_at,
            "sources": [{"name": s.name, "updated": s.updated, "records": s.records, "url": s.url} for s in db.sources],
        }
    )
    return doc


def _dump(doc: dict[str, Any], out: IO[str]) -> None:
    write_json(doc, out)


def findings_document(report: FindingsReport) -> dict[str, Any]:
    """The ``garrison.findings/v2`` document: the findings of any report, with its pillar's own keys."""
    return _findings_document(report, encoded=False)


class _Encoded(str):
    """A finding already written as one line of JSON (see :class:`_LineWriter`)."""

    __slots__ = ()


class _LineWriter:
    """Misconfiguration findings as the exact text ``json.dumps(finding_document(f), ensure_ascii=False)``
    writes, built from fragments cached by value: a 10,000-object assessment has ~19,000 findings
    that share a few hundred rules, objects and subjects, and building then dumping one dict per
    finding took over a second of a two-second run. Every other kind of finding takes the dict path.
    ``tests/posture/test_json_lines.py`` checks the bytes against the dict path on real reports."""

    def __init__(self) -> None:
        from json.encoder import encode_basestring

        from garrison.model.posture import Misconfiguration

        self.enc = encode_basestring  # what the C encoder uses for strings when ensure_ascii=False
        self.cache: dict[Any, Any] = {}
        self.misconfiguration = Misconfiguration

    def value(self, v: Any) -> str:
        if isinstance(v, str):
            return str(self.enc(v))
        if v is True:
            return "true"
        if v is False:
            return "false"
        if v is None:
            return "null"
        if type(v) is int:
            return int.__repr__(v)
        return json.dumps(v, ensure_ascii=False)

    def strings(self, items: tuple[str, ...]) -> str:
        return "[" + ", ".join([self.value(x) for x in items]) + "]"

    def _shared(self, f: Finding[Any], m: Any) -> tuple[str, str, str, str]:
        """What a control's findings share: the text around the fingerprint and title, the rule, the
        control's fields before ``object`` and its fields after ``actual``."""
        v = self.value
        r = f.rule
        return (
            f'{{"kind": {v(f.kind.value)}, "fingerprint": ',
            f', "severity": {v(f.severity.name)}, "title": ',
            f', "rule": {{"id": {v(r.id)}, "source": {v(r.source)}, "title": {v(r.title)}, '
            f'"aliases": {self.strings(r.aliases)}, "url": {v(r.url)}, "version": {v(r.version)}}}, "subject": ',
            f'"misconfiguration": {{"control_id": {v(m.control_id)}, "title": {v(m.title)}, '
            f'"severity": {v(m.severity.name)}, "family": {v(m.family)}, "object": ',
        )

    def _fix(self, m: Any) -> str:
        v = self.value
        return (
            f', "expected": {v(m.expected)}, "remediation": {v(m.remediation)}, '
            f'"frameworks": {self.strings(m.frameworks)}, "context": '
        )

    def _subject(self, sub: Subject) -> str:
        d = _subject(sub)
        return "{" + ", ".join([f"{self.value(k)}: {self.value(v)}" for k, v in d.items()]) + "}"

    def _object(self, o: Any) -> str:
        v = self.value
        return (
            f'{{"kind": {v(o.kind)}, "name": {v(o.name)}, "namespace": {v(o.namespace)}, '
            f'"api_version": {v(o.api_version)}, "source": {v(o.source)}, "line": {v(o.line)}, '
            f'"document": {v(o.document)}, "cluster": {v(o.cluster)}, "host": {v(o.host)}, "ref": {v(o.display())}}}'
        )

    def line(self, f: Finding[Any]) -> str:
        """The finding's JSON text without its closing ``}``, or "" for what the dict path writes (other
        kinds; a field that is not the type the model declares)."""
        m = f.detail
        if type(m) is not self.misconfiguration:
            return ""
        try:
            return self._line(f, m)
        except TypeError:  # a value that is not a str where the model says str: the dict path
            return ""

    def _line(self, f: Finding[Any], m: Any) -> str:
        e = self.enc
        cache = self.cache
        # Keyed by identity where the engine shares the object (one RuleRef per control, one ObjectRef
        # per resource): every finding stays alive in the report while the writer runs. Enum members
        # by identity too (they are singletons).
        key = (
            id(f.rule),
            id(f.kind),
            id(f.severity),
            id(m.severity),
            m.control_id,
            m.title,
            m.family,
            m.expected,
            m.remediation,
            m.frameworks,
        )
        shared = cache.get(key)
        if shared is None:
            shared = cache[key] = (*self._shared(f, m), self._fix(m), e(m.expected))
        skey = ("subject", id(f.subject))
        sub = cache.get(skey)
        if sub is None:
            sub = cache[skey] = self._subject(f.subject)
        okey = ("object", id(m.object))
        obj = cache.get(okey)
        if obj is None:
            obj = cache[okey] = self._object(m.object)
        path = e(m.path)
        actual = e(m.actual)
        ev = f.evidence
        if (  # what misconfiguration_finding writes: the texts encoded once for both places
            len(ev) == 3
            and ev[0][1] is m.path
            and ev[1][1] is m.actual
            and ev[2][1] is m.expected
            and ev[0][0] == "path"
            and ev[1][0] == "actual"
            and ev[2][0] == "expected"
        ):
            evidence = (
                f'{{"label": "path", "value": {path}}}, {{"label": "actual", "value": {actual}}}, '
                f'{{"label": "expected", "value": {shared[5]}}}'
            )
        else:
            evidence = ", ".join([f'{{"label": {e(k)}, "value": {e(x)}}}' for k, x in ev])
        pairs = ", ".join([f"{e(k)}: {e(x)}" for k, x in dict(m.context).items()]) if m.context else ""
        return (
            f"{shared[0]}{e(f.fingerprint)}{shared[1]}{e(f.title)}{shared[2]}{sub}, "
            f'"evidence": [{evidence}], "first_seen": {e(f.first_seen)}, "last_seen": {e(f.last_seen)}, '
            f'{shared[3]}{obj}, "container": {e(m.container)}, "path": {path}, "actual": {actual}'
            f"{shared[4]}{{{pairs}}}}}"
        )

    def finding(self, f: Finding[Any]) -> dict[str, Any] | _Encoded:
        text = self.line(f)
        return _Encoded(text + "}") if text else finding_document(f, {})

    def suppressed(self, s: Suppressed[Any]) -> dict[str, Any] | _Encoded:
        text = self.line(s.finding)
        if not text:
            return _suppressed(s, {})
        d = s.suppression
        v = self.value
        return _Encoded(
            f'{text}, "suppression": {{"by": {v(d.by)}, "reason": {v(d.reason)}, "decided_by": {v(d.decided_by)}, '
            f'"expires": {v(d.expires)}, "origin": {v(d.origin)}}}}}'
        )


def _findings_document(report: FindingsReport, *, encoded: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": FINDINGS_SCHEMA,
        "generator": {"name": "garrison", "version": tool_version(report.tool_version)},
        "generated_at": timestamp(report.generated_at),
        "target": {"name": report.target, "digest": report.target_digest},
    }
    doc.update(report.extra())
    if encoded:
        w = _LineWriter()
        doc["findings"] = [w.finding(f) for f in report.findings]
        doc["suppressed"] = [w.suppressed(s) for s in report.suppressed]
    else:
        doc["findings"] = [finding_document(f, {}) for f in report.findings]
        doc["suppressed"] = [_suppressed(s, {}) for s in report.suppressed]
    doc["summary"] = {
        "findings": len(report.findings),
        "by_severity": {s.name: n for s, n in report.counts().items()},
        "by_kind": dict(Counter(f.kind.value for f in report.findings)),
        "suppressed": len(report.suppressed),
    }
    doc["warnings"] = list(report.all_warnings())
    return doc


def _dump_findings(doc: dict[str, Any], out: IO[str]) -> None:
    """A findings document with one finding per line: the same JSON, written by the C encoder (a
    pretty-printed 10,000-finding posture report took seconds with ``indent``), and still diff-able."""
    out.write("{\n")
    keys = list(doc)
    for i, key in enumerate(keys):
        value = doc[key]
        out.write(f"  {json.dumps(key)}: ")
        if isinstance(value, list) and value and key in ("findings", "suppressed", "recommendations"):
            out.write("[\n")
            sep = "    "
            for item in value:  # one write per finding: no second copy of a 30 MB document in memory
                out.write(sep)
                out.write(item if isinstance(item, _Encoded) else json.dumps(item, ensure_ascii=False))
                sep = ",\n    "
            out.write("\n  ]")
        else:
            out.write(json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  "))
        out.write(",\n" if i < len(keys) - 1 else "\n")
    out.write("}\n")


def render(report: FindingsReport, out: IO[str]) -> None:
    # No ScanReport exists unless its module was imported: a posture or runtime report does not load the
    # scan model (and the inventory model behind it) just to be told it is not one.
    model = sys.modules.get("garrison.report.model")
    if model is not None and isinstance(report, model.ScanReport):
        _dump(scan_document(report), out)
    else:
        _dump_findings(_findings_document(report, encoded=True), out)


def render_inventory(inv: Inventory, out: IO[str]) -> None:
    _dump(inventory_document(inv), out)
