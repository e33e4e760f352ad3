"""The advisory database: a versioned SQLite file, read here and written by :mod:`.build`.

Tables (``SCHEMA_VERSION`` bumps whenever any of them changes shape):

``meta``        key/value: ``schema_version``, ``built_at``
``sources``     one provenance row per source (an OSV ecosystem zip, the KEV catalog): URL, fetch
                time, sha256 of the bytes, records used, records skipped, withdrawn records
``affected``    one row per (ecosystem, normalized name): the advisory ids and every affected
                entry (advisory id, name as published, ranges as compact JSON, explicit versions
                as plain text; see :func:`encode_group`). A unique index on (ecosystem, name)
                makes "what could affect this package" one indexed fetch of one row (batched for
                a whole inventory by :meth:`AdvisoryDB.candidates`); a row per advisory cost a
                Python row fetch and a JSON decode per advisory (twice as slow). ``bound`` is the
                row's "safe above" version (see :func:`row_bound`): a package at or above it is
                affected by none of the row's ranges, so matching skips decoding the row
``advisories``  id, aliases, severity, score, the reduced advisory as JSON and the full OSV record
                as zlib-compressed JSON (it is rarely read and would otherwise be half the file)
``aliases``     alias → advisory id (CVE → DEBIAN-CVE-…, GHSA-…)
``kev``         CVE ids in CISA's Known Exploited Vulnerabilities catalog
"""

from __future__ import annotations

import gc
import json
import sqlite3
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from garrison.errors import DatabaseError, SchemaError
from garrison.model.common import Severity
from garrison.model.ecosystem import normalize_name
from garrison.model.vuln import Advisory, Affected, AffectedRange, RangeEvent
from garrison.vulndb.ranges import BadEvent, Keys, evaluate_item, has_ordered_range, highest_event
from garrison.vulndb.versions import scheme_for

_T = TypeVar("_T")

#: 5: row bounds computed by the matcher's own replay (a ``limit`` no longer prevents one).
SCHEMA_VERSION = 5

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources (
    name TEXT PRIMARY KEY, url TEXT NOT NULL, fetched_at TEXT NOT NULL, sha256 TEXT NOT NULL,
    records INTEGER NOT NULL, skipped INTEGER NOT NULL, withdrawn INTEGER NOT NULL,
    etag TEXT NOT NULL DEFAULT '', last_modified TEXT NOT NULL DEFAULT ''
);
CREATE TABLE affected (
    ecosystem TEXT NOT NULL, name TEXT NOT NULL, advisory_ids TEXT NOT NULL, entries INTEGER NOT NULL,
    data TEXT NOT NULL, bound TEXT
);
CREATE TABLE advisories (
    id TEXT PRIMARY KEY, aliases TEXT NOT NULL, severity INTEGER NOT NULL, score REAL,
    source TEXT NOT NULL, advisory TEXT NOT NULL, record BLOB NOT NULL
);
CREATE TABLE aliases (alias TEXT NOT NULL, advisory_id TEXT NOT NULL);
CREATE TABLE kev (cve TEXT PRIMARY KEY);
"""

#: Created after the bulk load (building an index once is much cheaper than maintaining it).
INDEXES = """
CREATE UNIQUE INDEX affected_lookup ON affected (ecosystem, name);
CREATE INDEX aliases_lookup ON aliases (alias);
"""

_CACHE_SIZE = 8192


class NewerSchemaError(SchemaError):
    """Written by a newer garrison: never rebuilt automatically (that would downgrade it)."""


class OlderSchemaError(SchemaError):
    """Written by an older garrison: a scan may rebuild it."""


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """Provenance of one source in the database."""

    name: str
    url: str
    fetched_at: str
    sha256: str
    records: int
    skipped: int
    withdrawn: int = 0
    etag: str = ""
    last_modified: str = ""


@dataclass(frozen=True, slots=True)
class DBStatus:
    """What ``garrison db status`` shows and ``garrison db update`` returns."""

    path: str
    schema_version: int
    built_at: str
    sources: tuple[SourceStatus, ...]
    advisories: int
    affected: int
    kev: int
    ecosystems: tuple[str, ...]
    #: Recoverable problems of the last update (an optional ecosystem missing from the mirror…).
    warnings: tuple[str, ...] = ()
    #: False when an update found every source unchanged and kept the existing file.
    rebuilt: bool = True


# -- compact encoding of affected rows -----------------------------------------------------------


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


#: One affected entry, encoded: (advisory id, name as published, ranges JSON, versions). ``versions`` is
#: ``"\nv1\nv2\n"`` ("" when there are none), or a JSON list when a version holds a separator character.
EncodedEntry = tuple[str, str, str, str]

#: Separators of ``affected.data``: JSON never holds a raw control character, and versions never do in
#: practice (an entry whose versions would is stored in the JSON part instead).
_DATA_SEP = "\x1d"
_ENTRY_SEP = "\x1e"
_VERSION_SEP = "\n"


def encode_affected(a: Affected) -> EncodedEntry:
    """Encode one entry for :func:`encode_group` (done in the build's worker processes)."""
    if (
        len(a.ranges) == 1
        and a.ranges[0].type == "ECOSYSTEM"
        and len(evs := a.ranges[0].events) == 2
        and (evs[0].kind, evs[0].value, evs[1].kind) == ("introduced", "0", "fixed")
    ):
        ranges = _compact(evs[1].value)  # nearly every distribution entry: "fixed X" alone
    else:
        ranges = _compact([[r.type, [[e.kind, e.value] for e in r.events]] for r in a.ranges])
    if any(_DATA_SEP in v or _ENTRY_SEP in v or _VERSION_SEP in v for v in a.versions):
        versions = _compact(list(a.versions))
    elif a.versions:
        versions = _VERSION_SEP + _VERSION_SEP.join(a.versions) + _VERSION_SEP
    else:
        versions = ""
    return (a.advisory_id, a.package_name, ranges, versions)


def encode_group(entries: Sequence[EncodedEntry]) -> str:
    """``affected.data`` for one package: a JSON document, then the versions lists as plain text.

    The JSON part is ``[[ranges…], [advisory id…], [ranges index…], names, [[entry, [versions…]]…]]``:
    distinct range lists are stored once per package (the same "introduced 0, fixed X" recurs for every
    CVE fixed by one upload), so matching evaluates each once; the list that is just one ECOSYSTEM
    range "introduced 0, fixed X" (most of a distribution's entries) is stored as the string X;
    ``names`` is the one name every entry was published under, or a list of them. The explicit
    ``versions`` lists (hundreds of versions per PyPI advisory, most of the bytes) follow ``\x1d`` as
    ``\x1e``-separated ``"\nv1\nv2\n"`` texts, one per entry: matching asks "is this version listed"
    with a substring search instead of decoding JSON.
    The rare list holding a separator character is stored in the last JSON member instead.
    """
    index: dict[str, int] = {}
    ids: list[str] = []
    ris: list[int] = []
    names: list[str] = []
    inline: list[str] = []
    texts: list[str] = []
    for i, (aid, name, ranges, versions) in enumerate(entries):
        ids.append(aid)
        names.append(name)
        ris.append(index.setdefault(ranges, len(index)))
        if versions.startswith("["):
            inline.append(f"[{i},{versions}]")
            texts.append("")
        else:
            texts.append(versions)
    head = (
        "[["
        + ",".join(index)
        + "],"
        + _compact(ids)
        + ","
        + _compact(ris)
        + ","
        + _compact(names[0] if len(set(names)) == 1 else names)
        + ",["
        + ",".join(inline)
        + "]]"
    )
    body = _ENTRY_SEP.join(texts) if any(texts) else ""
    return head + _DATA_SEP + body


class Decoded(NamedTuple):
    """What matching needs of one ``affected`` row, decoded without building model objects."""

    #: Distinct range lists: ``[[type, [[kind, value]…]]…]``, or ``X`` for ``[["ECOSYSTEM", [["introduced",
    #: "0"], ["fixed", X]]]]``.
    table: list[list[list[Any]] | str]
    #: Per entry: advisory id, index into ``table``, published name.
    ids: list[str]
    ranges: list[int]
    names: list[str]
    #: Per entry: ``"\nv1\nv2\n"`` ("" for none) or a list of versions.
    versions: list[str | list[str]]


def decode_candidates(data: str) -> Decoded:
    """The raw form of one ``affected`` row (see :func:`encode_group`)."""
    head, _, body = data.partition(_DATA_SEP)
    table, ids, ris, names, inline = json.loads(head)
    versions: list[str | list[str]] = list(body.split(_ENTRY_SEP)) if body else [""] * len(ids)
    for i, listed in inline:
        versions[i] = listed
    if isinstance(names, str):
        names = [names] * len(ids)
    return Decoded(table, ids, ris, names, versions)


class Candidates:
    """One ``affected`` row as the matcher reads it: its :func:`row_bound` and its data, decoded (see
    :class:`Decoded`) on first use. A maintained image's packages are mostly at or above their row's
    bound, so most rows are never decoded."""

    __slots__ = ("_decoded", "bound", "data")

    def __init__(self, data: str, bound: str | None = None) -> None:
        self.data = data
        #: A version at or above which no range of the row matches (None: no such shortcut).
        self.bound = bound
        self._decoded: Decoded | None = None

    def decoded(self) -> Decoded:
        if self._decoded is None:
            self._decoded = _without_gc(decode_candidates, self.data)
        return self._decoded

    def may_list(self, version: str) -> bool:
        """False when no entry's plain-text ``versions`` list names ``version`` (JSON never holds a raw
        newline, so searching the whole row is searching its versions texts)."""
        return f"{_VERSION_SEP}{version}{_VERSION_SEP}" in self.data

    @property
    def table(self) -> list[list[list[Any]] | str]:
        return self.decoded().table

    @property
    def ids(self) -> list[str]:
        return self.decoded().ids

    @property
    def ranges(self) -> list[int]:
        return self.decoded().ranges

    @property
    def names(self) -> list[str]:
        return self.decoded().names

    @property
    def versions(self) -> list[str | list[str]]:
        return self.decoded().versions


def row_bound(ecosystem: str, data: str, cache: dict[str, Any] | None = None) -> str | None:
    """The ``bound`` of one ``affected`` row: the highest event version of its ordered ranges (keyed in the
    ecosystem's scheme), when no range of the row affects it or any version above it; None when there is no
    such version or the shortcut would change what matching reports.

    Computed at build time, so matching a package at or above the bound needs one key (usually the
    installed version's own) instead of decoding the row and keying every event. The test is the matcher's
    own replay (:mod:`garrison.vulndb.ranges`) at that highest version: every event has fired there except a
    ``last_affected`` at it, which only closes further above, and ``limit`` only ever narrows, so a row no
    range affects at its highest event version is affected by none above it. No bound when an event does
    not parse (matching must warn about it), an entry has no ordered range but a versions list (compared by
    key, not by string), or a versions list is stored inline as JSON. Plain-text versions lists are still
    searched by matching before it takes the shortcut. ``cache`` holds version keys across rows.
    """
    try:
        keys = Keys(scheme_for(ecosystem), cache)
    except (KeyError, ValueError, LookupError):
        return None
    c = decode_candidates(data)
    for ri, versions in zip(c.ranges, c.versions, strict=True):
        if not isinstance(versions, str) or (versions and not has_ordered_range(c.table[ri])):
            return None
    try:
        highest = [h for item in c.table if (h := highest_event(item, keys)) is not None]
        if not highest:
            return None
        top_key, top = max(highest, key=lambda h: h[0])
        if any(evaluate_item(item, top_key, keys)[0] for item in c.table):
            return None
    except BadEvent:
        return None
    return top


def _without_gc(fn: Callable[[Any], _T], a: Any) -> _T:
    """Run ``fn`` with the cyclic garbage collector paused.

    Decoding builds thousands of small acyclic objects; each allocation burst triggers a
    collection that walks every live object of the process (the whole inventory during a scan),
    which doubled lookup time in measurements. Nothing built here can form a cycle, so pausing
    leaks nothing; the previous state is restored even if another thread changed it meanwhile.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return fn(a)
    finally:
        if was_enabled:
            gc.enable()


def affected_from_candidates(ecosystem: str, c: Candidates | Decoded) -> tuple[Affected, ...]:
    """The :class:`Affected` model objects of a decoded row."""
    ranges = [
        (AffectedRange("ECOSYSTEM", (RangeEvent("introduced", "0"), RangeEvent("fixed", r))),)
        if isinstance(r, str)
        else tuple(AffectedRange(rtype, tuple(RangeEvent(k, v) for k, v in events)) for rtype, events in r)
        for r in c.table
    ]
    out = []
    for aid, i, name, versions in zip(c.ids, c.ranges, c.names, c.versions, strict=True):
        if isinstance(versions, str):
            listed = tuple(versions[1:-1].split(_VERSION_SEP)) if versions else ()
        else:
            listed = tuple(versions)
        out.append(Affected(aid, ecosystem, name, ranges[i], listed))
    return tuple(out)


def decode_group(ecosystem: str, data: str) -> tuple[Affected, ...]:
    """The :class:`Affected` entries of one ``affected`` row."""
    return affected_from_candidates(ecosystem, decode_candidates(data))


def encode_advisory(a: Advisory) -> str:
    doc = {
        "summary": a.summary,
        "details": a.details,
        "cvss_vectors": list(a.cvss_vectors),
        "references": list(a.references),
        "published": a.published,
        "modified": a.modified,
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _decode_advisory(row: sqlite3.Row | tuple[Any, ...]) -> Advisory:
    advisory_id, aliases, severity, score, source, data = row
    doc = json.loads(data)
    return Advisory(
        id=advisory_id,
        aliases=tuple(json.loads(aliases)),
        summary=doc["summary"],
        details=doc["details"],
        severity=Severity(severity),
        cvss_vectors=tuple(doc["cvss_vectors"]),
        cvss_score=score,
        references=tuple(doc["references"]),
        published=doc["published"],
        modified=doc["modified"],
        source=source,
    )


# -- reading ---------------------------------------------------------------------------------------


def check_schema(conn: sqlite3.Connection, path: Path) -> dict[str, str]:
    """Read ``meta`` and refuse databases of another schema version, saying what to do."""
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as e:
        raise DatabaseError(f"{path} is not a garrison advisory database ({e}); run garrison db update") from e
    try:
        version = int(meta.get("schema_version", "0"))
    except ValueError:
        version = 0
    if version > SCHEMA_VERSION:
        raise NewerSchemaError(
            f"database schema {version} is newer than this garrison ({SCHEMA_VERSION}); "
            "upgrade garrison or run garrison db update"
        )
    if version < SCHEMA_VERSION:
        raise OlderSchemaError(
            f"database schema {version} is older than this garrison ({SCHEMA_VERSION}); run garrison db update"
        )
    return meta


class AdvisoryDB:
    """Read-only access to a built advisory database. Safe to share between threads."""

    def __init__(self, conn: sqlite3.Connection, path: Path, meta: dict[str, str]) -> None:
        self._conn = conn
        self.path = path
        self._meta = meta
        self._lock = threading.Lock()
        #: (ecosystem, normalized name) → decoded row, () when the database has none.
        self._cache: OrderedDict[tuple[str, str], Candidates | tuple[()]] = OrderedDict()
        self._kev: frozenset[str] | None = None

    @classmethod
    def open(cls, path: Path) -> AdvisoryDB:
        """Open ``path`` read-only; raises :class:`SchemaError` or :class:`DatabaseError`."""
        path = Path(path)
        if not path.is_file():
            raise DatabaseError(f"no advisory database at {path}; run garrison db update")
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as e:
            raise DatabaseError(f"cannot open advisory database {path}: {e}") from e
        try:
            conn.execute("PRAGMA mmap_size = 268435456")  # read pages in place instead of copying them
            meta = check_schema(conn, path)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path, meta)

    def __enter__(self) -> AdvisoryDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as e:
                raise DatabaseError(f"advisory database {self.path}: {e}") from e

    def affected(self, ecosystem: str, name: str) -> list[Affected]:
        """Every affected entry for the package, whatever its version (matching decides that)."""
        found = self.candidates(ecosystem, [name]).get(name)
        return list(affected_from_candidates(ecosystem, found)) if found else []

    def candidates(self, ecosystem: str, names: Iterable[str]) -> dict[str, Candidates]:
        """The raw affected rows of ``names`` (as given; absent when the database has none), for the matcher.

        Batched (one indexed query per 500 names) and memoized per normalized name: images repeat
        packages a lot, and a long-lived caller (a server, the tests) matches the same names again.
        """
        wanted: dict[str, list[str]] = {}
        for name in names:
            wanted.setdefault(normalize_name(ecosystem, name), []).append(name)
        out: dict[str, Candidates] = {}
        missing: list[str] = []
        with self._lock:
            for norm, given in wanted.items():
                hit = self._cache.get((ecosystem, norm))
                if hit is None:
                    missing.append(norm)
                    continue
                self._cache.move_to_end((ecosystem, norm))
                if hit:
                    out.update(dict.fromkeys(given, hit))
        fetched: dict[str, Candidates] = {}
        for i in range(0, len(missing), 500):
            chunk = missing[i : i + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT name, data, bound FROM affected WHERE ecosystem = ? AND name IN ({marks})"
            for name, data, bound in self._query(sql, [ecosystem, *chunk]):
                fetched[name] = Candidates(data, bound)
        with self._lock:
            for norm in missing:
                found = fetched.get(norm, ())
                self._cache[(ecosystem, norm)] = found
                if found:
                    out.update(dict.fromkeys(wanted[norm], found))
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return out

    def advisory(self, advisory_id: str) -> Advisory:
        """The advisory with this id, or the one it is an alias of; raises ``KeyError`` when unknown."""
        found = self.advisories([advisory_id])
        if advisory_id in found:
            return found[advisory_id]
        sql = "SELECT advisory_id FROM aliases WHERE alias = ? ORDER BY advisory_id"
        rows = self._query(sql, (advisory_id,))
        if rows:
            return self.advisories([rows[0][0]])[rows[0][0]]
        raise KeyError(advisory_id)

    def advisories(self, ids: Iterable[str]) -> dict[str, Advisory]:
        """Advisories by id, batched (unknown ids are simply absent from the result)."""
        wanted = list(dict.fromkeys(ids))
        out: dict[str, Advisory] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, aliases, severity, score, source, advisory FROM advisories WHERE id IN ({marks})"
            for row in self._query(sql, chunk):
                out[row[0]] = _decode_advisory(row)
        return out

    def record(self, advisory_id: str) -> dict[str, Any]:
        """The full OSV record as published (for ``--format json`` consumers and debugging)."""
        rows = self._query("SELECT record FROM advisories WHERE id = ?", (advisory_id,))
        if not rows:
            raise KeyError(advisory_id)
        doc: dict[str, Any] = json.loads(zlib.decompress(rows[0][0]))
        return doc

    def aliases_of(self, alias: str) -> list[str]:
        """Advisory ids that list ``alias`` (e.g. every advisory for a CVE)."""
        return [r[0] for r in self._query("SELECT advisory_id FROM aliases WHERE alias = ?", (alias,))]

    def kev(self) -> frozenset[str]:
        if self._kev is None:
            self._kev = frozenset(r[0] for r in self._query("SELECT cve FROM kev"))
        return self._kev

    def ecosystems(self) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT ecosystem FROM affected ORDER BY ecosystem")]

    def sources(self) -> tuple[SourceStatus, ...]:
        rows = self._query(
            "SELECT name, url, fetched_at, sha256, records, skipped, withdrawn, etag, last_modified "
            "FROM sources ORDER BY name COLLATE NOCASE"
        )
        return tuple(SourceStatus(*r) for r in rows)

    def status(self) -> DBStatus:
        count = {t: self._query(f"SELECT count(*) FROM {t}")[0][0] for t in ("advisories", "kev")}
        count["affected"] = self._query("SELECT coalesce(sum(entries), 0) FROM affected")[0][0]
        return DBStatus(
            path=str(self.path),
            schema_version=int(self._meta["schema_version"]),
            built_at=self._meta.get("built_at", ""),
            sources=self.sources(),
            advisories=count["advisories"],
            affected=count["affected"],
            kev=count["kev"],
            ecosystems=tuple(self.ecosystems()),
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# -- presentation (returned as text; the CLI decides where it goes) ---------------------------------


def format_status(status: DBStatus, fmt: str = "table") -> str:
    """``garrison db status`` output: ``json`` (stable keys, for scripts) or a plain-text table."""
    if fmt == "json":
        return json.dumps(asdict(status), indent=2) + "\n"
    lines = [
        f"Database:    {status.path}",
        f"Schema:      {status.schema_version}",
        f"Built at:    {status.built_at}" + ("" if status.rebuilt else " (sources unchanged, not rebuilt)"),
        f"Advisories:  {status.advisories}",
        f"Affected:    {status.affected} package entries in {len(status.ecosystems)} ecosystems",
        f"KEV:         {status.kev} CVEs",
        "",
    ]
    header = ("SOURCE", "RECORDS", "SKIPPED", "WITHDRAWN", "FETCHED", "SHA256", "URL")
    rows = [
        (s.name, str(s.records), str(s.skipped), str(s.withdrawn), s.fetched_at, s.sha256[:12], s.url)
        for s in status.sources
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for r in [header, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    lines += [f"warning: {w}" for w in status.warnings]
    return "\n".join(lines) + "\n"
