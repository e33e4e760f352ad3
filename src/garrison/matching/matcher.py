"""Match an inventory against the advisory database with full OSV range semantics.

Ranges are replayed as the OSV schema says (https://ossf.github.io/osv-schema/#evaluation) by
:mod:`garrison.vulndb.ranges`, the implementation the database build also computes its row bounds with.
Explicit ``versions`` lists match on equality. A package is affected by an ``affected[]`` entry when any
of its ranges (or its list) says so.

Per package, advisories that name each other through ``aliases`` (a GHSA and a PYSEC record for the same
CVE) are merged into one :class:`~garrison.model.Vulnerability` whose ``vulnerability_id`` is the CVE.

Cost: one batched ``db.candidates()`` per ecosystem, one ``db.advisories()`` for all matched ids,
version keys cached per (scheme, version) string. A package at or above its database row's ``bound`` (no
range can match there: see :func:`garrison.vulndb.store.row_bound`) costs one key comparison and a
substring search, without decoding the row: most packages of a maintained image.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from garrison.matching.ecosystem import Lookup, lookup_for, os_target
from garrison.model import Advisory, Inventory, MatchDetail, Package, PackageType, Severity, Vulnerability
from garrison.vulndb.ranges import BadEvent, Keys, RangeItem, Verdict, evaluate_item
from garrison.vulndb.versions import scheme_for


class _Rows(Protocol):
    """One package's affected entries in the database's raw form (:class:`garrison.vulndb.store.Candidates`)."""

    @property
    def table(self) -> Sequence[RangeItem]:
        """Distinct range lists; a string ``X`` stands for one ECOSYSTEM range "introduced 0, fixed X"."""
        ...

    @property
    def ids(self) -> Sequence[str]: ...

    @property
    def ranges(self) -> Sequence[int]: ...

    @property
    def versions(self) -> Sequence[str | Sequence[str]]: ...

    @property
    def bound(self) -> str | None:
        """A version at or above which no range matches (:func:`garrison.vulndb.store.row_bound`)."""
        ...

    def may_list(self, version: str) -> bool:
        """False when no versions list names ``version`` (True when unsure)."""
        ...


class AdvisoryDB(Protocol):
    """What the matcher needs from :class:`garrison.vulndb.store.AdvisoryDB`."""

    def candidates(self, ecosystem: str, names: Iterable[str]) -> Mapping[str, _Rows]:
        """The rows of those ``names`` that have any (absent otherwise)."""
        ...

    def advisories(self, ids: Iterable[str]) -> dict[str, Advisory]: ...

    def kev(self) -> frozenset[str]: ...

    def ecosystems(self) -> list[str]:
        """The OSV ecosystems the database holds records for (``Debian:12``…)."""
        ...


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Findings plus what could not be checked. Warnings are user-facing one-liners."""

    findings: tuple[Vulnerability, ...]
    warnings: tuple[str, ...] = ()
    #: Packages whose version (or an advisory's version for them) does not parse in the scheme.
    not_comparable: tuple[Package, ...] = ()


@dataclass(frozen=True, slots=True)
class _Hit:
    """One advisory matching one (ecosystem, name, version)."""

    advisory_id: str
    fixed: tuple[str, ...]
    matched_range: str


def _listed(versions: str | Sequence[str], version: str, vkey: Any, keys: Keys, has_ordered: bool) -> bool:
    """Whether the entry's explicit ``versions`` list names ``version``.

    OSV lists versions in the ecosystem's canonical spelling, so string equality decides; a parsed
    comparison (``2.10`` == ``2.10.0``) is only worth its cost when the entry has no ranges at all.
    ``versions`` is a list or the database's ``"\nv1\nv2\n"`` text (searched without splitting it).
    """
    if not versions:
        return False
    if isinstance(versions, str):
        if f"\n{version}\n" in versions:
            return True
        if has_ordered:
            return False
        versions = versions[1:-1].split("\n")
    elif version in versions:
        return True
    return not has_ordered and any(keys.key(v) == vkey for v in versions)


@dataclass
class _Run:
    """State of one ``match_inventory`` call: caches and collected warnings."""

    db: AdvisoryDB
    schemes: dict[str, Keys] = field(default_factory=dict)
    affected: dict[tuple[str, str], _Rows | None] = field(default_factory=dict)
    hits: dict[Lookup, list[_Hit] | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    bad_events: set[tuple[str, str]] = field(default_factory=set)

    def keys_for(self, ecosystem: str) -> Keys:
        """Version keys in the ecosystem's scheme (every ecosystem has one: unknown ones the generic)."""
        keys = self.schemes.get(ecosystem)
        if keys is None:
            keys = self.schemes[ecosystem] = Keys(scheme_for(ecosystem))
        return keys

    def prefetch(self, lookups: Iterable[Lookup]) -> None:
        """Fetch the rows of every lookup that will be evaluated, one batch per ecosystem."""
        names: dict[str, dict[str, None]] = {}
        for lk in lookups:
            if self.keys_for(lk.ecosystem).key(lk.version) is not None and (lk.ecosystem, lk.name) not in self.affected:
                names.setdefault(lk.ecosystem, {})[lk.name] = None
        for eco, wanted in names.items():
            found = self.db.candidates(eco, wanted)
            for name in wanted:
                self.affected[(eco, name)] = found.get(name)

    def hits_for(self, lk: Lookup) -> list[_Hit] | None:
        """Hits for one lookup; None when the installed version is not comparable."""
        if lk in self.hits:
            return self.hits[lk]
        keys = self.keys_for(lk.ecosystem)
        vkey = keys.key(lk.version)
        result = None if vkey is None else self._evaluate(lk, keys, vkey)
        self.hits[lk] = result
        return result

    def _rows(self, lk: Lookup) -> _Rows | None:
        ak = (lk.ecosystem, lk.name)
        if ak not in self.affected:
            self.affected[ak] = self.db.candidates(lk.ecosystem, [lk.name]).get(lk.name)
        return self.affected[ak]

    def _evaluate(self, lk: Lookup, keys: Keys, vkey: Any) -> list[_Hit]:
        rows = self._rows(lk)
        if rows is None:
            return []
        bound = rows.bound
        if bound is not None:
            # The database's shortcut (garrison.vulndb.store.row_bound): at or above the bound no range
            # matches, so only a versions list naming this exact version could.
            bkey = keys.key(bound)
            if bkey is not None and vkey >= bkey and not rows.may_list(lk.version):
                return []
        # Each distinct range list of the package is evaluated once, whatever the number of entries.
        verdicts: dict[int, Verdict | BadEvent] = {}
        found: list[_Hit] = []
        version = lk.version
        for aid, ri, versions in zip(rows.ids, rows.ranges, rows.versions, strict=True):
            verdict = verdicts.get(ri)
            if verdict is None:
                try:
                    verdict = evaluate_item(rows.table[ri], vkey, keys)
                except BadEvent as bad:
                    verdict = bad
                verdicts[ri] = verdict
            if isinstance(verdict, BadEvent):
                if (aid, verdict.value) not in self.bad_events:
                    self.bad_events.add((aid, verdict.value))
                    self.warnings.append(
                        f"{aid}: version {verdict.value!r} does not parse as {keys.scheme.name}; "
                        f"range skipped for {lk.name}"
                    )
                continue
            matched, fixed, has_ordered = verdict
            if matched:
                found.append(_Hit(aid, fixed, matched))
            elif _listed(versions, version, vkey, keys, has_ordered):
                found.append(_Hit(aid, (), "versions list"))
        return found


def _cve_of(ids: Iterable[str]) -> str:
    cves = sorted(i for i in ids if i.startswith("CVE-"))
    return cves[0] if cves else ""


_ID_PRIORITY = ("CVE-", "GHSA-", "DEBIAN-", "ALPINE-", "PYSEC-", "GO-", "RUSTSEC-")


def _primary_rank(adv: Advisory) -> tuple[int, int, str]:
    prio = next((i for i, p in enumerate(_ID_PRIORITY) if adv.id.startswith(p)), len(_ID_PRIORITY))
    return (-int(adv.severity), prio, adv.id)


def _group_by_alias(hits: list[_Hit], advisories: dict[str, Advisory]) -> list[list[_Hit]]:
    """Union hits whose advisories share an id or alias (transitively)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for h in hits:
        adv = advisories.get(h.advisory_id)
        for alias in adv.aliases if adv else ():
            parent[find(alias)] = find(h.advisory_id)
    groups: dict[str, list[_Hit]] = {}
    for h in hits:
        groups.setdefault(find(h.advisory_id), []).append(h)
    return list(groups.values())


def _template(
    lk: Lookup, scheme: str, group: list[_Hit], advisories: dict[str, Advisory], kev: frozenset[str]
) -> Vulnerability:
    """The finding for one alias group, with a placeholder package: computed once per distinct lookup
    and stamped onto every package that shares it (an image repeats packages across locations)."""
    advs = [advisories.get(h.advisory_id) or Advisory(id=h.advisory_id) for h in group]
    primary = min(advs, key=_primary_rank)
    all_ids = {a.id for a in advs} | {al for a in advs for al in a.aliases}
    vuln_id = _cve_of(all_ids) or primary.id
    fixed: list[str] = []
    for h in group:
        fixed.extend(f for f in h.fixed if f not in fixed)
    main_hit = next(h for h in group if h.advisory_id == primary.id)
    detail = MatchDetail(lk.ecosystem, lk.name, lk.version, main_hit.matched_range, scheme)
    return Vulnerability(
        package=_NO_PACKAGE,
        advisory=primary,
        vulnerability_id=vuln_id,
        severity=max((a.severity for a in advs), default=Severity.UNKNOWN),
        fixed_versions=tuple(fixed),
        kev=bool(all_ids & kev),
        match=detail,
        merged_ids=tuple(sorted({a.id for a in advs} - {primary.id})),
    )


_NO_PACKAGE = Package("", "", PackageType.DEB)


def match_inventory(inv: Inventory, db: AdvisoryDB) -> MatchResult:
    """Every finding for ``inv``. Never raises on bad versions: those packages land in ``not_comparable``."""
    run = _Run(db)
    target = os_target(inv.os)
    per_pkg: list[tuple[Package, Lookup, list[_Hit]]] = []
    not_comparable: list[Package] = []
    skipped_os = 0
    lookups = [(pkg, lookup_for(pkg, target)) for pkg in inv.packages]
    run.prefetch(lk for _, lk in lookups if lk is not None)
    for pkg, lk in lookups:
        if lk is None:
            skipped_os += pkg.type.is_os
            continue
        hits = run.hits_for(lk)
        if hits is None:
            not_comparable.append(pkg)
            run.warnings.append(f"{pkg.name} {lk.version}: version not comparable in {lk.ecosystem}")
            continue
        if hits:
            per_pkg.append((pkg, lk, hits))
    if skipped_os and target.reason:
        run.warnings.insert(0, f"{target.reason} ({skipped_os} packages)")
    has_os = any(p.type.is_os for p in inv.packages)
    if target.ecosystem and has_os and target.ecosystem not in db.ecosystems():
        # Debian 11 or Alpine 3.22 against a mirror without them: zero findings must not look clean.
        run.warnings.insert(
            0,
            f"{target.ecosystem}: the advisory database has no records for this release; OS packages were not checked",
        )
    ids = {h.advisory_id for _, _, hits in per_pkg for h in hits}
    advisories = db.advisories(ids) if ids else {}
    kev = db.kev() if ids else frozenset()
    templates: dict[Lookup, list[Vulnerability]] = {}
    findings: list[Vulnerability] = []
    for pkg, lk, hits in per_pkg:
        if lk not in templates:
            keys = run.keys_for(lk.ecosystem)
            scheme_name = keys.scheme.name if keys else ""
            templates[lk] = [_template(lk, scheme_name, g, advisories, kev) for g in _group_by_alias(hits, advisories)]
        findings.extend(replace(t, package=pkg) for t in templates[lk])
    findings.sort(key=lambda f: (f.package.name, f.package.version, -int(f.severity), f.vulnerability_id))
    return MatchResult(tuple(findings), tuple(run.warnings), tuple(not_comparable))
