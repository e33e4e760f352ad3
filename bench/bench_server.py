"""The garrison server's benchmark (issue 9, "Performance"): every measurement against its target, in one run.

    .venv/bin/python bench/bench_server.py            # everything: ~5 min on an idle 2-core machine (10 at load 10)
    .venv/bin/python bench/bench_server.py --quick    # smaller sizes: ~3 min idle, 6 at load 10
    .venv/bin/python bench/bench_server.py --only ingest,api   # some parts (ingest, api, admission, rescan, push)
    .venv/bin/python bench/bench_server.py --keep     # keep the work folder (the servers' logs)

Everything runs against real parts on loopback: ``garrison server run`` and ``garrison admission serve`` as
subprocesses (their CPU read from ``/proc``), a private PostgreSQL 15 cluster started for the run (``fsync``
on, unlike the tests' cluster; removed afterwards), SQLite files in a temporary folder, Debian's
``docker-registry``, skopeo, the test images of ``tests/support/images.py`` and advisory databases built
from the OSV mirror in ``../shared/vulndb`` (``tests/server/test_registry_support.py``).

1. **Alert ingestion** (target ≥ 5,000 events/s into PostgreSQL; SQLite for comparison): the 129 audit events
   recorded from a real kube-apiserver, replayed round after round with new audit IDs and times and their
   own namespace, user, source address and object names (so rules match many objects: new alerts, and the
   same object again: folded into a stored one), in ``EventList`` batches of 100-400 events POSTed to
   ``/api/v1/events/k8s-audit`` by a cluster agent's token over 4 keep-alive connections (kube-apiserver's
   batching webhook backend sends batches concurrently). Checked in the database afterwards: the stored
   alerts' counts add up to the matches the server reported. Also printed: events per CPU second of the
   server process, the ceiling of the one server process on an idle core, which other load does not change.
2. **API p99 latency** (target ≤ 50 ms) of the main lists with 10,000 alerts and 100,000 image findings
   stored, plus three clusters assessed from ~1,000-object snapshots: one request at a time on a keep-alive
   connection with a security-reader token, several filter values per list. Filling: alerts and findings
   bulk-inserted into the server's tables (the findings are one real scan of the app test image, replicated
   per digest), images, tags and counts through the images repository, clusters through their service;
   ANALYZE on PostgreSQL, as autovacuum would.
3. **Admission p99** (target ≤ 20 ms) at 200 requests/s over TLS: the recorded AdmissionReview requests
   with fresh uids, open loop (sent on a fixed schedule whatever the answers; latency from the scheduled
   time) over 16 keep-alive connections whose TLS handshakes happen before the clock starts; every answer
   must be 200 and echo its request's uid. ``garrison admission serve`` (no store), and the main server's
   ``/admission/validate`` with a cluster agent's token (image verdicts looked up, decisions recorded).
4. **Rescan** of 1,000 stored SBOMs after an advisory-database change (target ≤ 60 s per core, no registry
   traffic): SBOMs and findings matched against a database without three advisories; the full database
   installed as ``db update`` does; ``rescan_if_changed`` must notice; the rescan's work timed (CPU and wall).
   The replicas' tags name an unresolvable registry, so a pull would fail.
5. **Scan on push**: skopeo pushes the app test image to a ``docker-registry`` whose notifications go to
   ``garrison server run`` (SQLite, inline queue); the time from the push until ``GET /api/v1/images/{digest}``
   answers, against ``garrison scan image`` of the same image from the same registry (both cold).

A part whose pieces are missing prints one line saying why and is skipped; a part that fails prints the error
and the others still run. The load average is printed around each part: the client runs on the same machine
and takes CPU from the server, and on a machine running other work the latencies say more about that work.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import server_data as data  # noqa: E402
from bench import server_harness as h  # noqa: E402

PARTS = ("ingest", "api", "admission", "rescan", "push")


@dataclass
class Row:
    part: str
    what: str
    value: float | None
    unit: str
    #: (">=" or "<=", target) or None for a figure without one.
    target: tuple[str, float] | None = None
    note: str = ""

    def meets(self) -> bool | None:
        if self.target is None or self.value is None:
            return None
        op, goal = self.target
        return self.value >= goal if op == ">=" else self.value <= goal


@dataclass
class Skip:
    part: str
    reason: str


@dataclass
class Ctx:
    work: Path
    quick: bool
    stack: ExitStack
    pg_base: str | None = None
    pg_missing: str = ""
    rows: list[Row | Skip] = field(default_factory=list)

    def databases(self) -> list[str]:
        return (["postgresql"] if self.pg_available() else []) + ["sqlite"]

    def pg_available(self) -> bool:
        if self.pg_base is None and not self.pg_missing:
            self.pg_missing = h.postgres_missing()
            if not self.pg_missing:
                self.pg_base = self.stack.enter_context(h.pg_cluster())
        return self.pg_base is not None

    def url(self, kind: str, name: str) -> str:
        if kind == "postgresql":
            assert self.pg_base is not None
            return h.pg_database(self.pg_base, name)
        return f"sqlite:///{self.work / (name + '.db')}"

    def add(self, row: Row | Skip) -> None:
        self.rows.append(row)
        print("    " + _line(row), flush=True)


def _fmt(value: float, unit: str) -> str:
    if unit in {"events/s", "req/s"}:
        return f"{value:,.0f} {unit}"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:,.0f} {unit}"


def _line(row: Row | Skip) -> str:
    if isinstance(row, Skip):
        return f"{row.part}: skipped: {row.reason}"
    value = "-" if row.value is None else _fmt(row.value, row.unit)
    target = "" if row.target is None else f" (target {row.target[0]} {_fmt(row.target[1], row.unit)})"
    return f"{row.what}: {value}{target}{'; ' + row.note if row.note else ''}"


def table(rows: list[Row | Skip]) -> str:
    head = ("part", "measurement", "measured", "target", "measured/target", "meets")
    lines: list[tuple[str, ...]] = [head]
    skips = []
    for r in rows:
        if isinstance(r, Skip):
            skips.append(r)
            continue
        value = "-" if r.value is None else _fmt(r.value, r.unit)
        if r.target is None or r.value is None:
            target, ratio, ok = "-", "-", "-"
        else:
            target = f"{r.target[0]} {_fmt(r.target[1], r.unit)}"
            ratio = f"{r.value / r.target[1]:.2f}"
            ok = "yes" if r.meets() else "NO"
        lines.append((r.part, r.what, value, target, ratio, ok))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    out += [f"skipped: {s.part}: {s.reason}" for s in skips]
    return "\n".join(out)


def load_average() -> str:
    """The 1-minute load average: on a shared machine other work takes CPU from the server and the client."""
    return f"{os.getloadavg()[0]:.1f}"


@contextmanager
def phase(title: str) -> Iterator[None]:
    print(f"\n== {title} (load average {load_average()})", flush=True)
    t0 = time.perf_counter()
    yield
    print(f"   ({time.perf_counter() - t0:.1f} s, load average {load_average()})", flush=True)


def server_args(url: str, *extra: str) -> list[str]:
    return ["server", "run", "--database", url, *extra]


# --- 1. ingestion --------------------------------------------------------------------------------------------


@dataclass
class IngestResult:
    events: int
    matches: int
    new_alerts: int
    wall: float
    latency: h.Latencies
    server_cpu: float
    db_cpu: float
    #: Events of every request, the warm-up ones included.
    events_total: int


def post_all(srv: h.Process, token: str, bodies: list[bytes], connections: int) -> IngestResult:
    """POST every body, ``connections`` at a time; the first few (connections and caches warming) are
    sent before the clock starts."""
    path = "/api/v1/events/k8s-audit?cluster=bench"
    warm = min(len(bodies) // 10, 2 * connections)
    totals = {"events": 0, "matches": 0, "new": 0}
    lat = h.Latencies()
    lock = threading.Lock()
    next_i = warm

    def send(client: h.Client, body: bytes) -> None:
        t0 = time.perf_counter()
        a = client.request("POST", path, body)
        dt = time.perf_counter() - t0
        with lock:
            lat.seconds.append(dt)
            if a.status != 200:
                lat.errors += 1
                lat.first_error = lat.first_error or f"HTTP {a.status}: {a.body[:160]!r}"
                return
            out = a.json()
            totals["events"] += out["events"]
            totals["matches"] += out["matches"]
            totals["new"] += out["new_alerts"]

    clients = [h.Client(srv, token) for _ in range(connections)]
    for i in range(warm):
        send(clients[i % connections], bodies[i])
    warm_events = totals["events"]
    lat.seconds.clear()

    def worker(client: h.Client) -> None:
        nonlocal next_i
        while True:
            with lock:
                i = next_i
                next_i += 1
            if i >= len(bodies):
                return
            send(client, bodies[i])

    cpu0, db0 = srv.cpu(), h.pg_cpu()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    cpu, db = srv.cpu() - cpu0, h.pg_cpu() - db0
    for c in clients:
        c.close()
    return IngestResult(
        totals["events"] - warm_events, totals["matches"], totals["new"], wall, lat, cpu, db, totals["events"]
    )


def stored_alerts(url: str) -> tuple[int, int]:
    """(alerts, sum of their counts) in the database."""
    from sqlalchemy import func, select

    from garrison.store import tables as t
    from garrison.store.db import open_engine

    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            n, total = conn.execute(select(func.count(), func.coalesce(func.sum(t.alerts.c.count), 0))).one()
    finally:
        engine.dispose()
    return int(n), int(total)


def part_ingest(ctx: Ctx) -> None:
    n = 15_000 if ctx.quick else 40_000
    load = data.audit_batches(n)
    sizes = [body.count(b'"kind":"Event",') for body in load.bodies]
    print(
        f"    {load.events:,} events in {len(load.bodies)} EventList batches of {min(sizes)}–{max(sizes)} "
        f"({sum(len(b) for b in load.bodies) / 1e6:.0f} MB)",
        flush=True,
    )
    connections = 4
    for kind in ctx.databases():
        url = ctx.url(kind, "ingest")
        tokens = h.prepare_database(url)
        with h.serving(server_args(url), ctx.work / f"ingest-{kind}") as srv:
            res = post_all(srv, tokens.agent, load.bodies, connections)
        alerts, counted = stored_alerts(url)
        rate = res.events / res.wall
        label = "PostgreSQL" if kind == "postgresql" else "SQLite"
        cpu_note = f"server {res.server_cpu / res.wall:.0%} of a core"
        if kind == "postgresql":
            cpu_note += f", PostgreSQL {res.db_cpu / res.wall:.0%}"
        per_cpu = res.events / max(res.server_cpu + res.db_cpu, 1e-9)
        cpu_note += f"; {per_cpu:,.0f} events per CPU second of server and database"
        all_events = res.events_total
        lost = "" if counted == res.matches else f"; MISMATCH: server reported {res.matches} matches, stored {counted}"
        if res.latency.errors:
            lost += f"; {res.latency.errors} failed requests (first: {res.latency.first_error})"
        ctx.add(
            Row(
                "ingest",
                f"{label}: audit events/s ({connections} connections)",
                rate,
                "events/s",
                (">=", 5000.0) if kind == "postgresql" else None,
                f"{all_events:,} events, {res.matches:,} matches ({res.matches / max(all_events, 1):.1%}) "
                f"in {alerts:,} stored alerts holding {counted:,} counts; {cpu_note}{lost}",
            )
        )
        ctx.add(
            Row(
                "ingest",
                f"{label}: events per CPU second of the server process",
                res.events / max(res.server_cpu, 1e-9),
                "events/s",
                (">=", 5000.0) if kind == "postgresql" else None,
                "the ceiling of one server process on an idle core (it is one process: Python's GIL makes it "
                "one core), whatever else runs on the machine",
            )
        )
        ctx.add(
            Row(
                "ingest",
                f"{label}: p99 per batch request",
                res.latency.ms(99),
                "ms",
                None,
                f"p50 {res.latency.ms(50):.0f} ms, {sum(sizes) / len(sizes):.0f} events per batch on average",
            )
        )


# --- 2. API latency ------------------------------------------------------------------------------------------


def _rule_catalogue() -> list[tuple[str, str, str]]:
    from garrison.services.runtime import RuntimeOptions, load_ruleset

    rs = load_ruleset(RuntimeOptions())
    out = []
    for r in rs.enabled():
        out.append((r.name, r.severity.name, str(r.priority)))
    return out or [("Privileged Container Created", "HIGH", "WARNING")]


def fill_alerts(url: str, n: int) -> None:
    from sqlalchemy import insert

    from garrison.store import tables as t
    from garrison.store.db import open_engine

    rows = data.alert_rows(n, _rule_catalogue(), set(t.alerts.c.keys()))
    engine = open_engine(url)
    try:
        with engine.begin() as conn:
            for i in range(0, len(rows), 2000):
                conn.execute(insert(t.alerts), rows[i : i + 2000])
    finally:
        engine.dispose()


def analyze(url: str) -> None:
    from sqlalchemy import text

    from garrison.store.db import open_engine

    engine = open_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def alert_lists() -> list[tuple[str, list[str]]]:
    since = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rules = [r[0] for r in _rule_catalogue()[:5]]
    from garrison.store.records import AlertStatus

    active = "active" if "active" in {s.value for s in AlertStatus} else "open"
    return [
        ("alerts: first page (100, no filter)", ["/api/v1/alerts"]),
        (
            "alerts: status and severity",
            [f"/api/v1/alerts?status={active}&severity={s}" for s in data.SEVERITIES],
        ),
        (
            "alerts: cluster, namespace, since",
            [
                f"/api/v1/alerts?cluster={c}&namespace={ns}&since={since}"
                for c in data.CLUSTERS
                for ns in data.NAMESPACES[:6]
            ],
        ),
        ("alerts: by rule", [f"/api/v1/alerts?rule={r.replace(' ', '%20')}" for r in rules]),
        ("alerts: page 51 (offset 5,000)", ["/api/v1/alerts?offset=5000&limit=100"]),
    ]


def part_api(ctx: Ctx) -> None:
    n_req = 100 if ctx.quick else 150
    for kind in ctx.databases():
        url = ctx.url(kind, "api")
        tokens = h.prepare_database(url)
        t0 = time.perf_counter()
        fill_alerts(url, 10_000)
        lists = alert_lists()
        from bench import server_fill

        for what, got in (
            ("images", server_fill.fill_images(url, 100_000, ctx.work)),
            ("recommendations", server_fill.fill_recommendations(url, ctx.work)),
        ):
            if isinstance(got, str):
                ctx.add(Skip("api", f"{what} ({kind}): {got}"))
            else:
                lists += got
        if kind == "postgresql":
            analyze(url)
        label = "PostgreSQL" if kind == "postgresql" else "SQLite"
        print(f"    {label}: store filled in {time.perf_counter() - t0:.1f} s", flush=True)
        with h.serving(server_args(url), ctx.work / f"api-{kind}") as srv:
            client = h.Client(srv, tokens.reader)
            for name, paths in lists:
                cpu0, db0 = srv.cpu(), h.pg_cpu()
                lat = h.closed_loop(client, paths, n_req, warmup=10)
                # Per measured request (the warm-up ones are few and in the sum: a slight overestimate).
                cpu_ms = (srv.cpu() - cpu0) * 1000 / (n_req + 10)
                db_ms = (h.pg_cpu() - db0) * 1000 / (n_req + 10)
                ctx.add(
                    Row(
                        "api",
                        f"{label}: {name}",
                        lat.ms(99),
                        "ms",
                        ("<=", 50.0),
                        f"p50 {lat.ms(50):.1f} ms, max {lat.ms(100):.1f} ms, n={len(lat.seconds)}; "
                        f"CPU per request: server {cpu_ms:.1f} ms"
                        + (f", PostgreSQL {db_ms:.1f} ms" if kind == "postgresql" else "")
                        + (f"; {lat.errors} errors ({lat.first_error})" if lat.errors else ""),
                    )
                )
            client.close()


# --- 3. admission --------------------------------------------------------------------------------------------


def _check_review(load: data.AdmissionLoad, verdicts: dict[str, int]) -> Callable[[int, h.Answer], str]:
    lock = threading.Lock()

    def check(i: int, a: h.Answer) -> str:
        doc = a.json()
        resp = doc.get("response") or {}
        if resp.get("uid") != load.uids[i]:
            return f"answer uid {resp.get('uid')!r} is not the request's"
        with lock:
            key = "allowed" if resp.get("allowed") else "denied"
            verdicts[key] = verdicts.get(key, 0) + 1
        return ""

    return check


def admission_run(ctx: Ctx, label: str, srv: h.Process, path: str, load: data.AdmissionLoad, token: str = "") -> None:
    rate = 200.0
    verdicts: dict[str, int] = {}
    cpu0 = srv.cpu()
    res = h.open_loop(srv, "POST", path, load.bodies, rate, check=_check_review(load, verdicts), token=token)
    seconds = len(load.bodies) / rate
    cpu = (srv.cpu() - cpu0) / seconds
    lat = res.latency
    ctx.add(
        Row(
            "admission",
            f"{label}: p99 at 200 req/s, TLS",
            lat.ms(99),
            "ms",
            ("<=", 20.0),
            f"p50 {lat.ms(50):.1f} ms, max {lat.ms(100):.1f} ms, n={len(lat.seconds)}, sent at "
            f"{res.achieved_rps:.0f} req/s (worst client lag {res.max_lag * 1000:.1f} ms), "
            f"{lat.errors} errors{' (' + lat.first_error + ')' if lat.errors else ''}, "
            f"{verdicts.get('allowed', 0)} allowed / {verdicts.get('denied', 0)} denied, server {cpu:.0%} of a core "
            f"({cpu / rate * 1000:.1f} ms CPU per review)",
        )
    )


def part_admission(ctx: Ctx) -> None:
    seconds = 5 if ctx.quick else 15
    load = data.admission_reviews(int(200 * seconds))
    d = ctx.work / "admission"
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / "tls.crt", d / "tls.key"
    serve = ["admission", "serve", "--self-signed", "--tls-cert", str(cert), "--tls-key", str(key)]
    with h.serving(serve, d, tls_ca=d / "ca.crt") as srv:
        admission_run(ctx, "garrison admission serve", srv, "/admission/validate?timeout=5s", load)
    main_server_admission(ctx, load)


def main_server_admission(ctx: Ctx, load: data.AdmissionLoad) -> None:
    """The main server's ``/admission/validate`` over TLS on SQLite, called with a cluster agent's token as
    the API server's webhook kubeconfig sends it: each review looks up the images' stored verdicts and
    records its decision."""
    if "/admission/validate" not in h.openapi_paths():
        ctx.add(Skip("admission", "the main server has no /admission/validate yet (helper H5)"))
        return
    from garrison.server.admission import self_signed

    d = ctx.work / "admission-main"
    made = self_signed(d / "tls.crt", d / "tls.key")
    url = ctx.url("sqlite", "admission")
    tokens = h.prepare_database(url)
    with h.serving(
        server_args(url, "--tls-cert", str(made.cert), "--tls-key", str(made.key)), d, tls_ca=made.ca
    ) as srv:
        path = "/admission/validate?timeout=5s"
        admission_run(ctx, "garrison server run /admission/validate", srv, path, load, tokens.agent)


# --- 4 and 5: rescans and scan on push -----------------------------------------------------------------------


def part_rescan(ctx: Ctx) -> None:
    from bench import server_fill

    reason = server_fill.rescan_missing()
    got = reason or server_fill.rescan(ctx.work / "rescan", 200 if ctx.quick else 1000)
    if isinstance(got, str):
        ctx.add(Skip("rescan", got))
        return
    for row in got:
        ctx.add(Row("rescan", *row))


def part_push(ctx: Ctx) -> None:
    from bench import server_fill

    reason = server_fill.push_missing()
    got = reason or server_fill.scan_on_push(ctx.work / "push", ctx.url("sqlite", "push"))
    if isinstance(got, str):
        ctx.add(Skip("push", got))
        return
    for row in got:
        ctx.add(Row("push", *row))


RUNNERS: dict[str, tuple[str, Callable[[Ctx], None]]] = {
    "ingest": ("1. alert ingestion (POST /api/v1/events/k8s-audit)", part_ingest),
    "api": ("2. API latency with 100,000 findings and 10,000 alerts stored", part_api),
    "admission": ("3. admission at 200 requests/s over TLS", part_admission),
    "rescan": ("4. rescan of stored SBOMs after a database change", part_rescan),
    "push": ("5. scan on push against a CLI scan", part_push),
}


def main() -> int:
    import warnings

    # tests.server's fixtures import Starlette's TestClient, which warns about httpx; not the benchmark's concern.
    warnings.filterwarnings("ignore", message=".*httpx.*")
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {', '.join(PARTS)}")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (server logs) and print it")
    args = ap.parse_args()
    chosen = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in RUNNERS]
    if unknown:
        ap.error(f"unknown part(s) {', '.join(unknown)}: choose from {', '.join(PARTS)}")
    if not data.AUDIT_EVENTS.is_file():
        print(f"needs the recorded Kubernetes traffic in {data.RECORDED}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="garrison-bench-server-"))
    print(
        f"garrison server benchmark ({'quick' if args.quick else 'full'}), {os.cpu_count()} cores, "
        f"load average {load_average()}, work in {work}"
    )
    with ExitStack() as stack:
        ctx = Ctx(work, args.quick, stack)
        if not args.keep:
            import shutil

            stack.callback(shutil.rmtree, work, True)
        for part in chosen:
            title, run = RUNNERS[part]
            with phase(title):
                try:
                    run(ctx)
                except Exception as e:  # one part's failure must not hide the others' numbers
                    ctx.add(Skip(part, f"FAILED: {type(e).__name__}: {str(e).splitlines()[0][:300]}"))
        if ctx.pg_missing:
            print(f"\n(PostgreSQL not measured: {ctx.pg_missing})")
        print(f"\n== summary ({time.perf_counter() - started:.0f} s)")
        print(table(ctx.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
