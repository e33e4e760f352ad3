"""The read-ahead (``posture/readahead.py``): what the second process reads is what a serial
``load_source`` reads, whatever it could not read is left to the caller, it never outlives the run,
and ``garrison posture`` writes the same report with it as without it."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import threading
from pathlib import Path

import pytest

from garrison.cli.main import run
from garrison.posture import readahead
from garrison.posture.inputs import Loaded, is_local, load_source
from garrison.report import json_report
from garrison.services.posture import assess

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or readahead._cpus() < 2, reason="the read-ahead needs fork and a second CPU"
)

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  template:
    spec:
      containers: [{name: c, image: "nginx:latest", securityContext: {privileged: true}}]
"""


@pytest.fixture
def single_threaded() -> None:
    """The read-ahead declines to fork while other threads run (a lock one of them holds would stay
    held in the child): a test that left a server thread behind makes these checks moot, not wrong."""
    if threading.active_count() > 1:
        pytest.skip(f"{threading.active_count() - 1} other threads alive: the read-ahead does not fork")


def test_no_fork_while_other_threads_run(tmp_path: Path) -> None:
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert readahead.start((str(_tree(tmp_path / "m")),), min_bytes=0) is None
    finally:
        stop.set()
        t.join()


def _tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.yaml").write_text(DEPLOYMENT + "---\n- just a list\n---\nkind: List\nitems: []\n")
    (root / "sub" / "b.json").write_text(json.dumps({"kind": "Namespace", "metadata": {"name": "x"}}))
    (root / "sub" / "bad.yaml").write_text("kind: [unclosed\n")
    (root / "Dockerfile").write_text("FROM nginx:latest\nUSER root\n")
    (root / "é 日本.yml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: 'p\\u00e9'}\nspec: {hostPID: yes}\n")
    return root


def _same(a: Loaded, b: Loaded) -> None:
    assert (a.documents, a.files, a.skipped, a.warnings) == (b.documents, b.files, b.skipped, b.warnings)
    got = [(r.obj, r.source, r.line, r.document, r.cluster, r.host, r.kind, r.name) for r in a.resources]
    want = [(r.obj, r.source, r.line, r.document, r.cluster, r.host, r.kind, r.name) for r in b.resources]
    assert got == want


@pytest.mark.usefixtures("single_threaded")
@pytest.mark.parametrize("head_start", [readahead.IMPORT_BYTES, 0, 10**9])  # the child reads all, half, none
def test_what_is_read_ahead_is_what_load_source_reads(tmp_path: Path, head_start: int) -> None:
    root = _tree(tmp_path / "m")
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps({"kind": "List", "items": [json.loads(json.dumps({"kind": "Pod", "spec": {}}))]}))
    specs = (str(root), f"snapshot:{snap}", str(root / "a.yaml"), str(root))
    ahead = readahead.start(specs, min_bytes=0, head_start=head_start)
    assert ahead is not None
    try:
        for spec in specs:  # the same folder twice: each occurrence has its own result
            got = ahead.take(spec)
            assert got is not None
            _same(got, load_source(spec))
        assert ahead.take(str(root)) is None  # nothing left for a third occurrence
    finally:
        ahead.close()


@pytest.mark.usefixtures("single_threaded")
def test_what_the_child_cannot_read_is_left_to_the_caller(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    assert not is_local("-") and not is_local("cluster") and not is_local("docker:unix:///x.sock")
    assert is_local(missing) and is_local("snapshot:x.json")
    ahead = readahead.start(("-", missing, "cluster:ctx", str(_tree(tmp_path / "m"))), min_bytes=0)
    assert ahead is not None
    try:
        assert ahead.take("-") is None
        assert ahead.take(missing) is None  # the caller's own load_source raises the error
        assert ahead.take("cluster:ctx") is None
        assert ahead.take(str(tmp_path / "m")) is not None
    finally:
        ahead.close()
    assert readahead.start(("-", "cluster"), min_bytes=0) is None  # nothing local: no second process
    assert readahead.start((str(tmp_path / "m"),)) is None  # too little to pay for a second process


@pytest.mark.usefixtures("single_threaded")
def test_close_before_take_stops_and_reaps_the_child(tmp_path: Path) -> None:
    ahead = readahead.start((str(_tree(tmp_path / "m")),), min_bytes=0)
    assert ahead is not None
    pid = ahead._pid
    ahead.close()
    ahead.close()  # twice is fine
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie left behind
    assert ahead.take(str(tmp_path / "m")) is None


def test_the_cli_report_is_the_serial_report(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m")
    many = "---\n".join(DEPLOYMENT.replace("name: web", f"name: web-{i}") for i in range(400))
    (root / "many.yaml").write_text(many)
    assert len(many) > 2 * readahead.MIN_BYTES  # enough for the CLI to read ahead
    out = tmp_path / "out.json"
    assert run(["posture", str(root), str(root / "a.yaml"), "-f", "json", "-o", str(out), "-q"]) == 0
    cli = json.loads(out.read_text(encoding="utf-8"))
    serial = assess((str(root), str(root / "a.yaml")))  # no read-ahead
    buf = io.StringIO()
    json_report.render(dataclasses.replace(serial, generated_at=cli["generated_at"]), buf)
    assert cli == json.loads(buf.getvalue())
    assert cli["findings"] and cli["warnings"]


def test_a_missing_source_is_the_usual_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["posture", str(tmp_path / "nope"), "-q"]) != 0
    assert "no such file or directory" in capsys.readouterr().err


def test_the_fork_checks_run_in_a_fresh_process_when_this_one_has_threads() -> None:
    """In the whole suite other tests leave threads behind (servers, queues), so the checks above skip
    here: they are then run again in a fresh interpreter, where nothing else runs, so that the fork
    path is tested in every full run, not only when this file runs alone."""
    if threading.active_count() == 1:
        pytest.skip("this process has no other thread: the checks above ran here")
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "not fresh_process"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    summary = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-500:]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]
    assert "passed" in summary and "skipped" not in summary, summary
