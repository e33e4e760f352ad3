"""The scan job against real registries, called as the queue calls it (``run_scan_job(ctx, payload)``,
with a real queue that only records the jobs here): the ways it may authenticate (the registry's
sealed credentials; a Harbor-style ``Authorization`` header, Basic or Bearer), refused credentials as a
clear failure that names no secret, a second run that doubles nothing, and the stored SBOM matching
the image's inventory field for field."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from tests.server.test_registry_support import advisory_dbs, needs_mirror
from tests.support.registry import PASSWORD, USERNAME, Registry

from garrison.config import Settings
from garrison.jobs import JobContext, open_queue
from garrison.services import registry as reg
from garrison.services import server as svc
from garrison.services.scan import ScanService
from garrison.services.settings import ServerSettings
from garrison.store import tables
from garrison.store.db import migrate, open_engine
from garrison.store.repos import SqlStore

pytestmark = [pytest.mark.slow, needs_mirror]
REPO_TAG = "garrison/debian:12"


@pytest.fixture
def ctx(tmp_path: Path, test_images: Any) -> Iterator[JobContext]:
    url = f"sqlite:///{tmp_path / 'server.db'}"
    engine = open_engine(url)
    migrate(engine)
    store = SqlStore(engine)
    settings = ServerSettings(data_dir=tmp_path / "data", database_url=url, vulndb=advisory_dbs(test_images).all)
    queue = open_queue(settings, store, run_jobs=False)
    yield JobContext(store, queue, settings)
    engine.dispose()


def _engine(ctx: JobContext) -> Any:
    assert isinstance(ctx.store, SqlStore)
    return ctx.store.engine


def _rows(ctx: JobContext, table: str) -> int:
    with _engine(ctx).connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.metadata.tables[table])).scalar_one())


def _scan(ctx: JobContext, reference: str, **kw: Any) -> reg.ScanRecord:
    rec = reg.request_scan(ctx.store, ctx.queue, "harbor", reference, settings=ctx.settings, **kw)
    assert rec.status == "queued" and rec.job_id
    reg.run_scan_job(ctx, {"scan_id": rec.id})
    return reg.get_scan(ctx.store, rec.id)


def test_basic_authorization_and_refused_credentials(
    ctx: JobContext, registry_htpasswd: Registry, test_images: Any
) -> None:
    digest = registry_htpasswd.push(test_images.debian_oci_ref, REPO_TAG)
    ref = registry_htpasswd.ref(REPO_TAG)
    basic = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    # A registry reached over plain HTTP must be configured as such (http:// URL).
    reg.create_registry(ctx.store, ctx.settings, None, "plain-http", f"http://{registry_htpasswd.host}")
    queued = reg.request_scan(ctx.store, ctx.queue, "harbor", ref, authorization=basic, settings=ctx.settings)
    with ctx.store.transaction() as tx:
        sealed = tx.images.scan_authorization(queued.id)
    assert sealed and PASSWORD not in sealed and base64.b64encode(PASSWORD.encode()).decode() not in sealed
    reg.run_scan_job(ctx, {"scan_id": queued.id})
    done = reg.get_scan(ctx.store, queued.id)
    assert done.status == "done" and done.digest == digest, done.error
    with ctx.store.transaction() as tx:
        assert tx.images.scan_authorization(done.id) == ""  # the header was for this pull only
    wrong = "Basic " + base64.b64encode(f"{USERNAME}:not-the-password".encode()).decode()
    failed = _scan(ctx, ref, authorization=wrong)
    assert failed.status == "failed" and "check the credentials" in failed.error
    assert "not-the-password" not in failed.error
    missing = _scan(ctx, ref)
    assert missing.status == "failed" and "requires credentials" in missing.error


def test_registry_credentials_and_bearer_authorization(
    ctx: JobContext, registry_token: Registry, test_images: Any
) -> None:
    digest = registry_token.push(test_images.debian_oci_ref, REPO_TAG)
    ref = registry_token.ref(REPO_TAG)
    rec, _ = reg.create_registry(
        ctx.store, ctx.settings, None, "tok", f"http://{registry_token.host}", username=USERNAME, password=PASSWORD
    )
    done = _scan(ctx, ref, registry_id=rec.id)
    assert done.status == "done" and done.digest == digest, done.error
    # Harbor hands a pull token it got from the registry's token server: sent as it is.
    assert registry_token.token_server is not None
    realm = registry_token.token_server.realm
    r = httpx.get(
        realm,
        params={"service": registry_token.token_server.service, "scope": "repository:garrison/debian:pull"},
        auth=(USERNAME, PASSWORD),
    )
    bearer = "Bearer " + r.json()["token"]
    by_header = _scan(ctx, ref, authorization=bearer)
    assert by_header.status == "done" and by_header.digest == digest, by_header.error


def test_a_second_run_doubles_nothing_and_the_sbom_is_the_inventory(
    ctx: JobContext, registry_plain: Registry, test_images: Any, tmp_path: Path
) -> None:
    digest = registry_plain.push(test_images.debian_oci_ref, "garrison/debian:7")
    reg.create_registry(ctx.store, ctx.settings, None, "plain", f"http://{registry_plain.host}")
    first = _scan(ctx, registry_plain.ref("garrison/debian:7"))
    assert first.status == "done", first.error
    counts = {t: _rows(ctx, t) for t in ("images", "sboms", "image_tags", "image_findings")}
    assert counts["images"] == counts["sboms"] == counts["image_tags"] == 1 and counts["image_findings"] > 10
    findings = reg.image_findings(ctx.store, digest, limit=1000)
    # The queue runs the job again (its worker died after the results were committed but before it
    # said so): the scan is done, nothing happens. Forced through once more: the same rows, updated.
    reg.run_scan_job(ctx, {"scan_id": first.id})
    with _engine(ctx).begin() as conn:
        conn.execute(update(tables.metadata.tables["scans"]).values(status="running"))
    reg.run_scan_job(ctx, {"scan_id": first.id})
    assert {t: _rows(ctx, t) for t in counts} == counts
    again = reg.image_findings(ctx.store, digest, limit=1000)
    assert [(f.fingerprint, f.first_seen) for f in again.items] == [
        (f.fingerprint, f.first_seen) for f in findings.items
    ]
    assert all(b.last_seen > a.last_seen for a, b in zip(findings.items, again.items, strict=True))

    with ctx.store.transaction() as tx:
        doc = tx.images.sbom(digest)
    assert doc is not None
    stored = reg.inventory_of_document(doc)
    with ScanService(Settings(cache_dir=tmp_path / "cache", offline=True)) as s:
        direct = s.inventory(test_images.debian_oci_ref)
    key = lambda p: (p.type.value, p.name, p.version, p.locations)  # noqa: E731
    assert sorted(stored.packages, key=key) == sorted(direct.packages, key=key)
    assert stored.os == direct.os
    assert [layer.diff_id for layer in stored.artifact.layers] == [layer.diff_id for layer in direct.artifact.layers]
    assert stored.artifact.digest == digest
    # A rescan of that SBOM against the same database finds what the scan found.
    report = reg._scan_service(Settings(db_path=str(ctx.settings.vulndb))).scan_inventory(stored)
    vulns = {f.fingerprint for f in report.findings}
    assert vulns == {f.fingerprint for f in again.items if f.kind == "vulnerability"}


def test_agents_scan_only_their_registry(ctx: JobContext) -> None:
    rec, tok = reg.create_registry(ctx.store, ctx.settings, None, "mine", "https://mine.example")
    other, _ = reg.create_registry(ctx.store, ctx.settings, None, "theirs", "https://theirs.example")
    me = svc.authenticate(ctx.store, tok.secret)
    ok = reg.request_scan(ctx.store, ctx.queue, me.user.name, "mine.example/a:1", principal=me)
    assert ok.registry_id == rec.id
    with pytest.raises(svc.Forbidden):
        reg.request_scan(ctx.store, ctx.queue, me.user.name, "theirs.example/a:1", principal=me)
    with pytest.raises(svc.Forbidden):
        reg.request_scan(ctx.store, ctx.queue, me.user.name, "docker.io/library/a:1", principal=me)
    assert other.id != rec.id


def test_two_requests_of_one_digest_pull_once(ctx: JobContext, registry_plain: Registry, test_images: Any) -> None:
    """Two notifications of one digest racing past each other (PostgreSQL's read committed lets both
    record a scan): the job lock runs them one after the other, and the second takes the first's results
    instead of pulling again — its reference names a host that would refuse the pull."""
    digest = registry_plain.push(test_images.debian_oci_ref, "garrison/debian:race")
    reg.create_registry(ctx.store, ctx.settings, None, "plain", f"http://{registry_plain.host}")
    one = reg.request_scan(ctx.store, ctx.queue, "a", f"{registry_plain.host}/garrison/debian@{digest}")
    two = reg.request_scan(ctx.store, ctx.queue, "b", f"127.0.0.1:1/garrison/debian@{digest}")
    reg.run_scan_job(ctx, {"scan_id": one.id})
    reg.run_scan_job(ctx, {"scan_id": two.id})
    first, second = reg.get_scan(ctx.store, one.id), reg.get_scan(ctx.store, two.id)
    assert first.status == second.status == "done", (first.error, second.error)
    assert second.counts == first.counts and second.counts


def test_a_pushed_index_is_its_platforms_images(ctx: JobContext, registry_plain: Registry) -> None:
    """skopeo --all pushes each platform's manifest (by digest) and then the index (by tag), and
    distribution notifies each push: every platform image is stored under its own digest, and the tag
    (pushed as the index) ends up naming the image of the server's platform, which admission looks up."""
    import json as _json

    from tests.support.images import MULTIARCH_TAG, multiarch_image
    from tests.support.registry import fetch_manifest

    index_digest = registry_plain.push(f"oci:{multiarch_image()}:{MULTIARCH_TAG}", "garrison/multi:v1", all_images=True)
    index = fetch_manifest(registry_plain, "garrison/multi", "v1").json()
    children = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
    rec, tok = reg.create_registry(ctx.store, ctx.settings, None, "multi", f"http://{registry_plain.host}")
    agent = svc.authenticate(ctx.store, tok.secret)
    child = "application/vnd.oci.image.manifest.v1+json"
    events = [
        {"action": "push", "target": {"mediaType": child, "repository": "garrison/multi", "digest": d}}
        for d in children.values()
    ]
    events.append(
        {
            "action": "push",
            "target": {
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "repository": "garrison/multi",
                "digest": index_digest,
                "tag": "v1",
            },
        }
    )
    out = reg.handle_notifications(ctx.store, ctx.queue, agent, rec.id, _json.dumps({"events": events}).encode())
    assert len(out.queued) == 3
    for scan_id in out.queued:
        reg.run_scan_job(ctx, {"scan_id": scan_id})
        assert reg.get_scan(ctx.store, scan_id).status == "done", reg.get_scan(ctx.store, scan_id).error
    stored = {i.digest: i for i in reg.list_images(ctx.store).items}
    assert set(stored) == set(children.values())
    assert {stored[d].architecture for d in children.values()} == {"amd64", "arm64"}
    verdict = reg.image_verdict(ctx.store, f"{registry_plain.host}/garrison/multi:v1")
    assert verdict is not None and verdict.digest == children["amd64"]
    # By the index's digest, as a pod may name it (nginx@sha256:<index>): the same image's verdict.
    by_index = reg.image_verdict(ctx.store, f"{registry_plain.host}/garrison/multi@{index_digest}")
    assert by_index == verdict
    assert reg.image_verdict(ctx.store, index_digest) == verdict
    assert reg.image_verdict(ctx.store, f"{registry_plain.host}/garrison/multi@sha256:{'0' * 64}") is None
