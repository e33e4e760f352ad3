"""The webhook: the router in-process (FastAPI's TestClient), then ``garrison admission serve`` as a real
HTTPS server on 127.0.0.1 with a self-signed CA, called as the API server calls it."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.admission.recorded import NAMES, encode, exchange, needs_recorded, review
from tests.support.registry import free_port

from garrison.admission.policy import Policy, default_policy, parse_policy
from garrison.admission.review import BadReview, handle
from garrison.server.admission import parse_listen, parse_timeout, router

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    application = FastAPI()
    application.include_router(router(default_policy()))
    with TestClient(application) as c:
        yield c


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5.0), ("10s", 10.0), ("500ms", 0.5), ("1m", 30.0), ("1m30s", 30.0), ("2.5s", 2.5), (None, 30.0)],
)
def test_timeout_parameter(text: str | None, seconds: float) -> None:
    assert parse_timeout(text) == seconds


@pytest.mark.parametrize("text", ["5", "s", "-1s", "0s", "5sx", "five"])
def test_bad_timeout_parameter(text: str) -> None:
    with pytest.raises(BadReview, match="not a duration"):
        parse_timeout(text)


def test_listen_address() -> None:
    assert parse_listen("127.0.0.1:8443") == ("127.0.0.1", 8443)
    assert parse_listen("[::1]:9443") == ("::1", 9443)
    for bad in ("8443", "127.0.0.1:", "127.0.0.1:99999", ":8443"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_listen(bad)


@needs_recorded
@pytest.mark.parametrize("name", NAMES)
def test_router_answers_as_the_engine(client: TestClient, name: str) -> None:
    rec = exchange(name)
    body = encode(rec["body"])
    r = client.post("/admission" + rec["path"], content=body, headers=JSON)
    assert r.status_code == 200
    expected = handle(body, default_policy())[2]
    assert r.json() == expected
    assert r.json()["response"]["uid"] == rec["body"]["request"]["uid"]


@needs_recorded
def test_router_refuses_what_is_not_a_review(client: TestClient) -> None:
    r = client.post("/admission/validate", content=b"{oops", headers=JSON)
    assert r.status_code == 400
    assert "not JSON" in r.json()["detail"]
    r = client.post("/admission/validate", content=encode({"kind": "Pod"}), headers=JSON)
    assert r.status_code == 400
    r = client.post(
        "/admission/validate", content=encode(review("create-pod-priv")), headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 415
    r = client.post("/admission/validate?timeout=soon", content=encode(review("create-pod-priv")), headers=JSON)
    assert r.status_code == 400
    assert "timeout 'soon'" in r.json()["detail"]


@needs_recorded
def test_router_answers_504_when_the_verdict_misses_the_timeout(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import garrison.server.admission as server

    release = threading.Event()

    def stuck(body: bytes, policy: Policy) -> tuple[Any, Any, Any]:
        release.wait(10)
        return handle(body, policy)

    monkeypatch.setattr(server, "handle", stuck)
    try:
        r = client.post("/admission/validate?timeout=1s", content=encode(review("create-pod-priv")), headers=JSON)
    finally:
        release.set()
    assert r.status_code == 504
    assert r.json() == {"detail": "no verdict within the timeout"}


@needs_recorded
def test_router_refuses_oversized_bodies() -> None:
    application = FastAPI()
    application.include_router(
        router(parse_policy("version: 1\ndeny: {frameworks: [pss-baseline]}\nmaxRequestBytes: 2048\n", "t"))
    )
    with TestClient(application) as c:
        r = c.post("/admission/validate", content=encode(review("create-pod-priv")), headers=JSON)
        assert r.status_code == 400
        assert "larger than the limit of 2048 bytes" in r.json()["detail"]
        # Without a Content-Length (chunked), the limit holds while reading.
        big = encode(review("create-pod-priv"))
        r = c.post("/admission/validate", content=iter([big[:1500], big[1500:]]), headers=JSON)
        assert r.status_code == 400
        assert "larger than the limit" in r.json()["detail"]


# -- over real HTTPS ---------------------------------------------------------------------------------


def _garrison() -> list[str]:
    return [sys.executable, "-m", "garrison.cli.main"]


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ssl.SSLContext]]:
    """``garrison admission serve --self-signed`` on 127.0.0.1; (base URL, a context trusting only its CA)."""
    d = tmp_path_factory.mktemp("tls")
    port = free_port()
    proc = subprocess.Popen(
        [
            *_garrison(),
            "admission",
            "serve",
            "--self-signed",
            "--tls-cert",
            str(d / "tls.crt"),
            "--tls-key",
            str(d / "tls.key"),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("caBundle: "), line
        ca_pem = base64.b64decode(line.split(": ", 1)[1].strip())
        assert ca_pem.startswith(b"-----BEGIN CERTIFICATE-----")
        assert (d / "ca.crt").read_bytes() == ca_pem
        assert (d / "tls.key").stat().st_mode & 0o777 == 0o600
        ctx = ssl.create_default_context(cadata=ca_pem.decode())
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/healthz", verify=ctx, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"the webhook did not start: {err}")
            time.sleep(0.1)
        yield url, ctx
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@needs_recorded
def test_recorded_requests_over_https(webhook: tuple[str, ssl.SSLContext]) -> None:
    url, ctx = webhook
    verdicts = {}
    with httpx.Client(verify=ctx, timeout=10) as c:
        for name in NAMES:
            rec = exchange(name)
            headers = {k: v for k, v in rec["headers"].items() if k.lower() in ("content-type", "accept", "user-agent")}
            r = c.post(url + "/admission" + rec["path"], content=encode(rec["body"]), headers=headers)
            assert r.status_code == 200, r.text
            doc = r.json()
            assert doc == handle(encode(rec["body"]), default_policy())[2]
            assert doc["response"]["uid"] == rec["body"]["request"]["uid"]
            verdicts[name] = doc["response"]["allowed"]
        r = c.post(url + "/admission/validate?timeout=5s", content=b"[]", headers=JSON)
        assert r.status_code == 400
    assert verdicts == {
        "create-deployment-web": True,
        "create-pod-hostpath": False,
        "create-pod-priv": False,
        "update-deployment-web": True,
        "update-pod-priv": False,
    }


@pytest.mark.slow
def test_https_is_verified_against_the_printed_ca(webhook: tuple[str, ssl.SSLContext]) -> None:
    url, _ = webhook
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{url}/healthz", verify=True, timeout=5)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url.replace("https://", "http://") + "/healthz", timeout=5)


def test_serve_refuses_a_bad_policy_before_listening(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("version: 1\ndeny: {frameworks: [nope]}\n", encoding="utf-8")
    r = subprocess.run(
        [
            *_garrison(),
            "admission",
            "serve",
            "--tls-cert",
            str(tmp_path / "c"),
            "--tls-key",
            str(tmp_path / "k"),
            "--policy",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert "admission policy" in r.stderr and "unknown framework 'nope'" in r.stderr


def test_serve_needs_a_certificate(tmp_path: Path) -> None:
    r = subprocess.run(
        [*_garrison(), "admission", "serve", "--tls-cert", str(tmp_path / "c"), "--tls-key", str(tmp_path / "k")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert "no such file" in r.stderr and "--self-signed" in r.stderr
    (tmp_path / "c").write_text("not a certificate", encoding="utf-8")
    (tmp_path / "k").write_text("not a key", encoding="utf-8")
    r = subprocess.run(
        [*_garrison(), "admission", "serve", "--tls-cert", str(tmp_path / "c"), "--tls-key", str(tmp_path / "k")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert "not a usable pair" in r.stderr
