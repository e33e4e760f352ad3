"""The README's server walk-through, run as written (``scripts/server-demo.sh``): a real server, a real
registry whose push notifications get the image scanned, real audit events raising alerts, and triage
by role."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.test_oracle_support import have_mirror

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT.parent / "shared" / "k8s" / "recorded" / "audit-events.jsonl"


@pytest.mark.slow
@pytest.mark.skipif(not have_mirror(), reason="../shared/vulndb is not present (the demo's offline mirror)")
@pytest.mark.skipif(not EVENTS.is_file(), reason="../shared/k8s is not present (the recorded audit events)")
@pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is not installed")
def test_server_demo_runs_end_to_end(test_images: object) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_DATA")}
    proc = subprocess.run(
        ["bash", "scripts/server-demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert re.search(r"scanned \d+ ms after the push", out), out
    assert '"tags":["1"]' in out and '"packages":193' in out  # the pushed image, stored with its tag
    assert "HIGH\tvulnerability\tCVE-" in out  # its findings through the API
    assert '"events":129' in out and '"new_alerts":9' in out  # the recorded audit events raised alerts
    assert "(HTTP 403)" in out  # the reader may not dismiss
    assert '"status":"dismissed","dismissed_by":"sam"' in out  # the security admin may
    assert re.search(r"sam\talert\.dismiss\talert \d+\tthe shop team's debug pod, removed", out)
