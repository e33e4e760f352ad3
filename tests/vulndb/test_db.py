"""The advisory database end to end: fetch (file:// and HTTP), build, status, failures that must
leave the previous database working."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import REAL, MirrorServer, TLSMirror, needs_mirror, read_zip, write_zip
from garrison import net
from garrison.config import Settings
from garrison.errors import DatabaseError, MirrorError, SchemaError
from garrison.progress import NO_PROGRESS
from garrison.vulndb import AdvisoryDB, ensure_database, update_database
from garrison.vulndb.build import SourceFile, build_database, now
from garrison.vulndb.store import SCHEMA_VERSION

pytestmark = needs_mirror


def _settings(tmp_path: Path, mirror: str, **kw: object) -> Settings:
    return replace(Settings(cache_dir=tmp_path / "cache", mirror=mirror), **kw)  # type: ignore[arg-type]


def _expected(mirror: Path) -> tuple[int, int]:
    """(usable records, withdrawn records) counted independently of garrison."""
    usable = withdrawn = 0
    for zpath in mirror.glob("*/all.zip"):
        for data in read_zip(zpath).values():
            if json.loads(data).get("withdrawn"):
                withdrawn += 1
            else:
                usable += 1
    return usable, withdrawn


def test_build_from_file_mirror(tmp_path: Path, mirror: Path) -> None:
    settings = _settings(tmp_path, mirror.as_uri())
    status = update_database(settings, NO_PROGRESS)
    usable, withdrawn = _expected(mirror)
    assert status.rebuilt
    assert status.schema_version == SCHEMA_VERSION
    assert status.advisories == usable
    assert sum(s.withdrawn for s in status.sources) == withdrawn > 0
    assert status.kev > 1000  # the real catalog, found beside the mirror
    assert any("Maven" in w for w in status.warnings)  # optional, absent: a warning only
    by_name = {s.name: s for s in status.sources}
    assert set(by_name) == {
        "Go",
        "crates.io",
        "PyPI",
        "RubyGems",
        "Packagist",
        "npm",
        "Debian",
        "Alpine",
        "kev",
    }
    pypi = mirror / "PyPI" / "all.zip"
    assert by_name["PyPI"].sha256 == hashlib.sha256(pypi.read_bytes()).hexdigest()
    assert by_name["PyPI"].url == pypi.as_uri()
    assert "Debian:12" in status.ecosystems and "PyPI" in status.ecosystems

    with AdvisoryDB.open(settings.database_file) as db:
        django = db.affected("PyPI", "Django")
        assert django and django == db.affected("PyPI", "DJANGO")
        assert all(a.ecosystem == "PyPI" and a.package_name.lower() == "django" for a in django)
        adv = db.advisory(django[0].advisory_id)
        assert adv.id == django[0].advisory_id and adv.source == "PyPI"
        # Looking up by an alias finds the advisory too.
        if adv.aliases:
            assert db.advisory(adv.aliases[0]).id in db.aliases_of(adv.aliases[0])
        batch = db.advisories([a.advisory_id for a in django] + ["NOPE-1"])
        assert set(batch) == {a.advisory_id for a in django}
        assert db.record(adv.id)["id"] == adv.id
        assert "CVE-2021-44228" in db.kev()  # log4shell is in every KEV catalog
        assert db.affected("PyPI", "no-such-package-anywhere") == []
        assert db.status().advisories == status.advisories
        with pytest.raises(KeyError):
            db.advisory("NOPE-1")


def test_severity_is_computed_at_build(tmp_path: Path, mirror: Path) -> None:
    settings = _settings(tmp_path, mirror.as_uri(), ecosystems="npm")
    update_database(settings, NO_PROGRESS)
    with AdvisoryDB.open(settings.database_file) as db:
        rows = sqlite3.connect(settings.database_file).execute("SELECT id FROM advisories").fetchall()
        advisories = db.advisories(r[0] for r in rows)
    scored = [a for a in advisories.values() if a.cvss_score is not None]
    assert scored and all(a.severity > 0 for a in scored)
    assert all(a.cvss_vectors[0].startswith("CVSS:3") for a in scored if a.cvss_vectors)


def test_http_mirror_and_etag_reuse(tmp_path: Path, http_mirror: MirrorServer) -> None:
    settings = _settings(tmp_path, f"{http_mirror.url}/osv")
    first = update_database(settings, NO_PROGRESS)
    assert first.rebuilt and first.advisories > 200 and first.kev > 1000
    assert http_mirror.count(200) == 9  # eight ecosystems + KEV
    assert http_mirror.count(404) == 2  # Maven, NuGet
    assert (tmp_path / "cache" / "db" / "osv" / "PyPI.zip").is_file()
    assert {s.name: s.etag for s in first.sources}["PyPI"].startswith('"')

    second = update_database(settings, NO_PROGRESS)
    assert http_mirror.count(304) == 9  # every source revalidated, nothing downloaded again
    assert http_mirror.count(200) == 9
    assert not second.rebuilt and second.built_at == first.built_at

    # A changed source is downloaded again and the database rebuilt with the new record.
    pypi = http_mirror.root / "osv" / "PyPI" / "all.zip"
    members = read_zip(pypi)
    record = {"id": "GARRISON-TEST-1", "modified": "2024-01-01T00:00:00Z", "affected": [
        {"package": {"ecosystem": "PyPI", "name": "Garrison_Test"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}]}]}  # fmt: skip
    members["GARRISON-TEST-1.json"] = json.dumps(record).encode()
    write_zip(pypi, members)
    third = update_database(settings, NO_PROGRESS)
    assert third.rebuilt and third.advisories == first.advisories + 1
    with AdvisoryDB.open(settings.database_file) as db:
        assert [a.advisory_id for a in db.affected("PyPI", "garrison-test")] == ["GARRISON-TEST-1"]


def test_retries_after_server_errors(
    tmp_path: Path, http_mirror: MirrorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(net, "BACKOFF", 0.01)
    http_mirror.fail["/osv/npm/all.zip"] = 2
    status = update_database(_settings(tmp_path, f"{http_mirror.url}/osv", ecosystems="npm"), NO_PROGRESS)
    assert status.advisories > 0
    assert http_mirror.hits[("/osv/npm/all.zip", 503)] == 2


def test_https_mirror_is_verified_with_ca_file(
    tmp_path: Path, https_mirror: TLSMirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mirror trusts what registries trust: the system store plus ``ca_file``, and no more."""
    monkeypatch.setattr(net, "BACKOFF", 0.01)
    url = f"{https_mirror.server.url}/osv"
    untrusted = _settings(tmp_path / "a", url, ecosystems="npm")
    with pytest.raises(MirrorError, match="CERTIFICATE_VERIFY_FAILED"):
        update_database(untrusted, NO_PROGRESS)
    assert https_mirror.server.count(200) == 0
    status = update_database(replace(untrusted, ca_file=str(https_mirror.ca_file)), NO_PROGRESS)
    assert status.advisories > 0 and status.ecosystems == ("npm",) and status.kev > 0  # KEV came over TLS too
    assert https_mirror.server.hits[("/osv/npm/all.zip", 200)] == 1
    skip = update_database(_settings(tmp_path / "b", url, ecosystems="npm", tls_skip_verify=True), NO_PROGRESS)
    assert skip.advisories == status.advisories


def _snapshot(path: Path) -> tuple[str, int]:
    with AdvisoryDB.open(path) as db:
        s = db.status()
    return s.built_at, s.advisories


def test_mirror_down_keeps_old_database(tmp_path: Path, mirror: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net, "BACKOFF", 0.01)
    settings = _settings(tmp_path, mirror.as_uri())
    update_database(settings, NO_PROGRESS)
    before = _snapshot(settings.database_file)
    import socket

    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = replace(settings, mirror=f"http://127.0.0.1:{port}/osv")
    with pytest.raises(MirrorError, match="cannot fetch"):
        update_database(down, NO_PROGRESS)
    assert _snapshot(settings.database_file) == before


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_bad_zip_keeps_old_database(tmp_path: Path, http_mirror: MirrorServer, damage: str) -> None:
    settings = _settings(tmp_path, f"{http_mirror.url}/osv")
    update_database(settings, NO_PROGRESS)
    before = _snapshot(settings.database_file)
    cached = tmp_path / "cache" / "db" / "osv" / "Go.zip"
    cached_bytes = cached.read_bytes()
    go = http_mirror.root / "osv" / "Go" / "all.zip"
    data = go.read_bytes()
    go.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"<html>gateway error</html>")
    with pytest.raises(MirrorError, match="not a valid zip"):
        update_database(settings, NO_PROGRESS)
    assert _snapshot(settings.database_file) == before
    assert cached.read_bytes() == cached_bytes  # the good cached copy was not overwritten
    assert not list(cached.parent.glob(".download-*"))


def test_corrupt_member_mid_build_keeps_old_database(tmp_path: Path, mirror: Path) -> None:
    """An archive whose directory is fine but whose data is not fails *during* the build."""
    settings = _settings(tmp_path, mirror.as_uri())
    update_database(settings, NO_PROGRESS)
    before = _snapshot(settings.database_file)
    bad = tmp_path / "bad.zip"
    members = read_zip(mirror / "npm" / "all.zip")
    with zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    raw = bytearray(bad.read_bytes())
    first = next(iter(members.values()))
    at = bytes(raw).index(first[:40])
    raw[at + 10 : at + 20] = b"XXXXXXXXXX"
    bad.write_bytes(bytes(raw))
    good = SourceFile("PyPI", mirror / "PyPI" / "all.zip", "file:", now(), "x")
    broken = SourceFile("npm", bad, "file:", now(), "y")
    with pytest.raises(MirrorError, match="corrupt"):
        build_database(settings.database_file, [good, broken], None, NO_PROGRESS)
    assert _snapshot(settings.database_file) == before
    assert not list(settings.database_file.parent.glob(".*tmp-*"))


def test_malformed_records_counted_not_fatal(tmp_path: Path, mirror: Path) -> None:
    npm = mirror / "npm" / "all.zip"
    members = read_zip(npm)
    good = len(members)
    members["bad-1.json"] = b"{not json"
    members["bad-2.json"] = json.dumps({"id": 5, "modified": "x"}).encode()
    two_keys = {"type": "ECOSYSTEM", "events": [{"fixed": "1", "introduced": "0"}]}
    bad3 = {"id": "BAD-3", "affected": [{"package": {"ecosystem": "npm", "name": "x"}, "ranges": [two_keys]}]}
    members["bad-3.json"] = json.dumps(bad3).encode()
    members["bad-4.json"] = json.dumps({"id": "BAD-4", "affected": "npm"}).encode()
    write_zip(npm, members)
    status = update_database(_settings(tmp_path, mirror.as_uri(), ecosystems="npm"), NO_PROGRESS)
    row = {s.name: s for s in status.sources}["npm"]
    assert (row.records, row.skipped) == (good, 4)
    (warning,) = [w for w in status.warnings if w.startswith("npm:")]
    assert "4 records skipped" in warning and "BAD-4" in warning
    assert status.advisories == good


def test_duplicate_ids_across_sources_kept_once(tmp_path: Path, mirror: Path) -> None:
    """The same OSV record in two mirror files is stored once, from the first source."""
    npm = mirror / "npm" / "all.zip"
    go = mirror / "Go" / "all.zip"
    npm_members = read_zip(npm)
    name, data = next(iter(npm_members.items()))
    go_members = read_zip(go)
    go_members[name] = data
    write_zip(go, go_members)
    status = update_database(_settings(tmp_path, mirror.as_uri(), ecosystems="npm,Go"), NO_PROGRESS)
    rows = {s.name: s for s in status.sources}
    assert rows["Go"].skipped == 1 and rows["npm"].skipped == 0
    assert any("already published by an earlier source" in w for w in status.warnings)
    with AdvisoryDB.open(_settings(tmp_path, mirror.as_uri()).database_file) as db:
        adv_id = json.loads(data)["id"]
        assert db.advisory(adv_id).source == "npm"


def test_schema_versions(tmp_path: Path, mirror: Path) -> None:
    settings = _settings(tmp_path, mirror.as_uri(), ecosystems="npm")
    update_database(settings, NO_PROGRESS)
    path = settings.database_file

    def set_version(v: int) -> None:
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(v),))
        conn.close()

    set_version(SCHEMA_VERSION + 1)
    with pytest.raises(SchemaError, match=rf"schema {SCHEMA_VERSION + 1} is newer than this garrison"):
        AdvisoryDB.open(path)
    with pytest.raises(SchemaError, match="upgrade garrison"):
        ensure_database(settings, NO_PROGRESS)  # never downgraded behind the user's back
    set_version(SCHEMA_VERSION - 1)
    with pytest.raises(SchemaError, match="older"):
        AdvisoryDB.open(path)
    with pytest.raises(SchemaError):
        ensure_database(replace(settings, offline=True), NO_PROGRESS)
    assert ensure_database(settings, NO_PROGRESS) == path  # an older database is rebuilt
    AdvisoryDB.open(path).close()


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "garrison.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseError):
        AdvisoryDB.open(path)
    with pytest.raises(DatabaseError, match="garrison db update"):
        AdvisoryDB.open(tmp_path / "missing.db")


def test_ensure_database(tmp_path: Path, mirror: Path) -> None:
    settings = _settings(tmp_path, mirror.as_uri(), ecosystems="npm,Go")
    with pytest.raises(DatabaseError, match="offline"):
        ensure_database(replace(settings, offline=True), NO_PROGRESS)
    path = ensure_database(settings, NO_PROGRESS)
    assert path == settings.database_file and path.is_file()
    mtime = path.stat().st_mtime_ns
    assert ensure_database(settings, NO_PROGRESS) == path
    assert path.stat().st_mtime_ns == mtime  # present and current: not rebuilt
    with pytest.raises(DatabaseError, match="offline"):
        update_database(replace(settings, offline=True), NO_PROGRESS)


def test_missing_required_ecosystem_is_fatal(tmp_path: Path, http_mirror: MirrorServer) -> None:
    settings = _settings(tmp_path, f"{http_mirror.url}/osv", ecosystems="npm,NoSuchEcosystem")
    with pytest.raises(MirrorError, match="404"):
        update_database(settings, NO_PROGRESS)
    assert not settings.database_file.exists()


def test_explicit_kev_url_must_work(tmp_path: Path, http_mirror: MirrorServer) -> None:
    settings = _settings(
        tmp_path, f"{http_mirror.url}/osv", ecosystems="npm", kev_url=f"{http_mirror.url}/kev/missing.json"
    )
    with pytest.raises(MirrorError):
        update_database(settings, NO_PROGRESS)
    kev_file = http_mirror.root / "kev" / "known_exploited_vulnerabilities.json"
    ok = replace(settings, kev_url=str(kev_file))
    assert update_database(ok, NO_PROGRESS).kev > 1000


_KILL_SCRIPT = """
import sys
from pathlib import Path
from garrison.progress import NO_PROGRESS
from garrison.vulndb.build import SourceFile, build_database, now
root = Path(sys.argv[2])
sources = [SourceFile(e, root / e / "all.zip", "file:", now(), "x") for e in ("Debian", "PyPI", "Alpine")]
print("started", flush=True)
build_database(Path(sys.argv[1]), sources, None, NO_PROGRESS, workers=1)
print("finished", flush=True)
"""


def test_killed_build_leaves_old_database(tmp_path: Path, mirror: Path) -> None:
    settings = _settings(tmp_path, mirror.as_uri(), ecosystems="npm")
    update_database(settings, NO_PROGRESS)
    before = _snapshot(settings.database_file)
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(settings.database_file), str(REAL / "osv")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    deadline = time.monotonic() + 60
    tmp_files: list[Path] = []
    while time.monotonic() < deadline and not tmp_files:  # wait until it is writing its temp file
        tmp_files = list(settings.database_file.parent.glob(".*tmp-*"))
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert tmp_files, "the build never started writing"
    assert _snapshot(settings.database_file) == before  # still the old, working database
    # The next build clears the dead build's temp file.
    update_database(replace(settings, ecosystems=("Go",)), NO_PROGRESS)
    assert not list(settings.database_file.parent.glob(".*tmp-*"))


@pytest.mark.slow
def test_full_mirror_build(tmp_path: Path) -> None:
    settings = _settings(tmp_path, (REAL / "osv").as_uri())
    start = time.monotonic()
    status = update_database(settings, NO_PROGRESS)
    elapsed = time.monotonic() - start
    counts = json.loads((REAL / "osv" / "counts.json").read_text())
    withdrawn = sum(s.withdrawn for s in status.sources)
    assert status.advisories + withdrawn == sum(c["records"] for c in counts.values())
    assert status.kev > 1000
    print(f"full build took {elapsed:.1f}s (bench/bench_vulndb.py measures it against its 60 s target)")
    with AdvisoryDB.open(settings.database_file) as db:
        assert len(db.affected("Debian:12", "openssl")) > 50


def test_format_status(tmp_path: Path, mirror: Path) -> None:
    from garrison.vulndb.store import format_status

    status = update_database(_settings(tmp_path, mirror.as_uri(), ecosystems="npm,Go"), NO_PROGRESS)
    doc = json.loads(format_status(status, "json"))
    assert doc["schema_version"] == SCHEMA_VERSION and doc["advisories"] == status.advisories
    assert {s["name"] for s in doc["sources"]} == {"npm", "Go", "kev"}
    table = format_status(status, "table")
    assert f"Advisories:  {status.advisories}" in table
    assert any(line.startswith("npm ") and (mirror / "npm" / "all.zip").as_uri() in line for line in table.splitlines())


def test_bad_derived_kev_is_a_warning(tmp_path: Path, http_mirror: MirrorServer) -> None:
    (http_mirror.root / "kev" / "known_exploited_vulnerabilities.json").write_text("<html>nope</html>")
    status = update_database(_settings(tmp_path, f"{http_mirror.url}/osv", ecosystems="npm"), NO_PROGRESS)
    assert status.kev == 0
    assert any("KEV catalog not loaded" in w for w in status.warnings)
    assert not (tmp_path / "cache" / "db" / "known_exploited_vulnerabilities.json").exists()


class _Recorder:
    """A real Progress implementation that remembers what it was told."""

    def __init__(self) -> None:
        self.tasks: dict[str, list[int | None]] = {}
        self.notes: list[str] = []

    def task(self, description: str, total: int | None = None, unit: str = "B") -> _Recorder.Task:
        self.tasks[description] = [total, 0]
        return _Recorder.Task(self.tasks[description])

    def note(self, message: str) -> None:
        self.notes.append(message)

    class Task:
        def __init__(self, slot: list[int | None]) -> None:
            self.slot = slot

        def advance(self, amount: int) -> None:
            self.slot[1] = (self.slot[1] or 0) + amount

        def update(self, completed: int, total: int | None = None) -> None:
            self.slot[1] = completed

        def done(self) -> None:
            pass


def test_progress_reports_bytes_and_records(tmp_path: Path, http_mirror: MirrorServer) -> None:
    rec = _Recorder()
    status = update_database(_settings(tmp_path, f"{http_mirror.url}/osv", ecosystems="npm,Go"), rec)
    size = (http_mirror.root / "osv" / "npm" / "all.zip").stat().st_size
    assert rec.tasks["Downloading npm advisories"] == [size, size]
    total, done = rec.tasks["Building advisory database"]
    assert total == done and done is not None and done >= status.advisories


@pytest.mark.parametrize(
    ("mirror", "kev_url", "want"),
    [
        ("https://osv-vulnerabilities.storage.googleapis.com", "", ("https://www.cisa.gov/", False)),
        ("file:///srv/vulndb/osv", "", ("file:///srv/vulndb/kev/known_exploited_vulnerabilities.json", False)),
        ("http://mirror.local/osv/", "", ("http://mirror.local/kev/known_exploited_vulnerabilities.json", False)),
        ("http://mirror.local", "", ("", False)),
        ("http://mirror.local/osv", "/data/kev.json", ("/data/kev.json", True)),
    ],
)
def test_kev_url_choice(mirror: str, kev_url: str, want: tuple[str, bool]) -> None:
    from garrison.vulndb.update import _kev_url

    url, explicit = _kev_url(Settings(mirror=mirror, kev_url=kev_url))
    assert url.startswith(want[0]) and (url == "") == (want[0] == "") and explicit is want[1]


def test_lookups_from_many_threads(tmp_path: Path, mirror: Path) -> None:
    """One AdvisoryDB is shared by the scan's worker threads."""
    from concurrent.futures import ThreadPoolExecutor

    settings = _settings(tmp_path, mirror.as_uri())
    update_database(settings, NO_PROGRESS)
    conn = sqlite3.connect(settings.database_file)
    pairs = conn.execute("SELECT ecosystem, name FROM affected").fetchall()
    conn.close()
    with AdvisoryDB.open(settings.database_file) as db:
        expected = {p: db.affected(*p) for p in pairs}
    with AdvisoryDB.open(settings.database_file) as db, ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda p: (p, db.affected(*p)), pairs * 4))
    assert all(result == expected[p] and result for p, result in got)
