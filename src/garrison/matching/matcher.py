"""Match an inventory against the advisory database with full OSV range semantics.

The algorithm follows the OSV schema (https://ossf.github.io/osv-schema/#evaluation): for each
``ECOSYSTEM``/``SEMVER`` range the events are sorted by version and replayed; ``introduced`` opens an
affected interval, ``fixed`` closes it at that version, ``last_affected`` closes it just after, ``limit``
caps the whole range. ``GIT`` ranges are ignored (we never know the commit). Explicit ``versions`` lists
match on equality. A package is affected by an ``affected[]`` entry when any of its ranges (or its list)
says so.

Per package, advisories that name each other through ``aliases`` (a GHSA and a PYSEC record for the same
CVE) are merged into one :class:`~garrison.model.Vulnerability` whose ``vulnerability_id`` is the CVE.

Cost: one ``db.affected()`` per distinct (ecosystem, name), one ``db.advisories()`` for all matched ids,
version keys cached per (scheme, version) string. A package at or above its database row's ``bound`` (no
range can match there: see :func:`garrison.vulndb.store.row_bound`) costs one key comparison and a
substring search, without decoding the row: most packages of a maintained image.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from garrison.matching.ecosystem import Lookup, lookup_for, os_target
from garrison.model import Advisory, Inventory, MatchDetail, Package, PackageType, Severity, Vulnerability
from garrison.model.vuln import Affected
from garrison.vulndb.versions import InvalidVersion, scheme_for

#: The range types we evaluate; GIT ranges need a commit graph we do not have.
_ORDERED_RANGE_TYPES = frozenset({"ECOSYSTEM", "SEMVER"})
#: Event order at equal versions: open the interval before closing it.
_EVENT_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 2, "limit": 3}


class VersionScheme(Protocol):
    """What the matcher needs from :mod:`garrison.vulndb.versions`."""

    name: str

    def key(self, version: str) -> Any:
        """A totally ordered sort key; raises ``InvalidVersion`` (a ``ValueError``) on junk."""
        ...


class AdvisoryDB(Protocol):
    """What the matcher needs from :class:`garrison.vulndb.store.AdvisoryDB`."""

    def affected(self, ecosystem: str, name: str) -> list[Affected]: ...

    def advisories(self, ids: Iterable[str]) -> dict[str, Advisory]: ...

    def kev(self) -> frozenset[str]: ...


SchemeResolver = Callable[[str], VersionScheme]


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


def _default_resolver(ecosystem: str) -> VersionScheme:
    scheme: VersionScheme = scheme_for(ecosystem)
    return scheme


def _is_default(ecosystem: str, scheme: VersionScheme) -> bool:
    try:
        return scheme is scheme_for(ecosystem)
    except (KeyError, ValueError, LookupError):
        return False


def _invalid_version_errors() -> tuple[type[Exception], ...]:
    # InvalidVersion is a ValueError; any other ValueError from a scheme is treated the same way.
    return (InvalidVersion, ValueError)


class _Keys:
    """Version-key cache for one scheme: the same strings recur across thousands of ranges."""

    def __init__(self, scheme: VersionScheme, errors: tuple[type[Exception], ...], default: bool = False) -> None:
        self.scheme = scheme
        self._errors = errors
        self._cache: dict[str, Hashable | None] = {}
        #: Whether ``scheme`` is the ecosystem's default one, which the database's row bounds were
        #: computed with (another resolver's ordering may differ, so its matching never uses them).
        self.default = default

    def key(self, version: str) -> Any:
        """The key, or None when the version does not parse."""
        try:
            return self._cache[version]
        except KeyError:
            pass
        try:
            k = self.scheme.key(version)
        except self._errors:
            k = None
        self._cache[version] = k
        return k


class _BadEvent(Exception):
    """An advisory event whose version does not parse: the range cannot be decided."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


#: A range as the matcher reads it: ``(type, ((kind, value), …))`` or the database's ``[type, [[kind,
#: value]…]]``; ranges are evaluated on these raw forms and only hits become model objects.
RawRange = Sequence[Any]


def _range_text(events: Sequence[Sequence[str]]) -> str:
    return ", ".join(f"{kind} {value}" for kind, value in events)


def _evaluate_range(events: Sequence[Sequence[str]], vkey: Any, keys: _Keys) -> tuple[bool, tuple[str, ...]]:
    """OSV evaluation of one ordered range's events: (affected, fixed versions above ``vkey``)."""
    if len(events) == 2:
        (k0, v0), (k1, v1) = events
        if k0 == "introduced" and v0 == "0" and k1 == "fixed":
            # The shape of nearly every distribution record: one key and one comparison, no sorting.
            fk = keys.key(v1)
            if fk is None:
                raise _BadEvent(v1)
            return (True, (v1,)) if vkey < fk else (False, ())
    evs: list[tuple[Any, int, str, str]] = []
    limits: list[Any] = []
    for kind, value in events:
        if kind not in _EVENT_ORDER:
            continue
        if kind == "introduced" and value == "0":
            evs.append((None, 0, kind, value))
            continue
        k = keys.key(value)
        if k is None:
            raise _BadEvent(value)
        if kind == "limit":
            limits.append(k)
        else:
            evs.append((k, _EVENT_ORDER[kind], kind, value))
    # "introduced: 0" sorts before everything.
    evs.sort(key=lambda e: (0,) if e[0] is None else (1, e[0], e[1]))
    affected = False
    for k, _, kind, _value in evs:
        if kind == "introduced":
            if k is None or vkey >= k:
                affected = True
        elif kind == "fixed":
            if vkey >= k:
                affected = False
        elif kind == "last_affected" and vkey > k:
            affected = False
    if affected and limits and not any(vkey < lim for lim in limits):
        affected = False
    if not affected:
        return False, ()
    fixed = tuple(v for k, _, kind, v in evs if kind == "fixed" and k > vkey)
    return True, fixed


#: What one entry's range list says about one version: (matched range text or "" when none matched,
#: sorted fixed versions, whether the list has an ordered range at all).
_RangesVerdict = tuple[str, tuple[str, ...], bool]


def _evaluate_ranges(ranges: Sequence[RawRange], vkey: Any, keys: _Keys) -> _RangesVerdict:
    """All ordered ranges of one ``affected[]`` entry, in order (raises ``_BadEvent`` like the first
    undecidable range does)."""
    matched: list[str] = []
    fixed: list[str] = []
    has_ordered = False
    for rtype, events in ranges:
        if rtype.upper() not in _ORDERED_RANGE_TYPES:
            continue
        has_ordered = True
        hit, fx = _evaluate_range(events, vkey, keys)
        if hit:
            matched.append(_range_text(events))
            fixed.extend(f for f in fx if f not in fixed)
    if matched:
        fixed.sort(key=keys.key)
    return "; ".join(matched), tuple(fixed), has_ordered


def _fixed_only(fixed: str, vkey: Any, keys: _Keys) -> _RangesVerdict:
    """:func:`_evaluate_ranges` of the one range ``introduced 0, fixed <fixed>`` (the database's shorthand)."""
    fk = keys.key(fixed)
    if fk is None:
        raise _BadEvent(fixed)
    return (f"introduced 0, fixed {fixed}", (fixed,), True) if vkey < fk else ("", (), True)


def _listed(versions: str | Sequence[str], version: str, vkey: Any, keys: _Keys, has_ordered: bool) -> bool:
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


def match_affected(entry: Affected, version: str, vkey: Any, keys: _Keys) -> _Hit | None:
    """Whether one OSV ``affected[]`` entry covers ``version`` (with its parsed key ``vkey``).

    Ranges are tried first because they also give the fixed versions; the explicit ``versions`` list
    (often an enumeration of the same ranges) decides alone only when no range matches.
    """
    ranges = [(r.type, [(e.kind, e.value) for e in r.events]) for r in entry.ranges]
    matched, fixed, has_ordered = _evaluate_ranges(ranges, vkey, keys)
    if matched:
        return _Hit(entry.advisory_id, fixed, matched)
    if _listed(entry.versions, version, vkey, keys, has_ordered):
        return _Hit(entry.advisory_id, (), "versions list")
    return None


class _Rows(Protocol):
    """One package's affected entries in the database's raw form (:class:`garrison.vulndb.store.Candidates`)."""

    @property
    def table(self) -> Sequence[Sequence[RawRange] | str]:
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


@dataclass(frozen=True, slots=True)
class _AffectedRows:
    """:class:`_Rows` built from :class:`Affected` objects (a database without ``candidates``)."""

    table: list[list[tuple[str, list[tuple[str, str]]]]]
    ids: list[str]
    ranges: list[int]
    versions: list[tuple[str, ...]]
    bound: None = None

    def may_list(self, version: str) -> bool:
        return True

    @classmethod
    def of(cls, entries: Iterable[Affected]) -> _AffectedRows:
        table: list[list[tuple[str, list[tuple[str, str]]]]] = []
        ids: list[str] = []
        ranges: list[int] = []
        versions: list[tuple[str, ...]] = []
        for e in entries:
            ids.append(e.advisory_id)
            ranges.append(len(table))
            table.append([(r.type, [(ev.kind, ev.value) for ev in r.events]) for r in e.ranges])
            versions.append(e.versions)
        return cls(table, ids, ranges, versions)


@dataclass
class _Run:
    """State of one ``match_inventory`` call: caches and collected warnings."""

    db: AdvisoryDB
    resolver: SchemeResolver
    errors: tuple[type[Exception], ...]
    schemes: dict[str, _Keys | None] = field(default_factory=dict)
    affected: dict[tuple[str, str], _Rows | None] = field(default_factory=dict)
    hits: dict[Lookup, list[_Hit] | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    bad_events: set[tuple[str, str]] = field(default_factory=set)

    def keys_for(self, ecosystem: str) -> _Keys | None:
        if ecosystem not in self.schemes:
            try:
                scheme = self.resolver(ecosystem)
                self.schemes[ecosystem] = _Keys(scheme, self.errors, _is_default(ecosystem, scheme))
            except (KeyError, ValueError, LookupError) as exc:
                self.warnings.append(f"{ecosystem}: no version scheme ({exc}); packages not checked")
                self.schemes[ecosystem] = None
        return self.schemes[ecosystem]

    def prefetch(self, lookups: Iterable[Lookup]) -> None:
        """Fetch the rows of every lookup that will be evaluated, one batch per ecosystem."""
        batch = getattr(self.db, "candidates", None)
        if not callable(batch):
            return
        names: dict[str, dict[str, None]] = {}
        for lk in lookups:
            keys = self.keys_for(lk.ecosystem)
            if keys is not None and keys.key(lk.version) is not None and (lk.ecosystem, lk.name) not in self.affected:
                names.setdefault(lk.ecosystem, {})[lk.name] = None
        for eco, wanted in names.items():
            found = batch(eco, wanted)
            for name in wanted:
                self.affected[(eco, name)] = found.get(name)

    def hits_for(self, lk: Lookup) -> list[_Hit] | None:
        """Hits for one lookup; None when the installed version is not comparable."""
        if lk in self.hits:
            return self.hits[lk]
        keys = self.keys_for(lk.ecosystem)
        result: list[_Hit] | None = None
        if keys is not None:
            vkey = keys.key(lk.version)
            if vkey is not None:
                result = self._evaluate(lk, keys, vkey)
        self.hits[lk] = result
        return result

    def _rows(self, lk: Lookup) -> _Rows | None:
        ak = (lk.ecosystem, lk.name)
        if ak not in self.affected:
            entries = self.db.affected(lk.ecosystem, lk.name)
            self.affected[ak] = _AffectedRows.of(entries) if entries else None
        return self.affected[ak]

    def _evaluate(self, lk: Lookup, keys: _Keys, vkey: Any) -> list[_Hit]:
        rows = self._rows(lk)
        if rows is None:
            return []
        bound = rows.bound
        if bound is not None and keys.default:
            # The database's shortcut (garrison.vulndb.store.row_bound): at or above the bound no range
            # matches, so only a versions list naming this exact version could.
            bkey = keys.key(bound)
            if bkey is not None and vkey >= bkey and not rows.may_list(lk.version):
                return []
        # Each distinct range list of the package is evaluated once, whatever the number of entries.
        verdicts: dict[int, _RangesVerdict | _BadEvent] = {}
        found: list[_Hit] = []
        version = lk.version
        for aid, ri, versions in zip(rows.ids, rows.ranges, rows.versions, strict=True):
            verdict = verdicts.get(ri)
            if verdict is None:
                item = rows.table[ri]
                try:
                    if isinstance(item, str):
                        verdict = _fixed_only(item, vkey, keys)
                    else:
                        verdict = _evaluate_ranges(item, vkey, keys)
                except _BadEvent as bad:
                    verdict = bad
                verdicts[ri] = verdict
            if isinstance(verdict, _BadEvent):
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


def match_inventory(inv: Inventory, db: AdvisoryDB, resolver: SchemeResolver | None = None) -> MatchResult:
    """Every finding for ``inv``. Never raises on bad versions: those packages land in ``not_comparable``.

    ``resolver`` maps an ecosystem to its version scheme (default:
    :func:`garrison.vulndb.versions.scheme_for`); tests may pass another.
    """
    run = _Run(db, resolver or _default_resolver, _invalid_version_errors())
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
            if run.schemes.get(lk.ecosystem) is not None:
                not_comparable.append(pkg)
                run.warnings.append(f"{pkg.name} {lk.version}: version not comparable in {lk.ecosystem}")
            continue
        if hits:
            per_pkg.append((pkg, lk, hits))
    if skipped_os and target.reason:
        run.warnings.insert(0, f"{target.reason} ({skipped_os} packages)")
    known = getattr(db, "ecosystems", None)
    has_os = any(p.type.is_os for p in inv.packages)
    if target.ecosystem and callable(known) and has_os and target.ecosystem not in known():
        # Debian 11 or Alpine 3.22 against a mirror without them: zero findings must not look clean.
        run.warnings.insert(
            0,
            f"{target.ecosystem}: the advisory database has no records for this release; "
            "OS packages were not checked",
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
            templates[lk] = [
                _template(lk, scheme_name, g, advisories, kev) for g in _group_by_alias(hits, advisories)
            ]
        findings.extend(replace(t, package=pkg) for t in templates[lk])
    findings.sort(key=lambda f: (f.package.name, f.package.version, -int(f.severity), f.vulnerability_id))
    return MatchResult(tuple(findings), tuple(run.warnings), tuple(not_comparable))
