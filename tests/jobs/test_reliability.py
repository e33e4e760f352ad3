"""The issue's reliability tests, with the real scan task and real parts: Debian's docker-registry, skopeo
pushes, the real app test image, ``garrison server worker`` and ``garrison server run`` processes, on
SQLite and on PostgreSQL.

* A worker killed with SIGKILL in the middle of a scan: the scan's job runs again on another worker, and
  the image ends up scanned once — one scan, one ``scan.done``, the findings the CLI finds, none doubled.
  "In the middle" is made certain, not hoped for: the registry process is stopped (SIGSTOP) before the
  scan starts, so the worker is inside the scan, waiting on the pull, when it is killed.
* The server restarted (SIGKILL, then started again) in the middle of a burst of pushes: the registry
  retries the notifications it could not deliver, and every pushed image is scanned exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from tests.jobs.conftest import QueueFactory, Worker
from tests.server.test_registry_support import advisory_dbs, install_db, needs_mirror, wait_for
from tests.support.imagewriter import Dir, File, Layer, build_image
from tests.support.procs import die_with_parent
from tests.support.registry import free_port

from garrison.config import Settings
from garrison.services import registry as reg_svc
from garrison.services.scan import Scanner, ScanRequest, ScanService
from garrison.services.settings import ServerSettings
from garrison.store import tables
from garrison.store.repos import SqlStore

pytestmark = [pytest.mark.slow, needs_mirror]


def _vulndb(images: Any, tmp: Path) -> Path:
    dest = tmp / "vulndb" / "garrison.db"
    dest.parent.mkdir(parents=True, exist_ok=True)
    install_db(advisory_dbs(images).all, dest)
    return dest


def _table(name: str) -> Any:
    return tables.metadata.tables[name]


def _scans_done(store: SqlStore, scan_id: int) -> int:
    audit = _table("audit_log")
    q = select(func.count()).where(audit.c.action == "scan.done", audit.c.target_id == str(scan_id))
    with store.engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def _no_doubled_findings(store: SqlStore) -> None:
    f = _table("image_findings")
    q = select(f.c.digest, f.c.fingerprint, func.count()).group_by(f.c.digest, f.c.fingerprint)
    with store.engine.connect() as conn:
        doubled = [tuple(r) for r in conn.execute(q) if r[2] != 1]
    assert not doubled


def test_worker_killed_mid_scan_the_scan_runs_again(
    store: SqlStore,
    settings: ServerSettings,
    make_queue: QueueFactory,
    workers: Callable[..., Worker],
    test_images: Any,
    registry_factory: Any,
    tmp_path: Path,
) -> None:
    vulndb = _vulndb(test_images, tmp_path)
    env = {"GARRISON_VULNDB": str(vulndb)}
    registry = registry_factory("plain")
    digest = registry.push(test_images.app_oci_ref, "garrison/app:1.0")
    reg_svc.create_registry(store, settings, None, "local", f"http://{registry.host}")
    producer = make_queue(run_jobs=False)  # the server's side: it only enqueues

    pid = registry.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        scan = reg_svc.request_scan(store, producer, "test", f"{registry.host}/garrison/app@{digest}")
        first = workers("--concurrency", "1", env=env)
        wait_for(lambda: reg_svc.get_scan(store, scan.id).status == "running", 60, "the scan to start")
        job = producer.job(scan.job_id)
        assert job is not None and job.status == "running" and job.attempts == 1
        second = workers("--concurrency", "2", env=env)  # another worker, idle: the only job is taken
        wait_for(lambda: "worker on" in second.stderr(), 60, "the second worker")
        killed_at = time.monotonic()
        first.kill()
        assert reg_svc.get_scan(store, scan.id).status == "running"  # cut short: no result stored
    finally:
        os.kill(pid, signal.SIGCONT)

    wait_for(lambda: (j := producer.job(scan.job_id)) is not None and j.status != "queued" and j.attempts == 2, 60)
    print(f"\n{store.engine.dialect.name}: the job ran again {time.monotonic() - killed_at:.2f} s after the SIGKILL")
    job = wait_for(lambda: (j := producer.job(scan.job_id)) is not None and j.status in ("done", "failed") and j, 180)
    assert job.status == "done" and job.attempts == 2 and "died" in job.last_error
    done = reg_svc.get_scan(store, scan.id)
    assert done.status == "done", done.error

    # Scanned once: one scan, one result, the findings the CLI finds in the same image, none doubled.
    assert reg_svc.list_scans(store, digest=digest).total == 1
    assert _scans_done(store, scan.id) == 1
    stored = reg_svc.image_findings(store, digest, kind="vulnerability", limit=1000)
    with ScanService(Settings(cache_dir=tmp_path / "cli-cache", db_path=str(vulndb), offline=True)) as s:
        report = s.scan(test_images.app_oci_ref, ScanRequest(scanners=frozenset({Scanner.VULN})))
    assert {f.fingerprint for f in stored.items} == {f.fingerprint for f in report.findings}
    assert stored.total == len(stored.items) > 0
    _no_doubled_findings(store)
    assert second.terminate() == 0


# --- the server restarted during a burst of pushes ----------------------------------------------------


def _burst_images(images: Any, tmp: Path, n: int) -> list[str]:
    """``n`` small distinct images (``oci:`` references): the Debian image's real package database and
    os-release, and a file that makes each digest its own."""
    root = images.debian_rootfs
    status = (root / "var/lib/dpkg/status").read_bytes()
    os_release = (root / "usr/lib/os-release").read_bytes()
    refs = []
    for i in range(n):
        layer = Layer(
            entries=[
                Dir("etc"),
                File("etc/os-release", os_release),
                Dir("var"),
                Dir("var/lib"),
                Dir("var/lib/dpkg"),
                File("var/lib/dpkg/status", status),
                File(f"etc/burst-{i}", f"image {i}\n".encode()),
            ]
        )
        oci = tmp / f"burst-{i}"
        build_image([layer], work=tmp / f"burst-work-{i}", oci_dir=oci, tag="latest")
        refs.append(f"oci:{oci}:latest")
    return refs


class Serving:
    """``garrison server run`` in a process of its own (log in a file), restartable on one port."""

    def __init__(self, database_url: str, env: dict[str, str], tmp: Path) -> None:
        self.database_url = database_url
        self.env = env
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []

    def init(self) -> str:
        cmd = [sys.executable, "-m", "garrison.cli.main", "server", "init", "--database", self.database_url]
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120, check=True)
        return out.stdout.strip()

    def start(self) -> None:
        log = self.tmp / f"server-{len(self.logs)}.log"
        self.logs.append(log)
        cmd = [sys.executable, "-m", "garrison.cli.main", "server", "run", "--database", self.database_url]
        cmd += ["--listen", f"127.0.0.1:{self.port}"]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=out, preexec_fn=die_with_parent)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, f"server exited: {log.read_text(errors='replace')}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not start: {log.read_text(errors='replace')}")
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs)


@contextmanager
def _serving(database_url: str, env: dict[str, str], tmp: Path) -> Iterator[Serving]:
    s = Serving(database_url, env, tmp)
    try:
        yield s
    finally:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.send_signal(signal.SIGTERM)
            try:
                s.proc.wait(30)
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait()


def test_server_restart_during_a_burst_every_image_scanned_once(
    database_url: str,
    store: SqlStore,
    workers: Callable[..., Worker],
    test_images: Any,
    registry_factory: Any,
    tmp_path: Path,
) -> None:
    n, before, while_down = 6, 2, 2
    vulndb = _vulndb(test_images, tmp_path)
    env = {**os.environ, "GARRISON_DATA_DIR": str(tmp_path / "data"), "GARRISON_VULNDB": str(vulndb)}
    refs = _burst_images(test_images, tmp_path, n)
    with _serving(database_url, env, tmp_path) as server:
        admin = server.init()
        server.start()
        c = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin}"}, timeout=30)
        r = c.post("/api/v1/registries", json={"name": "local", "url": "http://127.0.0.1:1"})
        assert r.status_code == 201, r.text
        rid, hook = r.json()["registry"]["id"], r.json()["notification_token"]["secret"]
        registry = registry_factory(
            "plain",
            notify_url=f"{server.url}/api/v1/registries/{rid}/notifications",
            notify_headers={"Authorization": [f"Bearer {hook}"]},
        )
        assert c.patch(f"/api/v1/registries/{rid}", json={"url": f"http://{registry.host}"}).status_code == 200
        if server.database_url.startswith("postgresql"):
            # Many processes on one PostgreSQL: this worker takes back what the killed server was running.
            workers("--concurrency", "2", env={"GARRISON_VULNDB": str(vulndb)})

        digests = [registry.push(ref, f"burst/img{i}:1") for i, ref in enumerate(refs[:before])]
        at_kill = [s["status"] for s in c.get("/api/v1/scans").json()["items"]]
        server.kill()  # mid-burst: notifications in flight, scans queued and running
        print(f"\n{store.engine.dialect.name}: server killed after {before} pushes, its scans then: {at_kill}")
        digests += [registry.push(ref, f"burst/img{i}:1") for i, ref in enumerate(refs[before:], before)][:while_down]
        server.start()
        c = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin}"}, timeout=30)
        digests += [
            registry.push(ref, f"burst/img{i}:1")
            for i, ref in enumerate(refs[before + while_down :], before + while_down)
        ]
        assert len(set(digests)) == n

        def all_done() -> list[dict[str, Any]] | None:
            scans = c.get("/api/v1/scans", params={"limit": 100}).json()["items"]
            finished = [s for s in scans if s["status"] in ("done", "failed")]
            return scans if {s["digest"] for s in finished} >= set(digests) else None

        scans = wait_for(all_done, 240, "every pushed image's scan")
        assert sorted(s["digest"] for s in scans) == sorted(digests), "one scan per pushed image, no other"
        assert all(s["status"] == "done" for s in scans), [s["error"] for s in scans]
        assert [_scans_done(store, s["id"]) for s in scans] == [1] * n, (scans, server.log()[-6000:])
        for d in digests:
            img = c.get(f"/api/v1/images/{d}").json()
            assert img["packages"] > 50 and sum(img["counts"].values()) > 0
    _no_doubled_findings(store)
    assert hook not in server.log() and admin not in server.log()
