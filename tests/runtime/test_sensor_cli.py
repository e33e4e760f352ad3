"""``garrison runtime sensor`` as a user runs it: a real process, the test alert, Ctrl-C, the summary."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from tests.runtime.test_sensor_support import need_root

pytestmark = pytest.mark.slow
GARRISON = [sys.executable, "-m", "garrison.cli.main"]


def _garrison_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("garrison")
    return [str(exe)] if exe.exists() else GARRISON


def test_sensor_cli_test_alert_and_clean_interrupt(tmp_path: Path) -> None:
    need_root()
    out = tmp_path / "alerts.jsonl"
    err = tmp_path / "err.txt"
    with open(err, "wb") as e:
        proc = subprocess.Popen(
            [*_garrison_cmd(), "runtime", "sensor", "-o", str(out), "--window", "1"],
            stdout=subprocess.DEVNULL,
            stderr=e,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while b"running" not in err.read_bytes():
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "the sensor did not start"
            time.sleep(0.2)
        m = uuid.uuid4().hex[:10]
        # The marker command runs until the alert is out (an alert is written when its window closes).
        while True:
            subprocess.run(["sh", "-c", f"echo GARRISON-TEST-ALERT-8D1E {m} >/dev/null"], check=True)
            if out.exists() and m in out.read_text():
                break
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    mine = [a for a in lines if m in a["output"]]
    assert mine and mine[0]["rule"] == "Garrison test alert"
    assert mine[0]["equivalents"]["defender"] == ["K8S.NODE_EICAR"]
    assert mine[0]["entities"]["container"] == "host"
    assert mine[0]["count"] >= 1 and mine[0]["source"] == "syscall"
    text = err.read_text()
    assert "garrison: sensor stopped:" in text
    assert re.search(r"lost \d+ \(\+\d+ overruns, \d+ file queue overflows\)", text), text
    assert " execs (" in text and "kernel events" in text


def test_sensor_cli_needs_root(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to drop to an unprivileged user with setpriv")
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *_garrison_cmd(), "runtime", "sensor"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "the node sensor needs root" in proc.stderr
