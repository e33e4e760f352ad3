"""Pure OSV parsing: validate one record and reduce it to an :class:`Advisory` plus its
:class:`Affected` rows (https://ossf.github.io/osv-schema/).

No I/O here: the build feeds decoded JSON in and stores what comes out. Anything that does not
fit the schema raises :class:`MalformedRecord`, which the build counts and skips; one bad record
never stops a database update.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from garrison.model.common import Severity
from garrison.model.vuln import Advisory, Affected, AffectedRange, RangeEvent

#: Details are for the terminal and reports; the full text stays in the stored record.
MAX_DETAILS = 2000

_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
_RANGE_TYPES = ("ECOSYSTEM", "SEMVER", "GIT")
#: Preferred order among several vectors of one record: v3 is what most tools and users quote.
_CVSS_PREFERENCE = ("CVSS_V3", "CVSS_V4", "CVSS_V2")
#: Debian security-tracker urgencies; "not yet assigned" and "end-of-life" say nothing.
_URGENCY = {
    "unimportant": Severity.NEGLIGIBLE,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
}


class MalformedRecord(ValueError):
    """The record does not follow the OSV schema closely enough to be used."""


@dataclass(frozen=True, slots=True)
class ParsedRecord:
    """One usable OSV record."""

    advisory: Advisory
    affected: tuple[Affected, ...]


def is_withdrawn(record: Mapping[str, Any]) -> bool:
    """Withdrawn advisories are kept out of the database (they were published in error)."""
    return bool(record.get("withdrawn"))


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise MalformedRecord(f"{what} is not a string")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedRecord(f"{what} is not a list")
    return value


def _dict(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedRecord(f"{what} is not an object")
    return value


def _range(raw: Any, advisory_id: str) -> AffectedRange:
    r = _dict(raw, f"{advisory_id}: range")
    rtype = _str(r.get("type"), f"{advisory_id}: range type")
    if rtype not in _RANGE_TYPES:
        raise MalformedRecord(f"{advisory_id}: unknown range type {rtype!r}")
    events: list[RangeEvent] = []
    for ev in _list(r.get("events"), f"{advisory_id}: events"):
        ev = _dict(ev, f"{advisory_id}: event")
        if len(ev) != 1:
            raise MalformedRecord(f"{advisory_id}: an event must have exactly one key")
        ((kind, value),) = ev.items()
        if kind not in _EVENT_KINDS:
            raise MalformedRecord(f"{advisory_id}: unknown event {kind!r}")
        events.append(RangeEvent(kind, _str(value, f"{advisory_id}: {kind}")))
    if not events:
        raise MalformedRecord(f"{advisory_id}: range without events")
    return AffectedRange(rtype, tuple(events))


def _affected(raw: Any, advisory_id: str) -> Affected:
    a = _dict(raw, f"{advisory_id}: affected")
    pkg = _dict(a.get("package"), f"{advisory_id}: package")
    ecosystem = _str(pkg.get("ecosystem"), f"{advisory_id}: package.ecosystem")
    name = _str(pkg.get("name"), f"{advisory_id}: package.name")
    if not ecosystem or not name:
        raise MalformedRecord(f"{advisory_id}: empty package ecosystem or name")
    ranges = tuple(_range(r, advisory_id) for r in _list(a.get("ranges"), f"{advisory_id}: ranges"))
    versions = tuple(_list(a.get("versions"), f"{advisory_id}: versions"))
    if not all(isinstance(v, str) for v in versions):
        raise MalformedRecord(f"{advisory_id}: a version is not a string")
    return Affected(advisory_id, ecosystem, name, ranges, versions)


@lru_cache(maxsize=8192)
def cvss_score(kind: str, vector: str) -> float | None:
    """Base score of a CVSS vector, or None when the vector does not parse."""
    import cvss  # lazy: only the database build needs it

    try:
        if kind == "CVSS_V4":
            return float(cvss.CVSS4(vector).base_score)
        if kind == "CVSS_V3":
            return float(cvss.CVSS3(vector).scores()[0])
        if kind == "CVSS_V2":
            return float(cvss.CVSS2(vector).scores()[0])
    except Exception:  # the cvss library raises a zoo of types for bad vectors
        return None
    return None


def severity_from_score(score: float) -> Severity:
    """CVSS qualitative rating (the same bands for v2, v3 and v4)."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.NEGLIGIBLE


def _vectors(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(type, vector) pairs from the record and its affected entries, first occurrence kept."""
    found: dict[str, str] = {}
    entries: list[Any] = list(_list(record.get("severity"), "severity"))
    for a in _list(record.get("affected"), "affected"):
        if isinstance(a, dict):
            entries += _list(a.get("severity"), "affected.severity")
            db = a.get("database_specific")
            if isinstance(db, dict) and isinstance(db.get("cvss"), str):  # RustSec
                vec = db["cvss"]
                entries.append({"type": "CVSS_V4" if vec.startswith("CVSS:4") else "CVSS_V3", "score": vec})
    for s in entries:
        if isinstance(s, dict) and isinstance(s.get("type"), str) and isinstance(s.get("score"), str):
            found.setdefault(s["type"], s["score"])
    return [(t, found[t]) for t in _CVSS_PREFERENCE if t in found]


def _numeric_score(record: Mapping[str, Any]) -> float | None:
    """Scores some databases give as bare numbers (RubySec ``cvss_v3``, the npm WG ``cvss_score``)."""
    db = record.get("database_specific")
    if not isinstance(db, dict):
        return None
    for k in ("cvss_v4", "cvss_v3", "cvss_score", "cvss_v2"):
        v = db.get(k)
        if isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 10:
            return float(v)
    return None


def _rated_severity(record: Mapping[str, Any]) -> Severity:
    """A named rating: the database's (GHSA ``database_specific.severity``), an ecosystem's, or
    Debian's urgency; UNKNOWN when none says anything."""
    places: list[Any] = [record.get("database_specific")]
    for a in _list(record.get("affected"), "affected"):
        if isinstance(a, dict):
            places += [a.get("ecosystem_specific"), a.get("database_specific")]
    for place in places:
        if isinstance(place, dict) and isinstance(place.get("severity"), str):
            try:
                return Severity.parse(place["severity"])
            except ValueError:
                continue
    for place in places:
        if isinstance(place, dict) and isinstance(place.get("urgency"), str):
            sev = _URGENCY.get(place["urgency"].strip().lower().rstrip("*"))
            if sev is not None:
                return sev
    return Severity.UNKNOWN


def rate(record: Mapping[str, Any]) -> tuple[Severity, float | None, tuple[str, ...]]:
    """(severity, score, vectors): CVSS vectors first, then bare scores, then named ratings."""
    vectors = _vectors(record)
    for kind, vec in vectors:
        score = cvss_score(kind, vec)
        if score is not None:
            return severity_from_score(score), score, tuple(v for _, v in vectors)
    score = _numeric_score(record)
    if score is not None:
        return severity_from_score(score), score, tuple(v for _, v in vectors)
    return _rated_severity(record), None, tuple(v for _, v in vectors)


def _references(record: Mapping[str, Any]) -> tuple[str, ...]:
    urls: list[str] = []
    for ref in _list(record.get("references"), "references"):
        if isinstance(ref, dict) and isinstance(ref.get("url"), str) and ref["url"] not in urls:
            urls.append(ref["url"])
    return tuple(urls)


def _truncate(text: str, limit: int = MAX_DETAILS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def parse_record(record: Any, source: str = "") -> ParsedRecord:
    """Validate and reduce one decoded OSV record. ``source`` names the mirror file it came from."""
    r = _dict(record, "record")
    advisory_id = _str(r.get("id"), "id").strip()
    if not advisory_id:
        raise MalformedRecord("empty id")
    modified = _str(r.get("modified", ""), f"{advisory_id}: modified")
    aliases = tuple(a for a in (_str(x, f"{advisory_id}: alias") for x in _list(r.get("aliases"), "aliases")) if a)
    affected = tuple(_affected(a, advisory_id) for a in _list(r.get("affected"), f"{advisory_id}: affected"))
    severity, score, vectors = rate(r)
    advisory = Advisory(
        id=advisory_id,
        aliases=aliases,
        summary=_str(r.get("summary") or "", f"{advisory_id}: summary").strip(),
        details=_truncate(_str(r.get("details") or "", f"{advisory_id}: details").strip()),
        severity=severity,
        cvss_vectors=vectors,
        cvss_score=score,
        references=_references(r),
        published=_str(r.get("published") or "", f"{advisory_id}: published"),
        modified=modified,
        source=source,
    )
    return ParsedRecord(advisory, affected)


def alias_ids(parsed: ParsedRecord) -> Iterable[str]:
    """Every id the advisory is known by, itself first."""
    yield parsed.advisory.id
    yield from parsed.advisory.aliases
