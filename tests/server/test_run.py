"""A real ``garrison server run`` on 127.0.0.1 in a subprocess, on SQLite and on PostgreSQL: HTTP, a given
certificate, the self-signed one verified against the CA it printed, ``/metrics`` with a token, JSON
logs without a token in them, and SIGTERM → a graceful stop (a request in flight is finished) with exit
code 0."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from tests.support.certs import make_ca, make_leaf
from tests.support.procs import die_with_parent
from tests.support.registry import free_port

pytestmark = pytest.mark.slow


def _garrison(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "garrison.cli.main", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)


class Running:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log_file = log

    @property
    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """The JSON lines logged so far (``--log-format json``)."""
        return [json.loads(line) for line in self.log.splitlines() if line.startswith("{")]

    def stop(self) -> int:
        """SIGTERM, and the exit code (a generous bound, not a timing assertion: a hang fails)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@contextmanager
def _serving(env: dict[str, str], tmp: Path, *flags: str) -> Iterator[Running]:
    cmd = [sys.executable, "-m", "garrison.cli.main", "server", "run", *flags]
    log = tmp / f"server-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out, preexec_fn=die_with_parent)
    try:
        yield Running(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_healthy(client: httpx.Client, url: str, run: Running) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        if run.proc.poll() is not None:
            raise AssertionError(f"server exited {run.proc.returncode}: {run.log}")
        try:
            return client.get(url)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """SQLite in the data folder (TLS does not depend on the database)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    e["GARRISON_DATA_DIR"] = str(tmp_path / "data")
    e["GARRISON_CONFIG"] = os.devnull
    return e


@pytest.fixture
def db_env(env: dict[str, str], database_url: str) -> dict[str, str]:
    """SQLite, and PostgreSQL (a private cluster) when it can run here."""
    return {**env, "GARRISON_DATABASE_URL": database_url}


def _wait_for(run: Running, text: str, after: Any = None) -> None:
    """Call ``after``, then wait until ``text`` is in the server's log."""
    if after is not None:
        after()
    deadline = time.monotonic() + 30
    while text not in run.log:
        assert time.monotonic() < deadline, f"no {text!r} in {run.log}"
        time.sleep(0.05)


def _metrics(client: httpx.Client, url: str, token: str) -> str:
    r = client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.text


def test_server_run_serves_metrics_logs_json_and_stops_on_sigterm(db_env: dict[str, str], tmp_path: Path) -> None:
    env = db_env
    init = _garrison("server", "init", env=env)
    assert init.returncode == 0, init.stderr
    token = init.stdout.strip()
    reader = _garrison("server", "user", "add", "prometheus", "--role", "security-reader", env=env).stdout.strip()
    port = free_port()
    flags = ("--listen", f"127.0.0.1:{port}", "--log-format", "json")
    with _serving(env, tmp_path, *flags) as run, httpx.Client(timeout=10) as client:
        base = f"http://127.0.0.1:{port}"
        health = _wait_healthy(client, f"{base}/healthz", run)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert client.get(f"{base}/readyz").json() == {"status": "ready"}
        anon = client.get(f"{base}/api/v1/alerts")
        assert anon.status_code == 401 and anon.json()["status"] == 401
        ok = client.get(f"{base}/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json()["total"] == 0
        assert client.get(f"{base}/metrics").status_code == 401
        text = _metrics(client, f"{base}/metrics", reader)
        assert 'garrison_http_requests_total{method="GET",route="/api/v1/alerts",status="200"} 1.0' in text
        assert 'garrison_alerts{status="dismissed"} 0.0' in text
        assert "garrison_build_info{" in text
        # A request in flight when SIGTERM comes is finished: its body arrives after the shutdown began.
        body = json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": []}).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            head = (
                f"POST /api/v1/events/k8s-audit HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            conn.sendall(head.encode() + body[:10])
            _wait_for(run, "Shutting down", after=lambda: run.proc.send_signal(signal.SIGTERM))
            conn.sendall(body[10:])
            answer = conn.recv(65536).decode()
        assert answer.startswith("HTTP/1.1 200 "), answer
        assert run.proc.wait(timeout=30) == 0  # then it stopped by itself (a bound, not a timing assertion)
    lines = run.events()
    assert lines, run.log
    requests = [x for x in lines if x["logger"] == "garrison.server.requests"]
    assert {(x["route"], x["status"], x["user"]) for x in requests} >= {
        ("/api/v1/alerts", 401, ""),
        ("/api/v1/alerts", 200, "admin"),
        ("/metrics", 200, "prometheus"),
        ("/api/v1/events/k8s-audit", 200, "admin"),  # the one finished during the shutdown
    }
    messages = [x["message"] for x in lines]
    assert any(m.startswith("serving http://127.0.0.1:") for m in messages)
    assert "Application shutdown complete." in messages  # uvicorn's graceful shutdown ran
    assert messages[-1] == "stopped" and lines[-1]["signal"] == "SIGTERM"
    for secret in (token, reader):
        assert secret not in run.log


def _ca_fingerprint(pem: bytes) -> str:
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def test_self_signed_tls_verified_against_the_printed_ca(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    flags = ("--listen", f"127.0.0.1:{port}", "--tls-self-signed", "--log-format", "json")
    fingerprints = []
    for attempt in ("made", "reused"):
        with _serving(env, tmp_path, *flags) as run:
            deadline = time.monotonic() + 30
            while not any(x.get("sha256") for x in run.events()):
                assert run.proc.poll() is None and time.monotonic() < deadline, run.log
                time.sleep(0.1)
            said = next(x for x in run.events() if x.get("sha256"))
            assert said["message"] == f"self-signed TLS certificate {attempt}"
            ca = Path(said["ca"])
            assert ca.parent == tmp_path / "data" / "tls"
            assert _ca_fingerprint(ca.read_bytes()) == said["sha256"]
            assert (ca.parent / "server.key").stat().st_mode & 0o777 == 0o600
            fingerprints.append(said["sha256"])
            context = ssl.create_default_context(cafile=str(ca))
            with httpx.Client(timeout=10, verify=context) as client:
                health = _wait_healthy(client, f"https://127.0.0.1:{port}/healthz", run)
                assert health.status_code == 200
                assert client.get(f"https://127.0.0.1:{port}/api/v1/users").status_code == 401
            with httpx.Client(timeout=10) as untrusting, pytest.raises(httpx.ConnectError):
                untrusting.get(f"https://127.0.0.1:{port}/healthz")  # the system's CAs do not know it
            assert run.stop() == 0
    assert fingerprints[0] == fingerprints[1]  # made once, kept


def test_self_signed_never_replaces_a_file_that_is_not_ours(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "data" / "tls"
    folder.mkdir(parents=True)
    theirs = folder / "server.crt"
    theirs.write_text("someone's certificate\n")
    r = _garrison("server", "run", "--listen", f"127.0.0.1:{free_port()}", "--tls-self-signed", env=env)
    assert r.returncode == 2
    assert "was not made by garrison" in r.stderr and str(theirs) in r.stderr
    assert theirs.read_text() == "someone's certificate\n"


def test_server_run_over_tls_with_a_given_certificate(env: dict[str, str], tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    leaf = make_leaf(ca, tmp_path, "server")
    port = free_port()
    flags = ("--listen", f"127.0.0.1:{port}", "--tls-cert", str(leaf.cert_file), "--tls-key", str(leaf.key_file))
    with _serving(env, tmp_path, *flags) as run:
        context = ssl.create_default_context(cafile=str(ca.cert_file))
        with httpx.Client(timeout=10, verify=context) as client:
            health = _wait_healthy(client, f"https://127.0.0.1:{port}/healthz", run)
            assert health.status_code == 200
            assert client.get(f"https://127.0.0.1:{port}/api/v1/users").status_code == 401
        # (an idle TLS connection left open would hold the stop up to --shutdown-grace: asyncio waits
        # for the client's close_notify)
        assert run.stop() == 0
    assert "Application shutdown complete" in run.log
