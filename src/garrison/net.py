"""The one way garrison speaks HTTP: a client factory and a retry helper, used by the registry client, the
advisory mirror fetch and the Docker Engine API client.

:func:`client` gives every client the same TLS trust (the system CAs, not certifi's bundle: corporate CAs
live in the system store, plus ``ca_file``; nothing with ``tls_skip_verify``), proxies from the environment
(``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, as httpx reads them), one ``User-Agent`` and
explicit timeouts. ``transport`` is httpx's seam: a unix socket for the Docker daemon, a function for
protocol tests (a client with its own transport uses no proxy).

:func:`send` retries what is worth retrying (dropped connections, timeouts, busy answers) with exponential
backoff, honouring ``Retry-After`` up to :data:`MAX_WAIT` seconds.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable

import httpx

from garrison import __version__
from garrison.config import Settings
from garrison.errors import UsageError

USER_AGENT = f"garrison/{__version__}"
#: Answers that mean "try again shortly".
BUSY = frozenset((429, 500, 502, 503, 504))
#: Attempts per request, the first included.
ATTEMPTS = 3
#: Seconds before the second attempt; doubled for each further one.
BACKOFF = 0.5
#: The longest ``Retry-After`` honoured, in seconds.
MAX_WAIT = 10.0
#: Transport errors retried by default: the request may not have reached the server, or its answer was lost.
RETRYABLE: tuple[type[Exception], ...] = (httpx.TransportError,)


def ssl_context(settings: Settings) -> ssl.SSLContext | bool:
    """What ``verify`` is for every client: False with ``tls_skip_verify``, else the system CAs plus
    ``ca_file``. A CA file that cannot be read is a usage error naming it."""
    if settings.tls_skip_verify:
        return False
    ctx = ssl.create_default_context()
    if settings.ca_file:
        try:
            ctx.load_verify_locations(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot load CA file {settings.ca_file}: {exc}") from None
    return ctx


def client(
    settings: Settings,
    *,
    timeout: httpx.Timeout,
    transport: httpx.BaseTransport | None = None,
    base_url: str = "",
    follow_redirects: bool = True,
) -> httpx.Client:
    """A client with garrison's TLS trust, proxies, user agent and ``timeout``."""
    return httpx.Client(
        verify=ssl_context(settings),
        timeout=timeout,
        transport=transport,
        base_url=base_url,
        follow_redirects=follow_redirects,
        headers={"User-Agent": USER_AGENT},
        trust_env=True,
    )


def backoff(attempt: int, retry_after: str = "") -> float:
    """Seconds to wait after failed attempt ``attempt`` (0-based): the server's ``Retry-After`` seconds
    when it gave some (at most :data:`MAX_WAIT`), else exponential."""
    if retry_after.strip().isdigit():
        return min(float(retry_after), MAX_WAIT)
    return float(BACKOFF * 2**attempt)


def send(
    http: httpx.Client,
    build: Callable[[], httpx.Request],
    *,
    retry_on: tuple[type[Exception], ...] = RETRYABLE,
    attempts: int | None = None,
) -> httpx.Response:
    """Send ``build()`` (streamed: the caller reads and closes the response) up to ``attempts`` times
    (default :data:`ATTEMPTS`): exceptions of ``retry_on`` and :data:`BUSY` answers are retried after
    :func:`backoff`. The last answer is returned whatever its status; the last exception propagates."""
    n = ATTEMPTS if attempts is None else attempts
    for attempt in range(n):
        last = attempt == n - 1
        try:
            resp = http.send(build(), stream=True)
        except retry_on:
            if last:
                raise
            time.sleep(backoff(attempt))
            continue
        if resp.status_code not in BUSY or last:
            return resp
        wait = backoff(attempt, resp.headers.get("retry-after", ""))
        resp.close()
        time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover - the last attempt returns or raises
