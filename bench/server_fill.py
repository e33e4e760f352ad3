"""The parts of the server benchmark that need the registry pillar (images, findings, rescans, scan on
push) and the clusters pillar (recommendations): filling their tables, and the rescan and scan-on-push
measurements. Each entry point first says (as a one-line reason) when what it needs is not there.

The stored images are one real scan replicated: the app test image (``tests/support/images.py``: Debian 12
with python3, nodejs, old PyPI and npm packages) inventoried and matched against an advisory database built
from the real OSV mirror (``tests/server/test_registry_support.py``: every record naming one of its packages,
less three held out), giving its real SBOM and its ~200 real finding documents; each replica is a new
manifest digest with its own repository and tag. Installing the database with the held-out records is the
"database change" a rescan reacts to.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: (what, value, unit, target, note) as the benchmark's rows take them.
RowArgs = tuple[str, float | None, str, tuple[str, float] | None, str]
#: A registry host no replica can be pulled from (proof that a rescan makes no registry traffic).
NOWHERE = "registry.bench.invalid:5000"


def _table(name: str) -> Any:
    from garrison.store.tables import metadata

    return metadata.tables.get(name)


def _paths() -> set[str]:
    from bench.server_harness import openapi_paths

    return openapi_paths()


def _registry_module() -> Any:
    try:
        return importlib.import_module("garrison.services.registry")
    except ImportError:
        return None


@dataclass
class RealScan:
    """One real scan of the app test image against the held-out database."""

    images: Any
    dbs: Any
    #: The scan's findings as the scan job stores them (``FindingIn``).
    found: list[Any]
    sbom: dict[str, Any]
    image: Any
    #: The held-out database's identity (what the stored findings were matched against).
    identity: str


_SCAN: list[RealScan] = []


def real_scan(work: Path) -> RealScan | str:
    """The scan (made once per run), or why it cannot be made here."""
    if _SCAN:
        return _SCAN[0]
    reg = _registry_module()
    if reg is None or not hasattr(reg, "_findings_of"):
        return "no garrison.services.registry scan job yet (helper H1)"
    from tests.support.images import images_ready, test_images
    from tests.support.shared import have_vulndb

    if not images_ready():
        return "the test images are not built (python -m tests.support.images)"
    if not have_vulndb("Debian", "PyPI", "npm"):
        return "no offline OSV mirror in ../shared/vulndb"
    from tests.server.test_registry_support import advisory_dbs

    from garrison.config import Settings
    from garrison.report.json_report import inventory_document
    from garrison.services.scan import Scanner, ScanRequest, ScanService
    from garrison.store.images import ImageIn
    from garrison.store.records import now_iso

    images = test_images()
    dbs = advisory_dbs(images)
    with ScanService(Settings(cache_dir=work / "scan-cache", db_path=str(dbs.held_out), offline=True)) as s:
        inv = s.inventory(images.app_oci_ref)
        report = s.scan_inventory(inv, ScanRequest(scanners=frozenset({Scanner.VULN})))
        identity = reg.database_identity(s.database())
    found = reg._findings_of(report)  # the scan job's own conversion (report → rows)
    art = inv.artifact
    image = ImageIn(art.digest, art.config_digest, art.architecture, inv.os.pretty_name if inv.os else "", 0)
    scan = RealScan(images, dbs, found, inventory_document(inv, now_iso()), image, identity)
    _SCAN.append(scan)
    return scan


def replica_digest(i: int) -> str:
    return "sha256:" + hashlib.sha256(f"garrison-bench-image-{i}".encode()).hexdigest()


def store_replicas(url: str, scan: RealScan, n_images: int, *, sboms: bool) -> list[str]:
    """``n_images`` replicas of ``scan`` in the store at ``url``: images, tags (pushed now, from
    :data:`NOWHERE`) and counts through the images repository; the findings (the bulk of the rows)
    bulk-inserted as the scan job's ``merge_findings`` would have inserted them. Returns the digests."""
    from dataclasses import replace

    from sqlalchemy import insert, literal, select

    from garrison.store import images as si
    from garrison.store.db import open_engine
    from garrison.store.records import now_iso
    from garrison.store.repos import SqlStore

    engine = open_engine(url)
    store = SqlStore(engine)
    at = now_iso()
    digests = [replica_digest(i) for i in range(n_images)]
    try:
        with store.transaction() as tx:
            for i, d in enumerate(digests):
                tx.images.put_image(replace(scan.image, digest=d, packages=len(scan.sbom["packages"])), at)
                if sboms and i == 0:
                    tx.images.put_sbom(d, scan.sbom, at)
                tx.images.see_tag(NOWHERE, f"team-{i % 30:02d}/service-{i}", f"1.{i % 7}.0", d, at, pushed=True)
        columns = [c.name for c in si.image_findings.columns if c.name != "id"]
        # The finding documents, rendered once (the store's FindingIn renders lazily in newer versions).
        docs = [f.render() if hasattr(f, "render") else f.document for f in scan.found]
        first = digests[0]
        rows = []
        for f, doc in zip(scan.found, docs, strict=True):
            row = dict(
                digest=first,
                fingerprint=f.fingerprint,
                kind=f.kind,
                rule_id=f.rule_id[:256],
                severity=f.severity,
                package=f.package[:512],
                installed=f.installed[:256],
                fixed_version=f.fixed_version[:512],
                has_fix=f.has_fix,
                status="open",
                first_seen=at,
                last_seen=at,
                fixed_at="",
                document=doc,
                revision=getattr(f, "revision", ""),
            )
            rows.append({k: v for k, v in row.items() if k in columns})
        fc = si.image_findings.c
        with engine.begin() as conn:
            conn.execute(insert(si.image_findings), rows)
            # The other replicas copied inside the database (no JSON through Python for each row).
            sc = si.sboms.c
            for d in digests[1:]:
                if sboms:
                    cols = [c.name for c in si.sboms.columns]
                    picked_sbom = [literal(d).label("digest") if c == "digest" else sc[c] for c in cols]
                    conn.execute(insert(si.sboms).from_select(cols, select(*picked_sbom).where(sc.digest == first)))
                picked = [literal(d).label("digest") if c == "digest" else fc[c] for c in columns]
                conn.execute(insert(si.image_findings).from_select(columns, select(*picked).where(fc.digest == first)))
        with store.transaction() as tx:
            for d in digests:
                tx.images.refresh_counts(d, scan.identity, at)
    finally:
        engine.dispose()
    return digests


# --- 2. the API lists ----------------------------------------------------------------------------------------


def fill_images(url: str, n_findings: int, work: Path) -> list[tuple[str, list[str]]] | str:
    """Images holding ``n_findings`` findings in all; the list paths to measure, or why not."""
    if _table("image_findings") is None or "/api/v1/images/{digest}/findings" not in _paths():
        return "no images/findings store and API yet (helper H1)"
    scan = real_scan(work)
    if isinstance(scan, str):
        return scan
    n_images = math.ceil(n_findings / max(1, len(scan.found)))
    digests = store_replicas(url, scan, n_images, sboms=False)
    some = digests[:: max(1, len(digests) // 8)][:8]
    repos = [f"team-{i % 30:02d}/service-{i}" for i in range(0, n_images, max(1, n_images // 8))][:8]
    per_image = [f"/api/v1/images/{d}/findings" for d in some]
    return [
        (f"images: first page ({n_images} images)", ["/api/v1/images"]),
        ("images: severity=CRITICAL", ["/api/v1/images?severity=CRITICAL"]),
        ("images: by repository", [f"/api/v1/images?repository={r}" for r in repos]),
        (f"images/{{digest}}/findings: first page ({len(scan.found)} each)", per_image),
        ("images/{digest}/findings: severity=HIGH", [p + "?severity=HIGH" for p in per_image]),
        ("images/{digest}/findings: with a fix, page 2", [p + "?fixed=true&offset=100" for p in per_image]),
    ]


def fill_recommendations(url: str, work: Path) -> list[tuple[str, list[str]]] | str:
    """Three clusters, each assessed from a snapshot of about 1,000 objects (the posture benchmark's
    generated Helm-like applications: workloads with their pods' security contexts, services, roles…)
    through the clusters service, as ``POST /clusters/{id}/snapshot`` does; the list paths to measure."""
    if not any(p.endswith("/recommendations") for p in _paths()):
        return "no clusters/{id}/recommendations API yet (helper H3)"
    import json
    import random

    from bench.bench_posture import chart

    from garrison.services import server as svc
    from garrison.store.db import open_engine
    from garrison.store.repos import SqlStore

    clusters = importlib.import_module("garrison.services.clusters")
    engine = open_engine(url)
    objects = 0
    try:
        store = SqlStore(engine)
        with store.transaction() as tx:
            admin = tx.users.by_name("admin")
        assert admin is not None
        who = svc.Principal(admin, 0)
        ids = ("prod-eu", "prod-us", "staging")
        for n, cid in enumerate(ids):
            clusters.create_cluster(store, None, cid)
            rng = random.Random(100 + n)
            items = [obj for i in range(95) for obj in chart(rng, i)]
            objects += len(items)
            body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items}).encode()
            clusters.post_snapshot(store, who, cid, body)
    finally:
        engine.dispose()
    base = [f"/api/v1/clusters/{c}" for c in ids]
    return [
        (
            f"clusters/{{id}}/recommendations ({objects // len(ids)} objects each)",
            [b + "/recommendations" for b in base],
        ),
        ("clusters/{id}/recommendations: severity=HIGH", [b + "/recommendations?severity=HIGH" for b in base]),
        ("clusters/{id}/findings: first page", [b + "/findings" for b in base]),
        ("clusters/{id}/score", [b + "/score" for b in base]),
    ]


# --- 4. rescans --------------------------------------------------------------------------------------------


def rescan_missing() -> str:
    reg = _registry_module()
    if reg is None:
        return "no garrison.services.registry yet (helper H1)"
    if not (hasattr(reg, "run_rescan_job") and hasattr(reg, "rescan_if_changed") and hasattr(reg, "rescan")):
        return "no garrison.services.registry.run_rescan_job/rescan_if_changed yet (helper H1)"
    return ""


def rescan(work: Path, n: int) -> list[RowArgs] | str:
    """``n`` stored SBOMs (and their findings, matched against the held-out database) on SQLite; the
    full database installed as ``db update`` does; ``rescan_if_changed`` must see the change; then the
    rescan job's work, timed (wall and CPU: it runs on one core)."""
    from tests.server.test_registry_support import install_db

    from garrison.jobs import JobContext, open_queue
    from garrison.services.settings import ServerSettings
    from garrison.store.db import open_engine
    from garrison.store.repos import SqlStore

    reg = _registry_module()
    scan = real_scan(work)
    if isinstance(scan, str):
        return scan
    from bench.server_harness import prepare_database

    url = f"sqlite:///{work / 'rescan.db'}"
    prepare_database(url)
    t0 = time.perf_counter()
    store_replicas(url, scan, n, sboms=True)
    fill = time.perf_counter() - t0
    vulndb = work / "vulndb" / "garrison.db"
    vulndb.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(scan.dbs.held_out, vulndb)
    install_db(scan.dbs.all, vulndb)  # `garrison db update`: a new file renamed over the old one
    settings = ServerSettings(data_dir=work / "data", database_url=url, vulndb=vulndb)
    engine = open_engine(url)
    try:
        store = SqlStore(engine)
        queue = open_queue(settings, store, run_jobs=False)
        ctx = JobContext(store=store, queue=queue, settings=settings)
        job = reg.rescan_if_changed(ctx)
        if job is None:
            return "rescan_if_changed saw no change after the database was replaced"
        w0, c0 = time.perf_counter(), time.process_time()
        result = reg.rescan(ctx)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    finally:
        engine.dispose()
    per_1000 = cpu * 1000 / max(1, result.images)
    note = (
        f"{result.images} images rescanned in {wall:.1f} s wall, {cpu:.1f} s CPU; {result.appeared} findings "
        f"appeared, {result.fixed} fixed; tags name {NOWHERE} (unresolvable: no pull possible); "
        f"store filled in {fill:.0f} s"
    )
    return [(f"CPU seconds per 1,000 SBOMs (SQLite, {n} stored)", per_1000, "s", ("<=", 60.0), note)]


# --- 5. scan on push ---------------------------------------------------------------------------------------


def push_missing() -> str:
    if not any(p.endswith("/notifications") and "registries" in p for p in _paths()):
        return "no registry notifications endpoint yet (helper H1)"
    if shutil.which("docker-registry") is None or shutil.which("skopeo") is None:
        return "docker-registry or skopeo is not installed"
    return ""


def scan_on_push(work: Path, url: str) -> list[RowArgs] | str:
    """``garrison server run`` (SQLite: its inline queue scans in the server process) with a registry
    configured; Debian's ``docker-registry`` notifying it; skopeo pushes the app test image; the clock
    runs from the start of the push until ``GET /api/v1/images/{digest}`` answers (the scan job stores
    the image, its SBOM and findings in one transaction). Then ``garrison scan image`` of the same image
    from the same registry. Both cold: fresh layer caches, the same advisory database file."""
    import json
    import subprocess

    from bench.server_harness import Client, clean_env, garrison_cmd, prepare_database, serving
    from tests.support.registry import RegistryUnavailable, start_registry

    scan = real_scan(work)
    if isinstance(scan, str):
        return scan
    vulndb = work / "vulndb" / "garrison.db"
    vulndb.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(scan.dbs.all, vulndb)
    tokens = prepare_database(url)
    rows: list[RowArgs] = []
    with serving(["server", "run", "--database", url, "--vulndb", str(vulndb)], work / "server") as srv:
        admin = Client(srv, tokens.admin)
        made = admin.request(
            "POST", "/api/v1/registries", json.dumps({"name": "bench", "url": "http://127.0.0.1:1"}).encode()
        )
        if made.status != 201:
            return f"POST /api/v1/registries answered {made.status}: {made.body[:200]!r}"
        doc = made.json()
        rid, secret = doc["registry"]["id"], doc["notification_token"]["secret"]
        notify = f"http://127.0.0.1:{srv.port}/api/v1/registries/{rid}/notifications"
        try:
            registry = start_registry(
                work / "registry", "plain", notify_url=notify, notify_headers={"Authorization": [f"Bearer {secret}"]}
            )
        except RegistryUnavailable as e:
            return str(e)
        try:
            patched = admin.request("PATCH", f"/api/v1/registries/{rid}", json.dumps({"url": registry.url}).encode())
            if patched.status != 200:
                return f"PATCH /api/v1/registries/{rid} answered {patched.status}: {patched.body[:200]!r}"
            t0 = time.perf_counter()
            digest = registry.push(scan.images.app_oci_ref, "bench/app:1.0")
            pushed = time.perf_counter() - t0
            deadline = t0 + 180
            while True:
                got = admin.get(f"/api/v1/images/{digest}")
                if got.status == 200:
                    break
                if time.perf_counter() > deadline:
                    return f"the pushed image was not stored within 180 s (last answer {got.status})\n{srv.log_tail()}"
                time.sleep(0.05)
            stored = time.perf_counter() - t0
            findings = admin.get(f"/api/v1/images/{digest}/findings?limit=1").json()["total"]
            cli_cache = work / "cli-cache"
            cmd = garrison_cmd(
                "scan", "image", f"{registry.host}/bench/app:1.0", "--insecure-registry", registry.host,
                "--db", str(vulndb), "--cache-dir", str(cli_cache), "--offline", "-q", "-f", "json",
                "-o", str(work / "cli.json"),
            )  # fmt: skip
            c0 = time.perf_counter()
            proc = subprocess.run(cmd, env=clean_env(work / "cli-data"), capture_output=True, text=True, timeout=300)
            cli = time.perf_counter() - c0
            if proc.returncode not in (0, 1):
                return f"garrison scan image exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
            cli_findings = len(json.loads((work / "cli.json").read_text()).get("findings", []))
        finally:
            registry.stop()
    rows.append(
        (
            "push → findings stored (scan on push, cold)",
            stored,
            "s",
            None,
            f"skopeo push {pushed:.1f} s of it; {findings} findings stored; {stored / cli:.1f}× the CLI scan",
        )
    )
    rows.append(("garrison scan image, same image and registry (cold)", cli, "s", None, f"{cli_findings} findings"))
    return rows
