"""garrison.net: the one client factory and retry helper (the registry, mirror and Docker clients use them)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import garrison
from garrison import net
from garrison.config import Settings
from garrison.errors import UsageError


def _client(handler: httpx.MockTransport, **settings: object) -> httpx.Client:
    return net.client(Settings(**settings), timeout=httpx.Timeout(5.0), transport=handler)  # type: ignore[arg-type]


def test_busy_answers_are_retried_then_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net, "BACKOFF", 0.0)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503 if len(seen) < 3 else 200, headers={"Retry-After": "0"})

    with _client(httpx.MockTransport(answer)) as http:
        resp = net.send(http, lambda: http.build_request("GET", "https://example.invalid/x"))
        assert resp.status_code == 200 and len(seen) == net.ATTEMPTS
        assert {r.headers["User-Agent"] for r in seen} == {f"garrison/{garrison.__version__}"}
        seen.clear()
        always = net.send(http, lambda: http.build_request("GET", "https://example.invalid/x"), attempts=2)
        assert always.status_code == 503 and len(seen) == 2


def test_dropped_connections_are_retried_and_the_last_error_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net, "BACKOFF", 0.0)
    calls = 0

    def drop(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ReadError("connection reset", request=request)

    with _client(httpx.MockTransport(drop)) as http:
        with pytest.raises(httpx.ReadError):
            net.send(http, lambda: http.build_request("GET", "https://example.invalid/x"))
        assert calls == net.ATTEMPTS
        calls = 0
        with pytest.raises(httpx.ReadError):  # not in retry_on: one attempt
            net.send(http, lambda: http.build_request("GET", "https://x.invalid/"), retry_on=(httpx.TimeoutException,))
        assert calls == 1


def test_backoff() -> None:
    assert [net.backoff(a) for a in range(3)] == [net.BACKOFF, 2 * net.BACKOFF, 4 * net.BACKOFF]
    assert net.backoff(0, "3") == 3.0 and net.backoff(0, "3600") == net.MAX_WAIT
    assert net.backoff(1, "Wed, 21 Oct 2015 07:28:00 GMT") == 2 * net.BACKOFF


def test_tls_settings(tmp_path: Path) -> None:
    assert net.ssl_context(Settings(tls_skip_verify=True)) is False
    with pytest.raises(UsageError, match=r"cannot load CA file .*missing\.pem"):
        net.ssl_context(Settings(ca_file=str(tmp_path / "missing.pem")))
