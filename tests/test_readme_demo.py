"""The README's first command, run as written: it must set up, build the demo image and scan it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from tests.test_oracle_support import have_mirror

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(not have_mirror(), reason="../shared/vulndb is not present (the demo's offline mirror)")
def test_demo_script_runs_end_to_end(tmp_path: Path, test_images: object) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GARRISON_MIRROR"}
    env["GARRISON_CACHE_DIR"] = str(tmp_path / "cache")  # a fresh advisory database and layer cache
    proc = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "(Debian GNU/Linux 12 (bookworm))" in out
    assert "| Name " in out  # the SBOM table
    assert "packages scanned" in out and "CVE-" in out  # the vulnerability table, HIGH and CRITICAL only
    assert (tmp_path / "cache" / "db" / "garrison.db").is_file()
