"""One suppression step for findings of every kind: ``--severity``, ``--ignore-unfixed``, an ignore
file, OpenVEX documents and (later) exemptions.

Nothing is dropped silently: a suppressed finding is kept aside with its :class:`~garrison.model.Suppression`
(which step, the reason, who decided, until when, where it is written), so reports show counts and the
JSON report lists them.

Ignore file (YAML)::

    ignore:
      - id: CVE-2023-4807            # the rule id, an advisory id, an alias or a merged id
        package: openssl             # optional: a package name, or a purl (without version: any version)
        expires: 2026-12-31          # optional: the rule stops applying after this day
        reason: not reachable in our use
        by: alice@example.com        # optional: who decided
      - package: pkg:pypi/django@2.2.10
        reason: legacy service, isolated
      - id: generic-password         # secrets and every other kind of finding too
        paths: ["app/tests/*"]       # optional: file globs (fnmatch) on the finding's path
      - fingerprint: 3f1c…           # one finding exactly (the JSON report's ``fingerprint``)

A rule needs at least one of ``id``/``ids``, ``package``/``packages``/``purls``, ``paths`` or
``fingerprint``; when several are given, all must match. Trivy's ``.trivyignore.yaml`` layout
(``vulnerabilities``/``secrets``/``misconfigurations``: ``[{id, purls, paths, expired_at, statement}]``)
is read too.

OpenVEX (https://github.com/openvex/spec) applies to vulnerabilities: a statement suppresses a finding
when its ``vulnerability`` (``name`` or ``aliases``; a bare string in v0.0.x) names the finding, a
product's purl (``@id`` or ``identifiers.purl``) or one of its ``subcomponents`` matches the package, and
the status is ``not_affected`` or ``fixed``. ``affected`` / ``under_investigation`` keep it. When several
statements apply, the latest (by ``timestamp``) wins, as the spec says.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.errors import InputError
from garrison.model.common import Finding, FindingKind, Severity, Suppressed, Suppression

# The vulnerability model and the ecosystem table are imported by the steps that need them (a package
# rule, --ignore-unfixed): the other pillars suppress their findings without loading them.

SUPPRESSING_STATUSES = frozenset({"not_affected", "fixed"})
KNOWN_STATUSES = SUPPRESSING_STATUSES | {"affected", "under_investigation"}


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """One entry of an ignore file."""

    #: Rule or advisory ids (any id the finding answers to).
    ids: tuple[str, ...] = ()
    #: Package names or purls.
    packages: tuple[str, ...] = ()
    #: fnmatch globs on the finding's path (``app/tests/*``).
    paths: tuple[str, ...] = ()
    #: Exact finding fingerprints.
    fingerprints: tuple[str, ...] = ()
    #: Last day the rule applies (None = no expiry).
    expires: dt.date | None = None
    reason: str = ""
    #: Who decided (the rule's ``by``).
    decided_by: str = ""
    #: The ignore file's path and the rule's number, for reports.
    origin: str = ""

    def active(self, today: dt.date) -> bool:
        """An expired rule no longer suppresses anything (the finding comes back on its own)."""
        return self.expires is None or today <= self.expires


@dataclass(frozen=True, slots=True)
class VexStatement:
    """One OpenVEX statement, reduced to what matching needs."""

    #: The vulnerability's name and aliases.
    vulnerabilities: tuple[str, ...]
    #: Product and subcomponent purls the statement is about.
    purls: tuple[str, ...]
    #: ``not_affected``, ``fixed``, ``affected`` or ``under_investigation``.
    status: str
    justification: str = ""
    #: ``impact_statement`` or ``status_notes``.
    statement: str = ""
    #: The statement's (else the document's) timestamp; the latest applicable statement wins.
    timestamp: str = ""
    #: The document's ``author``.
    author: str = ""
    #: The document's path, for reports.
    origin: str = ""


@dataclass(frozen=True, slots=True)
class SuppressOptions:
    """Everything the suppression step can be told. The CLI builds one from its flags."""

    #: Hide vulnerabilities that have no fixed version yet (other kinds are not affected).
    ignore_unfixed: bool = False
    #: Keep only these severities (``--severity HIGH,CRITICAL``); None = all.
    severities: frozenset[Severity] | None = None
    ignore_rules: tuple[IgnoreRule, ...] = ()
    vex: tuple[VexStatement, ...] = ()
    #: The day expiry is judged against (tests pin it).
    today: dt.date = field(default_factory=dt.date.today)


@dataclass(frozen=True, slots=True)
class SuppressResult:
    """The findings still open, and the ones set aside with the decision that suppressed each."""

    kept: tuple[Finding[Any], ...]
    suppressed: tuple[Suppressed[Any], ...]


# ---------------------------------------------------------------------------------------------- severity


def parse_severities(text: str) -> frozenset[Severity]:
    """``HIGH,CRITICAL`` → that set; ``HIGH+`` or ``>=HIGH`` → HIGH and above. Raises InputError."""
    t = text.strip()
    try:
        if t.startswith(">="):
            floor = Severity.parse(t[2:])
            return frozenset(s for s in Severity if s >= floor)
        if t.endswith("+"):
            floor = Severity.parse(t[:-1])
            return frozenset(s for s in Severity if s >= floor)
        return frozenset(Severity.parse(p) for p in t.split(",") if p.strip())
    except ValueError as exc:
        raise InputError(f"--severity: {exc}") from None


# ---------------------------------------------------------------------------------------------- purls


def _norm_name(ptype: str, name: str) -> str:
    """The registry's identity of a name (the ecosystem table's normalizer): ``Django`` and ``django``
    are one PyPI project, ``serde_json`` and ``serde-json`` one crate."""
    from garrison.model.ecosystem import from_purl_type

    t = from_purl_type(ptype)
    return t.ecosystem.normalize(name) if t is not None else name


def _purl_parts(purl: str) -> tuple[str, str, str, str] | None:
    """(type, namespace, name, version) of a purl, names normalized; None when it does not parse."""
    from packageurl import PackageURL  # lazy: only filters with purls need it

    try:
        p = PackageURL.from_string(purl)
    except ValueError:
        return None
    ptype = str(p.type).lower()
    return (ptype, (p.namespace or "").lower(), _norm_name(ptype, str(p.name)), str(p.version or ""))


def purl_matches(pattern: str, package_purl: str) -> bool:
    """Does ``pattern`` (a purl, optionally without version) designate ``package_purl``? Qualifiers are
    ignored: a VEX author writing ``pkg:deb/debian/openssl@3.0.11-1~deb12u2`` means every arch."""
    if not package_purl.startswith("pkg:"):
        return False
    a, b = _purl_parts(pattern), _purl_parts(package_purl)
    if a is None or b is None:
        return False
    if a[:3] != b[:3]:
        return False
    return not a[3] or a[3] == b[3]


def _package_matches(pattern: str, f: Finding[Any]) -> bool:
    from garrison.model.vuln import Vulnerability

    if pattern.startswith("pkg:"):
        return purl_matches(pattern, f.subject.package)
    names = {f.subject.package_name}
    if isinstance(f.detail, Vulnerability):
        names.add(f.detail.package.source_name)
    return pattern in names - {""}


def finding_ids(f: Finding[Any]) -> frozenset[str]:
    """Every id a user may use to name this finding: the rule id and its aliases."""
    return frozenset({f.rule.id, *f.rule.aliases})


# ---------------------------------------------------------------------------------------------- ignore file


def as_list(value: Any) -> tuple[str, ...]:
    """A YAML scalar or list as a tuple of strings (``id: X`` and ``ids: [X, Y]`` read alike)."""
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return (str(value),)


def parse_date(value: Any, where: str) -> dt.date | None:
    """An ``expires`` value (a YAML date or ``YYYY-MM-DD`` text) as a date; a bad one names ``where``."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value)
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise InputError(f"{where}: expires {text!r} is not YYYY-MM-DD") from None


def _rule_from(entry: Any, where: str) -> IgnoreRule:
    if not isinstance(entry, dict):
        raise InputError(f"{where}: each rule must be a mapping")
    ids = as_list(entry.get("id")) + as_list(entry.get("ids"))
    pkgs = as_list(entry.get("package")) + as_list(entry.get("packages")) + as_list(entry.get("purls"))
    paths = as_list(entry.get("path")) + as_list(entry.get("paths"))
    fps = as_list(entry.get("fingerprint")) + as_list(entry.get("fingerprints"))
    if not (ids or pkgs or paths or fps):
        raise InputError(f"{where}: a rule needs an id, a package, a path or a fingerprint")
    expires = parse_date(entry.get("expires", entry.get("expired_at")), where)
    reason = str(entry.get("reason") or entry.get("statement") or "")
    return IgnoreRule(ids, pkgs, paths, fps, expires, reason, str(entry.get("by") or ""), where)


#: The top-level lists an ignore file may hold: garrison's own, and Trivy's per-kind ones.
_IGNORE_KEYS = ("ignore", "vulnerabilities", "secrets", "misconfigurations")


def load_yaml(text: str, origin: str) -> Any:
    """A decision file's YAML (ignore rules, exemptions); bad YAML is an :class:`InputError` on one line."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{origin}: not valid YAML ({' '.join(str(exc).split())})") from None


def parse_ignore_rules(text: str, origin: str = "ignore file") -> tuple[IgnoreRule, ...]:
    """Parse an ignore file's YAML. Raises :class:`InputError` with the file and rule number."""
    data = load_yaml(text, origin)
    if data is None:
        return ()
    if not isinstance(data, dict):
        raise InputError(f"{origin}: expected a mapping with an 'ignore' list")
    rules: list[IgnoreRule] = []
    for key in _IGNORE_KEYS:
        entries = data.get(key, [])
        if not isinstance(entries, list):
            raise InputError(f"{origin}: '{key}' must be a list")
        rules.extend(_rule_from(e, f"{origin} {key} rule {i + 1}") for i, e in enumerate(entries))
    return tuple(rules)


def load_ignore_file(path: Path) -> tuple[IgnoreRule, ...]:
    """Read and parse an ignore file; an unreadable file is an :class:`InputError`, not a crash."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read ignore file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_ignore_rules(text, str(path))


def _rule_applies(rule: IgnoreRule, f: Finding[Any]) -> bool:
    if rule.fingerprints and f.fingerprint not in rule.fingerprints:
        return False
    if rule.ids and not (set(rule.ids) & finding_ids(f)):
        return False
    if rule.paths and not any(fnmatch.fnmatchcase(f.subject.path, g.lstrip("/")) for g in rule.paths):
        return False
    return not rule.packages or any(_package_matches(p, f) for p in rule.packages)


# ---------------------------------------------------------------------------------------------- OpenVEX


def _vex_vulns(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, dict):
        names = [raw.get("name"), raw.get("@id"), *(raw.get("aliases") or [])]
        return tuple(str(n) for n in names if n)
    return ()


def _product_purls(product: Any) -> list[str]:
    if isinstance(product, str):
        return [product]
    if not isinstance(product, dict):
        return []
    out = [str(product["@id"])] if product.get("@id") else []
    ident = product.get("identifiers") or {}
    if isinstance(ident, dict) and ident.get("purl"):
        out.append(str(ident["purl"]))
    for sub in product.get("subcomponents") or []:
        out.extend(_product_purls(sub))
    return out


def parse_openvex(text: str, origin: str = "VEX document") -> tuple[VexStatement, ...]:
    """Parse an OpenVEX JSON document. Raises :class:`InputError` on anything that is not one."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{origin}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict) or "openvex" not in str(doc.get("@context", "")):
        raise InputError(f"{origin}: not an OpenVEX document (no openvex @context)")
    statements = doc.get("statements")
    if not isinstance(statements, list):
        raise InputError(f"{origin}: 'statements' must be a list")
    doc_time = str(doc.get("timestamp") or "")
    author = str(doc.get("author") or "")
    out: list[VexStatement] = []
    for i, st in enumerate(statements):
        where = f"{origin} statement {i + 1}"
        if not isinstance(st, dict):
            raise InputError(f"{where}: must be an object")
        status = str(st.get("status") or "")
        if status not in KNOWN_STATUSES:
            raise InputError(f"{where}: unknown status {status!r}")
        vulns = _vex_vulns(st.get("vulnerability"))
        if not vulns:
            raise InputError(f"{where}: no vulnerability name")
        purls = tuple(p for prod in st.get("products") or [] for p in _product_purls(prod))
        out.append(
            VexStatement(
                vulnerabilities=vulns,
                purls=purls,
                status=status,
                justification=str(st.get("justification") or ""),
                statement=str(st.get("impact_statement") or st.get("status_notes") or ""),
                timestamp=str(st.get("timestamp") or doc_time),
                author=author,
                origin=origin,
            )
        )
    return tuple(out)


def load_openvex(path: Path) -> tuple[VexStatement, ...]:
    """Read and parse an OpenVEX document."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read VEX document {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_openvex(text, str(path))


def _vex_verdict(statements: tuple[VexStatement, ...], f: Finding[Any]) -> VexStatement | None:
    """The latest statement about this finding's vulnerability and package, if any."""
    ids = finding_ids(f)
    applicable = [
        (st.timestamp, i, st)
        for i, st in enumerate(statements)
        if set(st.vulnerabilities) & ids and any(purl_matches(p, f.subject.package) for p in st.purls)
    ]
    if not applicable:
        return None
    return max(applicable, key=lambda t: (t[0], t[1]))[2]


# ---------------------------------------------------------------------------------------------- apply


def _why(f: Finding[Any], opts: SuppressOptions) -> Suppression | None:
    """The first step that suppresses ``f``, in a fixed order: the view flags, then recorded decisions."""
    if opts.ignore_unfixed:
        from garrison.model.vuln import Vulnerability

        if isinstance(f.detail, Vulnerability) and not f.detail.fixed_versions:
            return Suppression("unfixed", "no fixed version yet", origin="--ignore-unfixed")
    if opts.severities is not None and f.severity not in opts.severities:
        return Suppression("severity", f"severity {f.severity.name} not selected", origin="--severity")
    for rule in opts.ignore_rules:
        if rule.active(opts.today) and _rule_applies(rule, f):
            return Suppression(
                "ignore-file",
                rule.reason or "ignored by rule",
                decided_by=rule.decided_by,
                expires=rule.expires.isoformat() if rule.expires else "",
                origin=rule.origin,
            )
    if opts.vex and f.kind is FindingKind.VULNERABILITY:
        st = _vex_verdict(opts.vex, f)
        if st is not None and st.status in SUPPRESSING_STATUSES:
            detail = st.justification or st.statement
            return Suppression(
                "vex",
                f"VEX {st.status}" + (f": {detail}" if detail else ""),
                decided_by=st.author,
                origin=st.origin,
            )
    return None


def suppress(findings: Iterable[Finding[Any]], opts: SuppressOptions) -> SuppressResult:
    """Split findings into kept and suppressed (with the first step that removed each)."""
    kept: list[Finding[Any]] = []
    suppressed: list[Suppressed[Any]] = []
    for f in findings:
        why = _why(f, opts)
        if why is None:
            kept.append(f)
        else:
            suppressed.append(Suppressed(f, why))
    return SuppressResult(tuple(kept), tuple(suppressed))


def build_options(
    severity: str = "",
    ignore_unfixed: bool = False,
    ignore_file: Path | None = None,
    vex: Iterable[Path] = (),
    today: dt.date | None = None,
) -> SuppressOptions:
    """SuppressOptions from what a user types (``--severity HIGH,CRITICAL --ignore-file F --vex V…``).
    Raises :class:`InputError` for a bad severity, ignore file or VEX document."""
    return SuppressOptions(
        ignore_unfixed=ignore_unfixed,
        severities=parse_severities(severity) if severity.strip() else None,
        ignore_rules=load_ignore_file(ignore_file) if ignore_file is not None else (),
        vex=tuple(st for path in vex for st in load_openvex(path)),
        today=today or dt.date.today(),
    )
