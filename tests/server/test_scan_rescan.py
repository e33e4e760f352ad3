"""Rescans of stored SBOMs (no registry at all here: that is the point) — aging out images neither
pushed, pulled nor scanned for ``rescan_max_age_days``, skipping an unchanged database unless forced,
resuming an interrupted rescan, ``rescan_if_changed``, and the notification of new critical findings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.server.test_registry_support import advisory_dbs, install_db, needs_mirror
from tests.support.osvdb import build_test_db

from garrison.config import Settings
from garrison.jobs import JobContext, open_queue
from garrison.model import Advisory, Severity
from garrison.model.vuln import Affected, AffectedRange, RangeEvent
from garrison.report.json_report import inventory_document
from garrison.services import notify
from garrison.services import registry as reg
from garrison.services import server as svc
from garrison.services.scan import ScanService
from garrison.services.settings import ServerSettings
from garrison.store.db import migrate, open_engine
from garrison.store.images import ImageIn
from garrison.store.records import now_iso
from garrison.store.repos import SqlStore

pytestmark = [pytest.mark.slow, needs_mirror]
OLD = "2020-01-01T00:00:00.000000Z"


@pytest.fixture(scope="module")
def sbom(test_images: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    with ScanService(Settings(cache_dir=tmp_path_factory.mktemp("cache"), offline=True)) as s:
        return inventory_document(s.inventory(test_images.app_oci_ref))


@pytest.fixture
def ctx(tmp_path: Path, test_images: Any) -> Iterator[JobContext]:
    url = f"sqlite:///{tmp_path / 'server.db'}"
    engine = open_engine(url)
    migrate(engine)
    store = SqlStore(engine)
    vulndb = tmp_path / "vulndb" / "garrison.db"
    vulndb.parent.mkdir()
    install_db(advisory_dbs(test_images).held_out, vulndb)
    settings = ServerSettings(data_dir=tmp_path / "data", database_url=url, vulndb=vulndb, rescan_max_age_days=30)
    queue = open_queue(settings, store, run_jobs=False)
    yield JobContext(store, queue, settings)
    engine.dispose()


def _store(ctx: JobContext, sbom: dict[str, Any], digest: str, at: str) -> None:
    """An image as a scan leaves it (its SBOM, its tag), matched against no database yet."""
    doc = {**sbom, "artifact": {**sbom["artifact"], "digest": digest}}
    with ctx.store.transaction() as tx:
        tx.images.put_image(ImageIn(digest, "", "amd64", "Debian", len(sbom["packages"])), at)
        tx.images.put_sbom(digest, doc, at)
        tx.images.see_tag("reg.example", "team/app", digest[-6:], digest, at, pushed=True)


def _digest(i: int) -> str:
    return "sha256:" + f"{i:064x}"


def test_aging_skipping_and_forcing(ctx: JobContext, sbom: dict[str, Any]) -> None:
    _store(ctx, sbom, _digest(1), now_iso())
    _store(ctx, sbom, _digest(2), OLD)  # neither pushed, pulled nor scanned since 2020
    first = reg.rescan(ctx)
    assert (first.skipped, first.images, first.aged_out) == (False, 1, 1)
    assert first.appeared > 100 and first.fixed == 0
    assert reg.image_findings(ctx.store, _digest(1)).total == first.appeared
    assert reg.image_findings(ctx.store, _digest(2)).total == 0
    assert reg.rescan_if_changed(ctx) is None
    again = reg.rescan(ctx)
    assert again.skipped and again.images == 0
    forced = reg.rescan(ctx, force=True)
    assert (forced.skipped, forced.images, forced.appeared, forced.fixed) == (False, 1, 0, 0)
    # A pull brings the old image back into rescans.
    with ctx.store.transaction() as tx:
        tx.images.see_pull("reg.example", "team/app", "", _digest(2), now_iso())
    back = reg.rescan(ctx)
    assert (back.images, back.aged_out) == (1, 0) and back.appeared == first.appeared


def test_a_changed_database_is_noticed_and_an_interrupted_rescan_resumes(
    ctx: JobContext, sbom: dict[str, Any], test_images: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(1, 5):
        _store(ctx, sbom, _digest(i), now_iso())
    reg.rescan(ctx)
    assert ctx.settings.vulndb is not None
    install_db(advisory_dbs(test_images).all, ctx.settings.vulndb)
    assert reg.rescan_if_changed(ctx)  # queued (this queue runs nothing: the test runs the handler)

    real = reg.inventory_of_document
    calls = {"n": 0}

    def dies_on_the_third(doc: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the worker is stopped midway
        return real(doc)

    monkeypatch.setattr(reg, "inventory_of_document", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        reg.run_rescan_job(ctx, {})
    monkeypatch.setattr(reg, "inventory_of_document", real)
    rest = reg.rescan(ctx)
    assert rest.images == 2  # the two it had not reached
    totals = {reg.image_findings(ctx.store, _digest(i)).total for i in range(1, 5)}
    assert len(totals) == 1  # every image ends up with the same findings, none doubled


def test_new_critical_findings_are_published(ctx: JobContext, sbom: dict[str, Any], tmp_path: Path) -> None:
    """A critical advisory for a package the stored SBOM has (bash): published once, with its severity."""
    bash = next(p for p in sbom["packages"] if p["name"] == "bash" and p["type"] == "deb")
    entry = Affected(
        advisory_id="GARRISON-TEST-1",
        ecosystem="Debian:12",
        package_name=bash["source_name"] or "bash",
        ranges=(AffectedRange("ECOSYSTEM", (RangeEvent("introduced", "0"), RangeEvent("fixed", "99:9"))),),
    )
    db = build_test_db(tmp_path / "crit", [entry], [Advisory(id="GARRISON-TEST-1", severity=Severity.CRITICAL)])
    db.close()
    settings = replace(ctx.settings, vulndb=tmp_path / "crit" / "garrison.db")
    ctx = JobContext(ctx.store, ctx.queue, settings)
    admin = svc.init_admin(ctx.store)
    who = svc.authenticate(ctx.store, admin.secret)
    target = notify.create_target(
        ctx.store,
        settings,
        who,
        notify.TargetSpec("hook", "webhook", "http://127.0.0.1:1/hook", {}, ("image.findings.new",), "CRITICAL"),
    )
    _store(ctx, sbom, _digest(9), now_iso())
    result = reg.rescan(ctx)
    assert result.appeared == 1
    deliveries = notify.list_deliveries(ctx.store, target.id)
    assert deliveries.total == 1
    d = deliveries.items[0]
    assert "1 new critical finding in reg.example/team/app" in d.title
    assert d.data["severity"] == "CRITICAL" and d.data["findings"][0]["id"] == "GARRISON-TEST-1"
