"""Where alerts go besides standard output: a webhook that receives them as JSON.

The webhook is posted from a background thread through a bounded queue, so a slow or dead receiver never
holds up the audit receiver or the node sensor. Each POST carries a batch, ``{"alerts": [alert, …]}``
with the objects of :func:`garrison.report.alerts_jsonl.alert_line`, and is retried with the shared backoff
of :func:`garrison.net.send` (429 and 5xx answers, dropped connections). Nothing is lost silently:
:class:`SinkStats` counts what was delivered, what the receiver refused after every retry, and what the
full queue had to drop, and the CLI prints it at exit. The bearer token is sent in the ``Authorization``
header and never appears in a message.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

from garrison.config import Settings
from garrison.errors import UsageError
from garrison.report.alerts_jsonl import alert_line

if TYPE_CHECKING:
    import httpx

    from garrison.model.runtime import Alert

#: Alerts per POST at most.
BATCH = 100
#: Alerts waiting to be posted at most; beyond this they are dropped (and counted).
QUEUE_MAX = 10_000


@dataclass
class SinkStats:
    """What became of the alerts given to a sink."""

    #: Alerts the receiver accepted (a 2xx answer).
    delivered: int = 0
    #: Alerts in batches the receiver refused or could not be reached for, after every retry.
    failed: int = 0
    #: Alerts dropped because the queue was full (the receiver is slower than the alerts).
    dropped: int = 0
    #: The last failure, one line, without the token.
    last_error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def summary(self) -> str:
        """One line for the end of a run."""
        line = f"{self.delivered} delivered, {self.failed} failed, {self.dropped} dropped"
        return line + (f" (last error: {self.last_error})" if self.last_error else "")


class WebhookSink:
    """Posts alerts to ``url`` as JSON. Call it with each alert; :meth:`close` flushes and stops."""

    def __init__(
        self,
        url: str,
        *,
        token: str = "",
        settings: Settings | None = None,
        batch: int = BATCH,
        queue_max: int = QUEUE_MAX,
        attempts: int | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--webhook {url!r}: expected an http:// or https:// URL")
        self.url = url
        self.stats = SinkStats()
        self._token = token
        self._settings = settings or Settings()
        self._batch = batch
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=queue_max)
        self._transport = transport
        self._attempts = attempts
        self._thread = threading.Thread(target=self._run, name="garrison-webhook", daemon=True)
        self._thread.start()

    def __call__(self, alert: Alert) -> None:
        """Queue one alert; never blocks (a full queue drops it and counts the drop)."""
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            with self.stats._lock:
                self.stats.dropped += 1

    def close(self, timeout: float = 30.0) -> SinkStats:
        """Post what is queued (waiting up to ``timeout`` seconds), then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)
        return self.stats

    def _run(self) -> None:
        import httpx

        from garrison import net

        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        timeout = httpx.Timeout(10.0, connect=5.0)
        with net.client(self._settings, timeout=timeout, transport=self._transport) as http:
            done = False
            while not done:
                first = self._queue.get()
                pending: list[Alert] = []
                if first is None:
                    done = True
                else:
                    pending.append(first)
                while len(pending) < self._batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        done = True
                        break
                    pending.append(item)
                if pending:
                    self._post(http, headers, pending)

    def _post(self, http: httpx.Client, headers: dict[str, str], alerts: list[Alert]) -> None:
        import httpx

        from garrison import net

        body = orjson.dumps({"alerts": [alert_line(a) for a in alerts]})
        try:
            resp = net.send(
                http,
                lambda: http.build_request("POST", self.url, content=body, headers=headers),
                attempts=self._attempts,
            )
            try:
                ok = 200 <= resp.status_code < 300
                status = resp.status_code
            finally:
                resp.close()
            error = "" if ok else f"{self.url} answered {status}"
        except httpx.HTTPError as exc:
            ok, error = False, f"{self.url}: {type(exc).__name__}"
        with self.stats._lock:
            if ok:
                self.stats.delivered += len(alerts)
            else:
                self.stats.failed += len(alerts)
                self.stats.last_error = error
