"""Shared real parts of the registry-assessment tests (no tests here; pytest collects it harmlessly):

* two advisory databases built from the real OSV mirror in ``../shared/vulndb``: every Debian, PyPI
  and npm record that names a package of the app test image (``all``), and the same without a few
  records that match the image (``held_out``). Swapping one file for the other is what ``db update``
  does to a server: the rescan tests watch those findings appear and get fixed. Cached on disk.
* a live server: the app served by uvicorn on a loopback port (a real registry's notifications need
  a socket to reach), its real job queue, and an admin token.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from tests.server.conftest import TEST_JOB_OPTIONS, wait_idle
from tests.support.cache import cached
from tests.support.images import BuiltImages
from tests.support.registry import free_port
from tests.support.shared import have_vulndb, osv_zip

from garrison.config import Settings
from garrison.jobs import ManagedQueue, open_queue
from garrison.progress import NO_PROGRESS
from garrison.runtime.engine import RuleSet
from garrison.server.app import create_app
from garrison.services import server as svc
from garrison.services.settings import ServerSettings
from garrison.store.db import migrate, open_engine
from garrison.store.repos import SqlStore

ECOSYSTEMS = ("Debian", "PyPI", "npm")
#: Advisories of the image left out of the ``held_out`` database.
HELD = 3
DBS_VERSION = "registry-dbs-v2"

needs_mirror = pytest.mark.skipif(not have_vulndb(*ECOSYSTEMS), reason="no offline OSV mirror in ../shared/vulndb")


@dataclass(frozen=True)
class AdvisoryDBs:
    all: Path
    held_out: Path
    #: The advisory ids ``held_out`` lacks (each matches a package of the app image).
    held: tuple[str, ...]


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _image_names(images: BuiltImages, cache: Path) -> set[str]:
    from garrison.services.scan import ScanService

    with ScanService(Settings(cache_dir=cache, offline=True)) as s:
        inv = s.inventory(images.app_oci_ref)
    return {_norm(p.source_name or p.name) for p in inv.packages} | {_norm(p.name) for p in inv.packages}


def _records(names: set[str]) -> dict[str, dict[str, bytes]]:
    """ecosystem → {file name: OSV JSON} of the mirror's records naming one of ``names``."""
    out: dict[str, dict[str, bytes]] = {}
    for eco in ECOSYSTEMS:
        kept: dict[str, bytes] = {}
        with zipfile.ZipFile(osv_zip(eco)) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".json"):
                    continue
                data = zf.read(info)
                doc = json.loads(data)
                if any(_norm(str(a.get("package", {}).get("name", ""))) in names for a in doc.get("affected", ())):
                    kept[info.filename] = data
        out[eco] = kept
    return out


def _build(dest: Path, records: dict[str, dict[str, bytes]], leave_out: set[str]) -> Path:
    from garrison.vulndb.build import SourceFile, build_database

    dest.mkdir(parents=True, exist_ok=True)
    sources = []
    for eco, files in records.items():
        path = dest / f"{eco}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in files.items():
                if json.loads(data)["id"] not in leave_out:
                    zf.writestr(name, data)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        sources.append(SourceFile(eco, path, path.as_uri(), "2026-01-01T00:00:00Z", sha))
    build_database(dest / "garrison.db", sources, None, NO_PROGRESS, workers=1)
    return dest / "garrison.db"


def advisory_dbs(images: BuiltImages) -> AdvisoryDBs:
    from garrison.services.scan import Scanner, ScanRequest, ScanService

    def build(dest: Path) -> None:
        records = _records(_image_names(images, dest / "layer-cache"))
        every = _build(dest / "all", records, set())
        with ScanService(Settings(cache_dir=dest / "layer-cache", db_path=str(every), offline=True)) as s:
            report = s.scan(images.app_oci_ref, ScanRequest(scanners=frozenset({Scanner.VULN})))
        fixable = sorted({f.detail.advisory.id for f in report.vulnerabilities if f.detail.fixed_versions})
        held = fixable[:: max(1, len(fixable) // HELD)][:HELD]
        assert len(held) == HELD, fixable
        _build(dest / "held-out", records, set(held))
        (dest / "held.json").write_text(json.dumps(held))

    sizes = ",".join(f"{e}={osv_zip(e).stat().st_size}" for e in ECOSYSTEMS)
    root = cached("registry-advisory-dbs", f"{DBS_VERSION}:{sizes}", build)
    held = tuple(json.loads((root / "held.json").read_text()))
    return AdvisoryDBs(root / "all" / "garrison.db", root / "held-out" / "garrison.db", held)


def install_db(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` as ``db update`` does: a new file renamed over the old one."""
    tmp = target.with_name(target.name + ".new")
    tmp.write_bytes(source.read_bytes())
    tmp.replace(target)


@dataclass
class LiveServer:
    url: str
    store: SqlStore
    queue: ManagedQueue
    settings: ServerSettings
    admin: str
    kind: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.admin}"}, timeout=30.0)

    def wait_jobs(self, timeout: float = 120.0) -> Mapping[str, int]:
        return wait_idle(self.queue, timeout)


@contextmanager
def live_server(
    database_url: str,
    ruleset: RuleSet,
    data_dir: Path,
    vulndb: Path,
    *,
    port: int | None = None,
    admin: str | None = None,
) -> Iterator[LiveServer]:
    """A migrated database with an admin (made unless ``admin`` names one's token: a restart), its
    running queue, and the app on ``127.0.0.1:<port>`` (a free one by default)."""
    engine = open_engine(database_url)
    migrate(engine)
    store = SqlStore(engine)
    admin = admin or svc.init_admin(store).secret
    settings = ServerSettings(data_dir=data_dir, database_url=database_url, vulndb=vulndb)
    queue = open_queue(settings, store, options=TEST_JOB_OPTIONS)
    queue.start()
    port = port or free_port()
    app = create_app(store, ruleset, queue=queue, settings=settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        yield LiveServer(f"http://127.0.0.1:{port}", store, queue, settings, admin, engine.dialect.name)
    finally:
        server.should_exit = True
        thread.join(10)
        queue.stop(grace=5.0)
        engine.dispose()


def wait_for(check: Any, timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``check()`` until it returns something truthy (returned); TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached after {timeout} s")
        time.sleep(0.05)
