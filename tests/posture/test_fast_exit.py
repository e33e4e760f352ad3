"""The console script's ``garrison posture`` ends with ``os._exit`` once its output is flushed
(``cli/main.py``'s ``_exit_now``): nothing of the report may be lost, the exit code is the command's,
and in-process callers of ``run`` are never ended."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

from garrison.cli.main import run

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers: [{name: c, image: "nginx:latest", securityContext: {privileged: true}}]
"""

SCRIPT = "import sys\nfrom garrison.cli.main import main\nsys.exit(main())\n"


def _garrison(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120, check=False
    )


def _manifests(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text("---\n".join(DEPLOYMENT.replace("name: web", f"name: web-{i}") for i in range(n)))
    return path


def test_the_whole_report_reaches_a_pipe_and_the_gate_code_is_kept(tmp_path: Path) -> None:
    src = _manifests(tmp_path, 300)  # a report of several pipe buffers, still in Python's buffer at the end
    got = _garrison("posture", str(src), "-f", "json", "-q", "--exit-code", "7")
    assert got.returncode == 7, got.stderr
    doc = json.loads(got.stdout)
    assert len({f["subject"]["name"] for f in doc["findings"]}) == 300
    out = tmp_path / "out.json"
    assert run(["posture", str(src), "-f", "json", "-o", str(out), "-q"]) == 0
    ref = json.loads(out.read_text(encoding="utf-8"))
    assert [f["fingerprint"] for f in doc["findings"]] == [f["fingerprint"] for f in ref["findings"]]


def test_the_output_file_is_complete_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    out = tmp_path / "r" / "out.json"
    got = _garrison("posture", str(_manifests(tmp_path, 50)), "-f", "json", "-o", str(out), "-q")
    assert got.returncode == 0, got.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["findings"]
    assert [p.name for p in out.parent.iterdir()] == ["out.json"]


def test_warnings_on_standard_error_are_flushed(tmp_path: Path) -> None:
    src = _manifests(tmp_path, 1)
    (tmp_path / "bad.yaml").write_text("kind: [unclosed\n")
    got = _garrison("posture", str(tmp_path), "-f", "json", "-q")
    assert "garrison: warning:" in got.stderr
    assert json.loads(got.stdout)["findings"]
    assert src.exists()


def test_in_process_runs_return(tmp_path: Path) -> None:
    assert gc.isenabled()
    code = run(["posture", str(_manifests(tmp_path, 2)), "-f", "json", "-o", str(tmp_path / "o.json"), "-q"])
    assert code == 0  # still here: only the console script's run may end the process
    assert gc.isenabled()  # the assessment turned the collector off; a process that goes on gets it back


def test_closed_standard_streams_are_not_an_error(tmp_path: Path) -> None:
    out = tmp_path / "o.json"
    got = subprocess.run(
        [sys.executable, "-c", SCRIPT, "posture", str(_manifests(tmp_path, 2)), "-f", "json", "-o", str(out), "-q"],
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
        close_fds=True,
        preexec_fn=lambda: os.close(1),  # started with standard output closed: sys.stdout is None
    )
    assert got.returncode == 0, got.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["findings"]
