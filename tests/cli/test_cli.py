"""The command line, run in-process (``garrison.cli.main.run``) and as a real subprocess where start-up
behaviour is what is tested. Real images from tests/support and the real advisory data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.images import BuiltImages
from tests.support.shared import needs_vulndb
from tests.test_oracle_support import real_db_path

from garrison.cli.main import run

ROOT = Path(__file__).resolve().parents[2]
needs_mirror = needs_vulndb


def _garrison(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "garrison.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "GARRISON_CONFIG": os.devnull},
        timeout=300,
    )


def test_help_imports_nothing_heavy() -> None:
    """`garrison --help` must be instant: no network, YAML, rich or database modules at start-up."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "garrison.cli.main", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert "garrison" in proc.stdout and "sbom" in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    for heavy in ("httpx", "rich", "yaml", "sqlite3", "cyclonedx", "garrison.vulndb.store", "garrison.inventory.scan"):
        assert heavy not in imported, heavy


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["version"]) == 0
    assert capsys.readouterr().out.startswith("garrison ")


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([]) == 2
    assert "usage:" in capsys.readouterr().err


def test_sbom_json_to_file(test_images: BuiltImages, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "debian.json"
    cache = str(tmp_path / "c")
    code = run(["-q", "sbom", test_images.debian_oci_ref, "-f", "json", "-o", str(out), "--cache-dir", cache])
    assert code == 0
    assert capsys.readouterr().out == ""  # the report went to the file only
    doc = json.loads(out.read_text())
    assert doc["schema"] == "garrison.inventory/v1"
    debs = [p for p in doc["packages"] if p["type"] == "deb"]
    assert len(debs) == 88
    assert doc["os"]["family"] == "debian" and doc["os"]["version_id"] == "12"
    assert not list(out.parent.glob(".debian.json.*"))  # no temporary file left behind


def test_missing_source_is_one_line_exit_3(tmp_path: Path) -> None:
    proc = _garrison("sbom", f"oci:{tmp_path / 'nope'}", "--cache-dir", str(tmp_path / "c"))
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("garrison: error:"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_debug_shows_traceback(tmp_path: Path) -> None:
    proc = _garrison("--debug", "sbom", f"oci:{tmp_path / 'nope'}", "--cache-dir", str(tmp_path / "c"))
    assert proc.returncode == 3
    assert "Traceback" in proc.stderr


def test_plain_http_registry_refused_without_flag(tmp_path: Path) -> None:
    """A registry that speaks plain HTTP (here a real HTTP server on loopback) is refused over TLS with the
    flag that allows it; a port nobody listens on is a plain connection error, without that hint."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{server.server_address[1]}"
    try:
        proc = _garrison("sbom", f"{host}/app:1", "--cache-dir", str(tmp_path / "c"))
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 3
    assert "speak plain HTTP" in proc.stderr and f"--insecure-registry {host}" in proc.stderr
    assert "Traceback" not in proc.stderr
    closed = _garrison("sbom", f"{host}/app:1", "--cache-dir", str(tmp_path / "c"))
    assert closed.returncode == 3
    assert f"{host}: cannot connect" in closed.stderr and "--insecure-registry" not in closed.stderr


def test_db_status_without_database_exit_4(tmp_path: Path) -> None:
    proc = _garrison("db", "status", "--db", str(tmp_path / "none.db"))
    assert proc.returncode == 4
    assert "garrison db update" in proc.stderr


@needs_mirror
def test_scan_exit_code_gate_and_filters(
    test_images: BuiltImages, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(real_db_path())
    base = ["-q", "scan", "image", test_images.app_oci_ref, "--db", db, "--offline", "--cache-dir", str(tmp_path / "c")]
    # The app image has HIGH findings (urllib3 1.23, Jinja2 2.10 …): the gate trips with the chosen code.
    assert run([*base, "--severity", "HIGH,CRITICAL", "--exit-code", "7", "-f", "json"]) == 7
    report = json.loads(capsys.readouterr().out)
    assert report["findings"] and {f["severity"] for f in report["findings"]} <= {"HIGH", "CRITICAL"}
    # Without --exit-code the same findings exit 0.
    assert run([*base, "--severity", "HIGH", "-f", "json"]) == 0
    capsys.readouterr()
    # An ignore file that suppresses every remaining id opens the gate.
    ids = sorted({f["rule"]["id"] for f in report["findings"]})
    ignore = tmp_path / "ignore.yaml"
    ignore.write_text("ignore:\n" + "".join(f"  - id: {i}\n    reason: accepted risk\n" for i in ids))
    code = run([*base, "--severity", "HIGH,CRITICAL", "--ignore-file", str(ignore), "--exit-code", "7", "-f", "json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []


@needs_mirror
def test_scan_sarif_output(test_images: BuiltImages, tmp_path: Path) -> None:
    out = tmp_path / "app.sarif"
    db = str(real_db_path())
    code = run(
        [
            "-q",
            "scan",
            "image",
            test_images.app_oci_ref,
            "--db",
            db,
            "--offline",
            "-f",
            "sarif",
            "-o",
            str(out),
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    assert code == 0
    sarif = json.loads(out.read_text())
    assert sarif["version"] == "2.1.0"
    assert any(r["ruleId"].startswith("CVE-") for r in sarif["runs"][0]["results"])


def test_bad_ignore_file_exit_5(test_images: BuiltImages, tmp_path: Path) -> None:
    bad = tmp_path / "ignore.yaml"
    bad.write_text("ignore: [ {id: 3, expires: not-a-date} ]\n")
    proc = _garrison(
        "scan",
        "image",
        test_images.debian_oci_ref,
        "--ignore-file",
        str(bad),
        "--offline",
        "--db",
        str(tmp_path / "none.db"),
        "--cache-dir",
        str(tmp_path / "c"),
    )
    assert proc.returncode == 5, proc.stderr
    assert proc.stderr.startswith("garrison: error:")


def test_offline_without_database_exit_4(test_images: BuiltImages, tmp_path: Path) -> None:
    proc = _garrison(
        "scan",
        "image",
        test_images.debian_oci_ref,
        "--offline",
        "--db",
        str(tmp_path / "none.db"),
        "--cache-dir",
        str(tmp_path / "c"),
    )
    assert proc.returncode == 4, proc.stderr


@pytest.mark.slow  # builds crafted images
def test_warnings_reach_the_user_once(tmp_path: Path) -> None:
    """Skipped files are reported: on stderr for machine formats, inside the table (not twice) for tables."""
    from tests.support import crafted

    ref = crafted.oci_ref(crafted.huge_dpkg_status_image())
    as_json = _garrison("-q", "sbom", ref, "-f", "json", "--cache-dir", str(tmp_path / "c"))
    assert as_json.returncode == 0, as_json.stderr
    assert "garrison: warning:" in as_json.stderr and "var/lib/dpkg/status" in as_json.stderr
    as_table = _garrison("-q", "sbom", ref, "--cache-dir", str(tmp_path / "c"))
    assert as_table.returncode == 0
    assert "warning:" in as_table.stdout and "var/lib/dpkg/status" in as_table.stdout
    assert "warning" not in as_table.stderr


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_reader_closing_the_pipe_early_is_not_an_error(test_images: BuiltImages, tmp_path: Path, fmt: str) -> None:
    """`garrison sbom IMAGE | head` must not fail a `set -o pipefail` script (rich would exit 1)."""
    cmd = [
        sys.executable,
        "-m",
        "garrison.cli.main",
        "-q",
        "sbom",
        test_images.app_oci_ref,
        "-f",
        fmt,
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(64)
    proc.stdout.close()  # the reader goes away long before the ~200-package report is written
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert b"Traceback" not in err
