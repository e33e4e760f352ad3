"""OSV range replay, the one implementation: the matcher evaluates installed versions with it, and the
database build computes each row's ``bound`` with it (:func:`garrison.vulndb.store.row_bound`), so the
shortcut and the full evaluation cannot disagree.

The algorithm follows the OSV schema (https://ossf.github.io/osv-schema/#evaluation): for each
``ECOSYSTEM``/``SEMVER`` range the events are sorted by version and replayed; ``introduced`` opens an
affected interval, ``fixed`` closes it at that version, ``last_affected`` closes it just after, ``limit``
caps the whole range. ``GIT`` ranges are ignored (we never know the commit).

Ranges are evaluated in the raw form the database stores (``[type, [[kind, value]…]]``, or the string
``X`` for the one ECOSYSTEM range "introduced 0, fixed X"): only hits become model objects.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from garrison.vulndb.versions import VersionScheme

#: The range types we evaluate; GIT ranges need a commit graph we do not have.
ORDERED_RANGE_TYPES = frozenset({"ECOSYSTEM", "SEMVER"})
#: Event order at equal versions: open the interval before closing it.
EVENT_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 2, "limit": 3}

#: One range: ``(type, ((kind, value), …))``.
RawRange = Sequence[Any]
#: What the database stores per distinct range list: the list, or ``X`` for "introduced 0, fixed X".
RangeItem = Sequence[RawRange] | str
#: What one entry's range list says about one version: (matched range text or "" when none matched,
#: sorted fixed versions above the version, whether the list has an ordered range at all).
Verdict = tuple[str, tuple[str, ...], bool]


_UNAFFECTED: Verdict = ("", (), True)


class Keys:
    """Version keys of one scheme, cached per version string (the same strings recur across thousands of
    ranges); :meth:`key` is None for a version that does not parse."""

    __slots__ = ("_cache", "scheme")

    def __init__(self, scheme: VersionScheme, cache: dict[str, Any] | None = None) -> None:
        self.scheme = scheme
        self._cache: dict[str, Hashable | None] = {} if cache is None else cache

    def key(self, version: str) -> Any:
        try:
            return self._cache[version]
        except KeyError:
            pass
        try:
            k = self.scheme.key(version)
        except ValueError:  # InvalidVersion, or any other ValueError of a scheme
            k = None
        self._cache[version] = k
        return k


class BadEvent(Exception):
    """An advisory event whose version does not parse: the range cannot be decided."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


def range_text(events: Sequence[Sequence[str]]) -> str:
    return ", ".join(f"{kind} {value}" for kind, value in events)


def evaluate_range(events: Sequence[Sequence[str]], vkey: Any, keys: Keys) -> tuple[bool, tuple[str, ...]]:
    """OSV evaluation of one ordered range's events: (affected, fixed versions above ``vkey``)."""
    if len(events) == 2:
        (k0, v0), (k1, v1) = events
        if k0 == "introduced" and v0 == "0" and k1 == "fixed":
            # The shape of nearly every distribution record: one key and one comparison, no sorting.
            fk = keys.key(v1)
            if fk is None:
                raise BadEvent(v1)
            return (True, (v1,)) if vkey < fk else (False, ())
    evs: list[tuple[Any, int, str, str]] = []
    limits: list[Any] = []
    for kind, value in events:
        if kind not in EVENT_ORDER:
            continue
        if kind == "introduced" and value == "0":
            evs.append((None, 0, kind, value))
            continue
        k = keys.key(value)
        if k is None:
            raise BadEvent(value)
        if kind == "limit":
            limits.append(k)
        else:
            evs.append((k, EVENT_ORDER[kind], kind, value))
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


def evaluate_ranges(ranges: Sequence[RawRange], vkey: Any, keys: Keys) -> Verdict:
    """All ordered ranges of one ``affected[]`` entry, in order (raises :class:`BadEvent` like the first
    undecidable range does)."""
    matched: list[str] = []
    fixed: list[str] = []
    has_ordered = False
    for rtype, events in ranges:
        if rtype.upper() not in ORDERED_RANGE_TYPES:
            continue
        has_ordered = True
        hit, fx = evaluate_range(events, vkey, keys)
        if hit:
            matched.append(range_text(events))
            fixed.extend(f for f in fx if f not in fixed)
    if matched:
        fixed.sort(key=keys.key)
    return "; ".join(matched), tuple(fixed), has_ordered


def evaluate_item(item: RangeItem, vkey: Any, keys: Keys) -> Verdict:
    """:func:`evaluate_ranges` of one stored range list; the string ``X`` is evaluated as the one range
    "introduced 0, fixed X" it stands for, with one key comparison."""
    if isinstance(item, str):  # most of a distribution's rows: one key and one comparison
        fk = keys.key(item)
        if fk is None:
            raise BadEvent(item)
        return (f"introduced 0, fixed {item}", (item,), True) if vkey < fk else _UNAFFECTED
    return evaluate_ranges(item, vkey, keys)


def highest_event(item: RangeItem, keys: Keys) -> tuple[Any, str] | None:
    """(key, version) of the highest event version of the ordered ranges of ``item``; None when it has no
    ordered range or only ``introduced 0``. Raises :class:`BadEvent` for a version that does not parse."""
    ranges: Sequence[RawRange] = (
        (("ECOSYSTEM", (("introduced", "0"), ("fixed", item))),) if isinstance(item, str) else item
    )
    best: tuple[Any, str] | None = None
    for rtype, events in ranges:
        if rtype.upper() not in ORDERED_RANGE_TYPES:
            continue
        for kind, value in events:
            if kind not in EVENT_ORDER or (kind == "introduced" and value == "0"):
                continue
            k = keys.key(value)
            if k is None:
                raise BadEvent(value)
            if best is None or k > best[0]:
                best = (k, value)
    return best


def has_ordered_range(item: RangeItem) -> bool:
    if isinstance(item, str):
        return True
    return any(r[0].upper() in ORDERED_RANGE_TYPES for r in item)
