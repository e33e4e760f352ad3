"""Ctrl-C during `garrison db update` on the real mirror: exit 130, no traceback from the worker processes,
and nothing half-written. (How much faster the exit became when queued chunks are cancelled was measured by
hand in a terminal, about 10 s to 2 s; this test does not tell the two apart reliably.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.test_oracle_support import have_mirror, mirror_zip


@pytest.mark.slow
@pytest.mark.skipif(not have_mirror(), reason="../shared/vulndb is not present")
def test_sigint_during_build_exits_promptly_and_cleans_up(tmp_path: Path) -> None:
    mirror = mirror_zip("Debian").parent.parent
    db = tmp_path / "db" / "garrison.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "garrison.cli.main",
            "-q",
            "db",
            "update",
            "--mirror",
            mirror.resolve().as_uri(),
            "--db",
            str(db),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "GARRISON_CONFIG": "/nonexistent"},
        start_new_session=True,  # its own process group, so Ctrl-C can be delivered as a terminal does
    )
    deadline = time.monotonic() + 120
    while not list(db.parent.glob(".garrison.db.tmp-*")):  # the build has started writing
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the build never started"
        time.sleep(0.05)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # like Ctrl-C: the parent and its worker processes
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    # How fast it stops (the cancelled queue) is a latency, measured by hand and in the note, not asserted
    # here: a timing bound failed under load. The behaviour is: exit 130, no traceback, nothing left behind.
    assert "interrupted" in err and "Traceback" not in err
    assert not db.exists()
    assert not list(db.parent.glob(".garrison.db.tmp-*"))
