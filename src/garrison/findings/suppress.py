"""Post-match filters: ``--ignore-unfixed``, ``--severity``, an ignore file and OpenVEX documents.

Filters never drop a finding silently: suppressed findings are kept aside with the reason, so reports
can show counts (and the JSON report lists them).

Ignore file (YAML)::

    ignore:
      - id: CVE-2023-4807            # matches the vulnerability id, the advisory id, aliases, merged ids
        package: openssl             # optional: a package name, or a purl (without version: any version)
        expires: 2026-12-31          # optional: the rule stops applying after this day
        reason: not reachable in our use
      - package: pkg:pypi/django@2.2.10
        reason: legacy service, isolated

A rule needs an ``id`` (or ``ids``) or a ``package`` (or ``packages``); when both are given, both must
match. Trivy's ``.trivyignore.yaml`` layout (``vulnerabilities: [{id, purls, expired_at, statement}]``)
is read too.

OpenVEX (https://github.com/openvex/spec): a statement suppresses a finding when its
``vulnerability`` (``name`` or ``aliases``; a bare string in v0.0.x) names the finding, a product's purl
(``@id`` or ``identifiers.purl``) or one of its ``subcomponents`` matches the package, and the status is
``not_affected`` or ``fixed``. ``affected`` / ``under_investigation`` keep it. When several statements
apply, the latest (by ``timestamp``) wins, as the spec says.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.errors import InputError
from garrison.model import Finding, Package, Severity

SUPPRESSING_STATUSES = frozenset({"not_affected", "fixed"})
KNOWN_STATUSES = SUPPRESSING_STATUSES | {"affected", "under_investigation"}


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A finding that a filter removed, and why."""

    finding: Finding
    #: Which filter: ``unfixed``, ``severity``, ``ignore-file`` or ``vex``.
    filter: str
    reason: str


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """One entry of an ignore file."""

    ids: tuple[str, ...] = ()
    #: Package names or purls.
    packages: tuple[str, ...] = ()
    expires: dt.date | None = None
    reason: str = ""

    def active(self, today: dt.date) -> bool:
        return self.expires is None or today <= self.expires


@dataclass(frozen=True, slots=True)
class VexStatement:
    """One OpenVEX statement, reduced to what matching needs."""

    vulnerabilities: tuple[str, ...]
    #: Product and subcomponent purls the statement is about.
    purls: tuple[str, ...]
    status: str
    justification: str = ""
    statement: str = ""
    timestamp: str = ""


@dataclass(frozen=True, slots=True)
class FilterOptions:
    """Everything the filters can be told. The CLI builds one from its flags."""

    ignore_unfixed: bool = False
    #: Keep only these severities (``--severity HIGH,CRITICAL``); None = all.
    severities: frozenset[Severity] | None = None
    ignore_rules: tuple[IgnoreRule, ...] = ()
    vex: tuple[VexStatement, ...] = ()
    #: The day expiry is judged against (tests pin it).
    today: dt.date = field(default_factory=dt.date.today)


@dataclass(frozen=True, slots=True)
class FilterResult:
    kept: tuple[Finding, ...]
    suppressed: tuple[Suppressed, ...]


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


def should_fail(findings: Iterable[Finding], threshold: Severity) -> bool:
    """True when any (kept) finding is at or above ``threshold``: the ``--exit-code`` decision."""
    return any(f.severity >= threshold for f in findings)


# ---------------------------------------------------------------------------------------------- purls


def _norm_name(ptype: str, name: str) -> str:
    if ptype == "pypi":
        return name.lower().replace("_", "-").replace(".", "-")
    if ptype in ("npm", "deb", "apk", "gem", "cargo"):
        return name.lower()
    return name


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
    if not package_purl:
        return False
    a, b = _purl_parts(pattern), _purl_parts(package_purl)
    if a is None or b is None:
        return False
    if a[:3] != b[:3]:
        return False
    return not a[3] or a[3] == b[3]


def _package_matches(pattern: str, pkg: Package) -> bool:
    if pattern.startswith("pkg:"):
        return purl_matches(pattern, pkg.purl)
    return pattern in (pkg.name, pkg.source_name)


def finding_ids(f: Finding) -> frozenset[str]:
    """Every id a user may use to name this finding."""
    return frozenset({f.vulnerability_id, f.advisory.id, *f.advisory.aliases, *f.merged_ids})


# ---------------------------------------------------------------------------------------------- ignore file


def _as_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return (str(value),)


def _parse_date(value: Any, where: str) -> dt.date | None:
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
    ids = _as_list(entry.get("id")) + _as_list(entry.get("ids"))
    pkgs = _as_list(entry.get("package")) + _as_list(entry.get("packages")) + _as_list(entry.get("purls"))
    if not ids and not pkgs:
        raise InputError(f"{where}: a rule needs an id or a package")
    expires = _parse_date(entry.get("expires", entry.get("expired_at")), where)
    reason = str(entry.get("reason") or entry.get("statement") or "")
    return IgnoreRule(ids, pkgs, expires, reason)


def parse_ignore_rules(text: str, origin: str = "ignore file") -> tuple[IgnoreRule, ...]:
    """Parse an ignore file's YAML. Raises :class:`InputError` with the file and rule number."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{origin}: not valid YAML ({exc})") from None
    if data is None:
        return ()
    if not isinstance(data, dict):
        raise InputError(f"{origin}: expected a mapping with an 'ignore' list")
    entries = data.get("ignore", data.get("vulnerabilities", []))
    if not isinstance(entries, list):
        raise InputError(f"{origin}: 'ignore' must be a list")
    return tuple(_rule_from(e, f"{origin} rule {i + 1}") for i, e in enumerate(entries))


def load_ignore_file(path: Path) -> tuple[IgnoreRule, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read ignore file {path}: {exc.strerror}") from None
    return parse_ignore_rules(text, str(path))


def _rule_applies(rule: IgnoreRule, f: Finding) -> bool:
    if rule.ids and not (set(rule.ids) & finding_ids(f)):
        return False
    return not rule.packages or any(_package_matches(p, f.package) for p in rule.packages)


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
            )
        )
    return tuple(out)


def load_openvex(path: Path) -> tuple[VexStatement, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read VEX document {path}: {exc.strerror}") from None
    return parse_openvex(text, str(path))


def _vex_verdict(statements: tuple[VexStatement, ...], f: Finding) -> VexStatement | None:
    """The latest statement about this finding's vulnerability and package, if any."""
    ids = finding_ids(f)
    applicable = [
        (st.timestamp, i, st)
        for i, st in enumerate(statements)
        if set(st.vulnerabilities) & ids and any(purl_matches(p, f.package.purl) for p in st.purls)
    ]
    if not applicable:
        return None
    return max(applicable, key=lambda t: (t[0], t[1]))[2]


# ---------------------------------------------------------------------------------------------- apply


def _why(f: Finding, opts: FilterOptions) -> tuple[str, str] | None:
    if opts.ignore_unfixed and not f.fixed_versions:
        return ("unfixed", "no fixed version yet")
    if opts.severities is not None and f.severity not in opts.severities:
        return ("severity", f"severity {f.severity.name} not selected")
    for rule in opts.ignore_rules:
        if rule.active(opts.today) and _rule_applies(rule, f):
            return ("ignore-file", rule.reason or "ignored by rule")
    if opts.vex:
        st = _vex_verdict(opts.vex, f)
        if st is not None and st.status in SUPPRESSING_STATUSES:
            detail = st.justification or st.statement
            return ("vex", f"VEX {st.status}" + (f": {detail}" if detail else ""))
    return None


def apply_filters(findings: Iterable[Finding], opts: FilterOptions) -> FilterResult:
    """Split findings into kept and suppressed (with the first filter that removed each)."""
    kept: list[Finding] = []
    suppressed: list[Suppressed] = []
    for f in findings:
        why = _why(f, opts)
        if why is None:
            kept.append(f)
        else:
            suppressed.append(Suppressed(f, why[0], why[1]))
    return FilterResult(tuple(kept), tuple(suppressed))


def build_options(
    severity: str = "",
    ignore_unfixed: bool = False,
    ignore_file: Path | None = None,
    vex: Iterable[Path] = (),
    today: dt.date | None = None,
) -> FilterOptions:
    """FilterOptions from what a user types (``--severity HIGH,CRITICAL --ignore-file F --vex V…``).
    Raises :class:`InputError` for a bad severity, ignore file or VEX document."""
    return FilterOptions(
        ignore_unfixed=ignore_unfixed,
        severities=parse_severities(severity) if severity.strip() else None,
        ignore_rules=load_ignore_file(ignore_file) if ignore_file is not None else (),
        vex=tuple(st for path in vex for st in load_openvex(path)),
        today=today or dt.date.today(),
    )
