"""The benchmark's real parts: a private PostgreSQL cluster, a ``garrison server run`` (or ``garrison
admission serve``) subprocess on loopback, HTTP clients with keep-alive connections, and latency
statistics. Used by ``bench/bench_server.py``; nothing here is a test.

The PostgreSQL cluster is started like ``tests/server/postgres.py`` does, but with ``fsync`` left on (the
tests turn it off for speed; a benchmark of ingestion into PostgreSQL must pay for durable commits).
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.server import postgres  # noqa: E402  (after the path: the tests' helpers)
from tests.support.procs import die_with_parent  # noqa: E402
from tests.support.registry import free_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- statistics ------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0 to 100) of ``values``; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


@dataclass
class Latencies:
    """Request latencies (seconds) and errors of one measurement."""

    seconds: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""

    def ms(self, p: float) -> float:
        return percentile(self.seconds, p) * 1000

    def summary(self) -> str:
        n = len(self.seconds)
        err = f", {self.errors} errors" + (f" (first: {self.first_error})" if self.first_error else "")
        return (
            f"n={n} p50 {self.ms(50):.1f} ms, p90 {self.ms(90):.1f} ms, p99 {self.ms(99):.1f} ms, "
            f"max {self.ms(100):.1f} ms{err if self.errors else ''}"
        )


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children (``/proc/PID/stat``)."""
    try:
        fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command: state(0) ... utime(11) stime(12) cutime(13) cstime(14)
    return sum(int(x) for x in fields_[11:15]) / CLK_TCK


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its live children (a PostgreSQL postmaster and its backends)."""
    total = process_cpu(pid)
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                total += process_cpu(int(d.name))
    return total


# --- PostgreSQL ------------------------------------------------------------------------------------------

#: The data folders of the clusters this process started (for :func:`pg_cpu`).
_CLUSTERS: list[Path] = []


def postgres_missing() -> str:
    """ "" when a private cluster can be started here, else why not."""
    return postgres.available()


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise FileNotFoundError(name)


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def pg_cluster() -> Iterator[str]:
    """A private cluster on a free loopback port, durable (``fsync`` on, the default); yields its
    SQLAlchemy URL without a database name. Stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="garrison-bench-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = free_port()
    try:
        subprocess.run(
            _as_owner([_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
            check=True,
            capture_output=True,
            timeout=120,
        )
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c max_connections=200"
        start = [_pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"]
        subprocess.run(_as_owner(start), check=True, capture_output=True, timeout=60)
        _CLUSTERS.append(data)
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
        finally:
            stop = [_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
            subprocess.run(_as_owner(stop), check=False, capture_output=True, timeout=60)
            _CLUSTERS.remove(data)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def pg_cpu() -> float:
    """CPU seconds used so far by the clusters this process started (postmaster and backends)."""
    total = 0.0
    for data in _CLUSTERS:
        try:
            total += tree_cpu(int((data / "postmaster.pid").read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            continue
    return total


def pg_database(base: str, name: str) -> str:
    """A fresh database ``name`` in the cluster at ``base`` (dropped first if it exists)."""
    from sqlalchemy import create_engine, text

    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return f"{base}/{name}"


# --- the server ------------------------------------------------------------------------------------------


@dataclass
class Tokens:
    admin: str
    reader: str
    agent: str


def prepare_database(url: str, cluster: str = "bench") -> Tokens:
    """Migrate the database and create an admin, a security reader and an agent scoped to ``cluster``
    through the server's services (what ``garrison server init`` and ``user add`` do)."""
    from garrison.services import server as svc
    from garrison.store.db import migrate, open_engine
    from garrison.store.repos import SqlStore

    engine = open_engine(url)
    try:
        migrate(engine)
        store = SqlStore(engine)
        admin = svc.init_admin(store).secret
        reader = svc.create_user(store, svc.CLI_ACTOR, "bench-reader", "security-reader")[1].secret
        agent = svc.create_user(store, svc.CLI_ACTOR, "bench-agent", "agent", cluster=cluster)[1].secret
    finally:
        engine.dispose()
    return Tokens(admin, reader, agent)


@dataclass
class Process:
    """A server subprocess on 127.0.0.1."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    tls_ca: Path | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return process_cpu(self.proc.pid)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        """A new keep-alive connection (HTTPS when the server has TLS)."""
        if self.tls_ca is not None:
            ctx = ssl.create_default_context(cafile=str(self.tls_ca))
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def garrison_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "garrison.cli.main", *args]


def clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    env["GARRISON_DATA_DIR"] = str(data_dir)
    env["XDG_CACHE_HOME"] = str(data_dir / "cache")  # a cold layer cache, not the user's
    return env


@contextmanager
def serving(
    args: Sequence[str], workdir: Path, *, health: str = "/healthz", tls_ca: Path | None = None, port: int = 0
) -> Iterator[Process]:
    """Run ``garrison ARGS --listen 127.0.0.1:PORT`` (its output in a log file) until it answers
    ``health``; stopped (SIGTERM) on leaving."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = workdir / f"server-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            garrison_cmd(*args, "--listen", f"127.0.0.1:{port}"),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=clean_env(workdir / "data"),
            preexec_fn=die_with_parent,
        )
    p = Process(proc, port, log, tls_ca)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"garrison {' '.join(args[:2])} exited {proc.returncode}:\n{p.log_tail()}")
            try:
                conn = p.connection(timeout=2)
                conn.request("GET", health)
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except (OSError, http.client.HTTPException) as e:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"garrison {' '.join(args[:2])} never answered {health}:\n{p.log_tail()}") from e
                time.sleep(0.1)
        yield p
    finally:
        p.stop()


# --- requests --------------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """One keep-alive connection to a :class:`Process`, reconnecting after a failure."""

    def __init__(self, server: Process, token: str = "") -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None, ctype: str = "application/json") -> Answer:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = ctype
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = self.server.connection()
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("connection", "").lower() == "close":
                    self.close()
                return Answer(resp.status, data)
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def closed_loop(client: Client, paths: Sequence[str], n: int, warmup: int = 10) -> Latencies:
    """``n`` GETs one after another on one connection (cycling through ``paths``), after ``warmup``
    unmeasured ones: the latency of each request alone."""
    lat = Latencies()
    for i in range(warmup):
        client.get(paths[i % len(paths)])
    for i in range(n):
        t0 = time.perf_counter()
        try:
            a = client.get(paths[i % len(paths)])
        except (OSError, http.client.HTTPException) as e:
            lat.errors += 1
            lat.first_error = lat.first_error or type(e).__name__
            continue
        lat.seconds.append(time.perf_counter() - t0)
        if a.status != 200:
            lat.errors += 1
            lat.first_error = lat.first_error or f"HTTP {a.status}: {a.body[:120]!r}"
    return lat


@dataclass
class OpenLoopResult:
    latency: Latencies
    #: Requests per second actually sent.
    achieved_rps: float
    #: How far behind schedule the dispatcher fell at worst (seconds): a late client would hide latency.
    max_lag: float
    checked: int = 0


def open_loop(
    server: Process,
    method: str,
    path: str,
    bodies: Sequence[bytes],
    rate: float,
    *,
    connections: int = 16,
    check: Callable[[int, Answer], str] | None = None,
    token: str = "",
) -> OpenLoopResult:
    """Send ``bodies`` at ``rate`` requests per second on a schedule fixed in advance (open loop: a slow
    answer does not delay the next request), over ``connections`` keep-alive connections opened and
    warmed (TLS handshakes done) before the clock starts. Latency runs from the scheduled send time, so
    waiting for a free connection counts against the server. ``check(i, answer)`` returns "" or an error."""
    work: queue.Queue[int | None] = queue.Queue()
    lat = Latencies()
    lock = threading.Lock()
    scheduled: list[float] = [0.0] * len(bodies)
    ready = threading.Barrier(connections + 1)
    checked = 0

    def worker() -> None:
        nonlocal checked
        client = Client(server, token)
        try:
            client.request(method, path, bodies[0])  # the connection and its TLS handshake, not measured
        finally:
            ready.wait()
        while (i := work.get()) is not None:
            try:
                a = client.request(method, path, bodies[i])
                err = f"HTTP {a.status}: {a.body[:120]!r}" if a.status != 200 else (check(i, a) if check else "")
            except (OSError, http.client.HTTPException) as e:
                a, err = Answer(0, b""), type(e).__name__
            done = time.perf_counter()
            with lock:
                lat.seconds.append(done - scheduled[i])
                if err:
                    lat.errors += 1
                    lat.first_error = lat.first_error or err
                elif check is not None:
                    checked += 1
        client.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    ready.wait()
    start = time.perf_counter() + 0.05
    max_lag = 0.0
    for i in range(len(bodies)):
        at = start + i / rate
        scheduled[i] = at
        delay = at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        max_lag = max(max_lag, time.perf_counter() - at)
        work.put(i)
    sent_for = time.perf_counter() - start
    for _ in threads:
        work.put(None)
    for t in threads:
        t.join(timeout=60)
    return OpenLoopResult(lat, len(bodies) / sent_for if sent_for > 0 else 0.0, max_lag, checked)


_PATHS: set[str] = set()


def openapi_paths() -> set[str]:
    """The main server's routes (its OpenAPI document, built in-process over an empty database)."""
    if not _PATHS:
        from garrison.server.app import create_app
        from garrison.services.runtime import RuntimeOptions, load_ruleset
        from garrison.store.db import migrate, open_engine
        from garrison.store.repos import SqlStore

        engine = open_engine("sqlite://")
        try:
            migrate(engine)
            app = create_app(SqlStore(engine), load_ruleset(RuntimeOptions()))
            _PATHS.update(app.openapi()["paths"])
        finally:
            engine.dispose()
    return _PATHS
