"""A real ``garrison server run`` on 127.0.0.1 in a subprocess, over HTTP and over TLS."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests.support.certs import make_ca, make_leaf
from tests.support.procs import die_with_parent
from tests.support.registry import free_port

pytestmark = pytest.mark.slow


def _garrison(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "garrison.cli.main", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)


@contextmanager
def _serving(env: dict[str, str], *flags: str) -> Iterator[subprocess.Popen[str]]:
    cmd = [sys.executable, "-m", "garrison.cli.main", "server", "run", *flags]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(client: httpx.Client, url: str, proc: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            return client.get(url)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    e["GARRISON_DATA_DIR"] = str(tmp_path / "data")
    return e


def test_server_run_answers_health_and_refuses_anonymous(env: dict[str, str]) -> None:
    init = _garrison("server", "init", env=env)
    assert init.returncode == 0, init.stderr
    token = init.stdout.strip()
    port = free_port()
    with _serving(env, "--listen", f"127.0.0.1:{port}") as proc, httpx.Client(timeout=10) as client:
        base = f"http://127.0.0.1:{port}"
        health = _wait_healthy(client, f"{base}/healthz", proc)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert client.get(f"{base}/readyz").json() == {"status": "ready"}
        anon = client.get(f"{base}/api/v1/alerts")
        assert anon.status_code == 401 and anon.json()["status"] == 401
        ok = client.get(f"{base}/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json()["total"] == 0
        assert "/api/v1/events/k8s-audit" in client.get(f"{base}/openapi.json").json()["paths"]
    assert proc.stderr is not None
    log = proc.stderr.read()
    assert "Application shutdown complete" in log  # SIGTERM: a graceful shutdown (uvicorn then re-raises it)
    assert token not in log


def test_server_run_over_tls(env: dict[str, str], tmp_path: Path) -> None:
    assert _garrison("server", "init", env=env).returncode == 0
    ca = make_ca(tmp_path)
    leaf = make_leaf(ca, tmp_path, "server")
    port = free_port()
    flags = ("--listen", f"127.0.0.1:{port}", "--tls-cert", str(leaf.cert_file), "--tls-key", str(leaf.key_file))
    with (
        _serving(env, *flags) as proc,
        httpx.Client(timeout=10, verify=ssl.create_default_context(cafile=str(ca.cert_file))) as client,
    ):
        health = _wait_healthy(client, f"https://127.0.0.1:{port}/healthz", proc)
        assert health.status_code == 200
        assert client.get(f"https://127.0.0.1:{port}/api/v1/users").status_code == 401
