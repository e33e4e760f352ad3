"""Build an advisory database file from downloaded sources.

The zips are parsed in worker processes (JSON decoding dominates and the machine has cores to
spare), the main process bulk-inserts into a temporary SQLite file with journaling off, creates
the indexes last and finally ``os.replace``-s the file over the old one. Whatever happens before
that rename - an exception, a kill - the previous database stays in place and working.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import astuple, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from garrison.errors import DatabaseError, MirrorError
from garrison.model.ecosystem import normalize_name
from garrison.progress import Progress
from garrison.vulndb.osv import MalformedRecord, is_withdrawn, parse_record
from garrison.vulndb.store import (
    INDEXES,
    SCHEMA,
    SCHEMA_VERSION,
    AdvisoryDB,
    DBStatus,
    EncodedEntry,
    SourceStatus,
    encode_advisory,
    encode_affected,
    encode_group,
    row_bound,
)
from garrison.vulndb.versions import scheme_for

#: Records per worker task: small enough to balance two workers over one big Debian zip.
CHUNK = 4000
#: Below this many records, worker start-up costs more than it saves.
PARALLEL_THRESHOLD = 3000
#: How many malformed-record messages to keep per source (the count is always exact).
MAX_ERRORS = 5


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One downloaded OSV ecosystem zip and where it came from."""

    name: str
    path: Path
    url: str
    fetched_at: str
    sha256: str
    etag: str = ""
    last_modified: str = ""


@dataclass(frozen=True, slots=True)
class KevSource:
    """The parsed KEV catalog and its provenance."""

    ids: frozenset[str]
    url: str
    fetched_at: str
    sha256: str


@dataclass(slots=True)
class _Chunk:
    source: str
    advisories: list[tuple[object, ...]] = field(default_factory=list)
    affected: list[tuple[str, str, str, EncodedEntry]] = field(default_factory=list)
    aliases: list[tuple[str, str]] = field(default_factory=list)
    records: int = 0
    skipped: int = 0
    withdrawn: int = 0
    errors: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)


def _members(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    return [i for i in zf.infolist() if i.filename.endswith(".json") and not i.is_dir()]


def _parse_chunk(task: tuple[str, str, int, int]) -> _Chunk:
    """Worker: parse members ``[start, stop)`` of one zip into table rows."""
    zip_path, source, start, stop = task
    out = _Chunk(source)
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for info in _members(zf)[start:stop]:
                raw = zf.read(info)
                _add_record(out, raw, source)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise MirrorError(f"{source}: corrupt advisory archive {zip_path}: {e}") from None
    return out


def _add_record(out: _Chunk, raw: bytes, source: str) -> None:
    try:
        record = json.loads(raw)
    except ValueError as e:
        out.skipped += 1
        _note(out, f"not JSON: {e}")
        return
    if isinstance(record, dict) and is_withdrawn(record):
        out.withdrawn += 1
        return
    try:
        parsed = parse_record(record, source)
    except MalformedRecord as e:
        out.skipped += 1
        _note(out, str(e))
        return
    adv = parsed.advisory
    if adv.id in out.ids:
        out.skipped += 1
        _note(out, f"{adv.id}: published twice in one archive")
        return
    out.ids.add(adv.id)
    out.records += 1
    out.advisories.append(
        (
            adv.id,
            json.dumps(list(adv.aliases)),
            int(adv.severity),
            adv.cvss_score,
            source,
            encode_advisory(adv),
            zlib.compress(raw, 1),  # the record as published, byte for byte
        )
    )
    for a in parsed.affected:
        name = normalize_name(a.ecosystem, a.package_name)
        out.affected.append((a.ecosystem, name, adv.id, encode_affected(a)))
    out.aliases.extend((alias, adv.id) for alias in adv.aliases)


def _note(out: _Chunk, message: str) -> None:
    if len(out.errors) < MAX_ERRORS:
        out.errors.append(message)


def _tasks(sources: Sequence[SourceFile]) -> tuple[list[tuple[str, str, int, int]], int]:
    tasks: list[tuple[str, str, int, int]] = []
    total = 0
    for src in sources:
        try:
            with zipfile.ZipFile(src.path) as zf:
                n = len(_members(zf))
        except (zipfile.BadZipFile, OSError) as e:
            raise MirrorError(f"{src.name}: {src.url} is not a valid zip archive: {e}") from None
        total += n
        tasks.extend((str(src.path), src.name, i, min(i + CHUNK, n)) for i in range(0, n, CHUNK))
    return tasks, total


def _results(tasks: list[tuple[str, str, int, int]], total: int, workers: int) -> Iterator[_Chunk]:
    if workers <= 1 or total < PARALLEL_THRESHOLD or len(tasks) < 2:
        yield from map(_parse_chunk, tasks)
        return
    # fork where available: forkserver/spawn re-run the caller's __main__ (breaking unguarded
    # scripts) and pay an import per worker. The children only parse with modules this one has
    # already imported, so a lock copied from another thread of a server is never taken.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    ctx = multiprocessing.get_context(method)
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx, initializer=_ignore_sigint)
    try:
        yield from pool.map(_parse_chunk, tasks)
    except BaseException:
        # Ctrl-C (or any failure): drop the queued chunks instead of parsing them all before exiting.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which cancels them; otherwise each prints a traceback."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _remove_stale(path: Path) -> None:
    """Remove temp files of builds that were killed (their process is gone)."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, PermissionError, OSError):
            continue


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_database(
    path: Path,
    sources: Sequence[SourceFile],
    kev: KevSource | None,
    progress: Progress,
    workers: int | None = None,
) -> DBStatus:
    """Build the database at ``path`` atomically and return its status.

    Raises :class:`MirrorError` for unreadable archives and :class:`DatabaseError` for SQLite or
    file-system failures; either way the previous file at ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        problems = _write(tmp, sources, kev, progress, workers or os.cpu_count() or 1)
        os.replace(tmp, path)
    except sqlite3.Error as e:
        raise DatabaseError(f"cannot write advisory database {path}: {e}") from e
    except OSError as e:
        raise DatabaseError(f"cannot write advisory database {path}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    with AdvisoryDB.open(path) as db:
        status = db.status()
    return replace(status, warnings=tuple(_warnings(status, problems)))


def _write(
    tmp: Path, sources: Sequence[SourceFile], kev: KevSource | None, progress: Progress, workers: int
) -> dict[str, list[str]]:
    tasks, total = _tasks(sources)
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-131072")
        conn.executescript(SCHEMA)
        conn.execute("BEGIN")
        counts: dict[str, list[int]] = {s.name: [0, 0, 0] for s in sources}
        seen: set[str] = set()
        problems: dict[str, list[str]] = {}
        affected: dict[tuple[str, str], list[tuple[str, EncodedEntry]]] = {}
        task = progress.task("Building advisory database", total=total, unit="records")
        for chunk in _results(tasks, total, workers):
            dupes = _insert(conn, chunk, seen, counts[chunk.source], affected)
            notes = problems.setdefault(chunk.source, [])
            notes.extend(chunk.errors)
            notes.extend(f"{d}: already published by an earlier source" for d in sorted(dupes)[:MAX_ERRORS])
            task.advance(chunk.records + chunk.skipped + chunk.withdrawn)
        task.done()
        conn.executemany("INSERT INTO affected VALUES (?, ?, ?, ?, ?, ?)", _grouped(affected))
        _insert_provenance(conn, sources, counts, kev)
        conn.execute("COMMIT")
        conn.executescript(INDEXES)
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return problems


def _insert(
    conn: sqlite3.Connection,
    chunk: _Chunk,
    seen: set[str],
    counts: list[int],
    affected: dict[tuple[str, str], list[tuple[str, EncodedEntry]]],
) -> set[str]:
    # An id seen in an earlier source is the same OSV record published twice: keep the first.
    dupes = {row[0] for row in chunk.advisories if row[0] in seen}
    advisories = [row for row in chunk.advisories if row[0] not in dupes]
    seen.update(str(row[0]) for row in advisories)
    conn.executemany("INSERT OR IGNORE INTO advisories VALUES (?, ?, ?, ?, ?, ?, ?)", advisories)
    for eco, name, aid, entry in chunk.affected:
        if aid not in dupes:
            affected.setdefault((eco, name), []).append((aid, entry))
    conn.executemany("INSERT INTO aliases VALUES (?, ?)", [r for r in chunk.aliases if r[1] not in dupes])
    counts[0] += chunk.records - len(dupes)
    counts[1] += chunk.skipped + len(dupes)
    counts[2] += chunk.withdrawn
    return {str(d) for d in dupes}


def _grouped(
    affected: dict[tuple[str, str], list[tuple[str, EncodedEntry]]],
) -> Iterator[tuple[str, str, str, int, str, str | None]]:
    """One row per package, in key order (so one package's row sits in one place on disk)."""
    keys: dict[str, dict[str, object]] = {}  # version keys per scheme: fixed versions recur a lot
    for (eco, name), entries in sorted(affected.items()):
        entries.sort()
        ids = " ".join(dict.fromkeys(aid for aid, _ in entries))
        data = encode_group([e for _, e in entries])
        bound = row_bound(eco, data, keys.setdefault(scheme_for(eco).name, {}))
        yield eco, name, ids, len(entries), data, bound


def _warnings(status: DBStatus, problems: dict[str, list[str]]) -> list[str]:
    """One line per source that had records skipped, with a few of the reasons."""
    out = []
    for src in status.sources:
        if src.skipped:
            examples = "; ".join(problems.get(src.name, [])[:MAX_ERRORS])
            out.append(f"{src.name}: {src.skipped} records skipped" + (f" (e.g. {examples})" if examples else ""))
    return out


def _three(c: list[int]) -> tuple[int, int, int]:
    return c[0], c[1], c[2]


def _insert_provenance(
    conn: sqlite3.Connection,
    sources: Sequence[SourceFile],
    counts: dict[str, list[int]],
    kev: KevSource | None,
) -> None:
    rows = [
        SourceStatus(s.name, s.url, s.fetched_at, s.sha256, *_three(counts[s.name]), s.etag, s.last_modified)
        for s in sources
    ]
    if kev is not None:
        rows.append(SourceStatus("kev", kev.url, kev.fetched_at, kev.sha256, len(kev.ids), 0, 0))
        conn.executemany("INSERT OR IGNORE INTO kev VALUES (?)", [(c,) for c in sorted(kev.ids)])
    conn.executemany(
        "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [astuple(r) for r in rows],
    )
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [("schema_version", str(SCHEMA_VERSION)), ("built_at", now())])
