"""``garrison server``: ``init``, ``run``, ``worker`` (:mod:`garrison.cli.worker`), ``user add`` and
``token create|revoke`` — thin, one service call each. The commands of this module build their
:class:`~garrison.services.settings.ServerSettings` through :func:`server_settings` (flags over
``GARRISON_*`` over the config file's ``server:`` keys). The server's packages (FastAPI, SQLAlchemy,
uvicorn: the ``garrison[server]`` extra) are imported inside the commands only.

A new token is printed alone on standard output (so ``TOKEN=$(garrison server init)`` captures it);
everything else goes to standard error.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ROLES = ("admin", "security-admin", "security-reader", "agent")

#: The flags of the server's settings (:class:`garrison.services.settings.ServerSettings`): setting name →
#: (flag, help). Each is also ``GARRISON_<NAME>`` and the key ``server.<name>`` of the config file.
SETTING_FLAGS: dict[str, tuple[str, str]] = {
    "database_url": (
        "--database",
        "SQLAlchemy URL, e.g. postgresql+psycopg://USER@HOST/DB (default SQLite server.db in the data folder)",
    ),
    "data_dir": ("--data-dir", "the server's data folder (default $XDG_DATA_HOME/garrison)"),
    "vulndb": ("--vulndb", "advisory database scans match against (default the CLI's, see `garrison db`)"),
    "rescan_max_age_days": ("--rescan-max-age-days", "rescan only images pushed or pulled within N days (90)"),
    "listen": ("--listen", "HOST:PORT to serve on (default 127.0.0.1:8080; [::1]:8080 for IPv6)"),
    "tls_cert": ("--tls-cert", "serve HTTPS with this certificate (PEM)"),
    "tls_key": ("--tls-key", "the certificate's private key (PEM)"),
    "tls_self_signed": ("--tls-self-signed", "serve HTTPS with a CA and certificate made once in DATA_DIR/tls"),
    "tls_hosts": ("--tls-host", "another name or address for the self-signed certificate (repeatable)"),
    "log_format": ("--log-format", "text (default) or json: one object a line"),
    "shutdown_grace": ("--shutdown-grace", "seconds a shutdown waits for requests and jobs (default 30)"),
    "rules": ("--rules", "Falco rule file for the audit webhook, loaded after garrison's own (repeatable)"),
    "admission_policy": ("--admission-policy", "the admission webhook's policy (YAML; default: the packaged one)"),
    "job_concurrency": ("--job-concurrency", "jobs run at once by this process (default 2)"),
    "rescan_interval": ("--rescan-interval", "seconds between periodic rescans of stored SBOMs (3600; 0: none)"),
    "stalled_after": ("--stalled-after", "take back a dead worker's jobs after this many seconds (30; at least 3)"),
    "auth_cache_ttl": ("--auth-cache-ttl", "seconds a checked token is trusted before the database is read again (5)"),
    "delivery_retention_days": (
        "--delivery-retention-days",
        "days a sent or failed notification delivery is kept (30)",
    ),
}
_RUN_SETTINGS = tuple(SETTING_FLAGS)
_METAVARS = {
    "database_url": "URL",
    "data_dir": "DIR",
    "vulndb": "FILE",
    "rescan_max_age_days": "DAYS",
    "listen": "HOST:PORT",
    "tls_cert": "FILE",
    "tls_key": "FILE",
    "tls_hosts": "NAME",
    "log_format": "FORMAT",
    "shutdown_grace": "SECONDS",
    "rules": "FILE",
    "admission_policy": "FILE",
    "job_concurrency": "N",
    "rescan_interval": "SECONDS",
    "stalled_after": "SECONDS",
    "auth_cache_ttl": "SECONDS",
    "delivery_retention_days": "DAYS",
}
_REPEATABLE = ("tls_hosts", "rules")


def _dest(name: str) -> str:
    """``args.<dest>`` of a setting's flag (``--database`` keeps its old ``args.database``)."""
    return "database" if name == "database_url" else f"set_{name}"


def _setting_flags(p: argparse.ArgumentParser, names: tuple[str, ...]) -> None:
    g = p.add_argument_group("settings (also GARRISON_<NAME> variables and the config file's server: keys)")
    for name in names:
        flag, helptext = SETTING_FLAGS[name]
        metavar = _METAVARS.get(name, name.upper())
        if name == "tls_self_signed":
            g.add_argument(flag, dest=_dest(name), action="store_const", const="yes", default=None, help=helptext)
        elif name in _REPEATABLE:
            g.add_argument(flag, dest=_dest(name), action="append", default=None, metavar=metavar, help=helptext)
        else:
            g.add_argument(flag, dest=_dest(name), default=None, metavar=metavar, help=helptext)


def server_settings(args: argparse.Namespace) -> Any:
    """The :class:`~garrison.services.settings.ServerSettings` of a ``garrison server`` command: its flags
    over ``GARRISON_*`` over the config file (``--config``, ``$GARRISON_CONFIG`` or the default one).
    Warnings (unknown config keys) go to standard error."""
    from garrison.services.settings import load_server_settings

    flags: dict[str, tuple[str, object]] = {}
    for name, (flag, _) in SETTING_FLAGS.items():
        raw = getattr(args, _dest(name), None)
        if isinstance(raw, list):
            raw = ",".join(raw)
        if raw is not None:
            flags[name] = (flag, raw)
    warnings: list[str] = []
    settings = load_server_settings(flags, config_file=getattr(args, "config", None), warnings=warnings)
    for w in warnings:
        print(f"garrison: warning: {w}", file=sys.stderr)
    return settings


def _db_flag(p: argparse.ArgumentParser) -> None:
    _setting_flags(p, ("database_url",))


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``server`` on the top-level subparsers."""
    p = sub.add_parser(
        "server",
        help="the garrison server: alerts, triage with roles, the audit webhook (see docs/server.md)",
        description="Run and administer garrison's server. See docs/server.md.",
    )
    ssub = p.add_subparsers(dest="server_action", metavar="ACTION")

    init = ssub.add_parser(
        "init", parents=[common], help="create the database and the first admin; prints its token alone"
    )
    _db_flag(init)
    init.add_argument("--name", default="admin", help="the first admin's user name (default admin)")
    init.set_defaults(func="garrison.cli.server:cmd_init")

    run = ssub.add_parser("run", parents=[common], help="serve the API (migrates the database first)")
    _setting_flags(run, _RUN_SETTINGS)
    run.set_defaults(func="garrison.cli.server:cmd_run")

    from garrison.cli import worker

    wk = ssub.add_parser(
        "worker", parents=[common], help="process jobs from the queue on PostgreSQL (many workers, many machines)"
    )
    _db_flag(wk)
    worker.add_arguments(wk)
    wk.set_defaults(func="garrison.cli.worker:cmd_worker")

    user = ssub.add_parser("user", help="manage users")
    usub = user.add_subparsers(dest="user_action", metavar="ACTION")
    add = usub.add_parser("add", parents=[common], help="add a user; prints its first token alone")
    _db_flag(add)
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--cluster", default="", help="agents: the cluster its events come from (and the only one)")
    add.set_defaults(func="garrison.cli.server:cmd_user_add")

    token = ssub.add_parser("token", help="manage API tokens")
    tsub = token.add_subparsers(dest="token_action", metavar="ACTION")
    create = tsub.add_parser("create", parents=[common], help="a new token for a user; prints it alone")
    _db_flag(create)
    create.add_argument("--user", required=True, help="whose token")
    create.add_argument("--name", default="cli", help="what the token is for")
    create.add_argument("--expires-days", type=int, default=None, metavar="N", help="expire after N days")
    create.set_defaults(func="garrison.cli.server:cmd_token_create")
    revoke = tsub.add_parser("revoke", parents=[common], help="revoke a token by its id")
    _db_flag(revoke)
    revoke.add_argument("id", type=int)
    revoke.add_argument("--reason", default="", help="kept in the audit log")
    revoke.set_defaults(func="garrison.cli.server:cmd_token_revoke")

    cluster = ssub.add_parser(
        "cluster", help="register clusters (their agents post audit events, node alerts, snapshots)"
    )
    csub = cluster.add_subparsers(dest="cluster_action", metavar="ACTION")
    cadd = csub.add_parser("add", parents=[common], help="register a cluster; prints its agent's token alone")
    _db_flag(cadd)
    cadd.add_argument("id", help="the cluster's id: a-z, 0-9, '-', '.', '_' (in URLs and on alerts)")
    cadd.add_argument("--name", default="", help="a display name (default: the id)")
    cadd.add_argument("--description", default="")
    cadd.set_defaults(func="garrison.cli.server:cmd_cluster_add")
    clist = csub.add_parser("list", parents=[common], help="the registered clusters and their latest score")
    _db_flag(clist)
    clist.set_defaults(func="garrison.cli.server:cmd_cluster_list")

    registry = ssub.add_parser("registry", help="configure registries (scan on push, credentials for pulls)")
    rsub = registry.add_subparsers(dest="registry_action", metavar="ACTION")
    radd = rsub.add_parser("add", parents=[common], help="configure a registry; prints its notification token alone")
    _setting_flags(radd, ("database_url", "data_dir"))  # the data folder holds the key that seals credentials
    radd.add_argument("name", help="1 to 64 of a-z 0-9 . _ -")
    radd.add_argument("--url", required=True, help="http(s)://HOST[:PORT] of the registry")
    radd.add_argument("--username", default="", help="for pulls (with --password-stdin)")
    secret = radd.add_mutually_exclusive_group()
    secret.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    secret.add_argument("--token-stdin", action="store_true", help="read a bearer token from standard input")
    radd.add_argument("--no-scan-on-push", action="store_true", help="keep notifications from queueing scans")
    radd.set_defaults(func="garrison.cli.server:cmd_registry_add")
    rlist = rsub.add_parser("list", parents=[common], help="the configured registries (never their credentials)")
    _db_flag(rlist)
    rlist.set_defaults(func="garrison.cli.server:cmd_registry_list")
    rdel = rsub.add_parser("delete", parents=[common], help="forget a registry; its notification token stops working")
    _db_flag(rdel)
    rdel.add_argument("id", type=int)
    rdel.set_defaults(func="garrison.cli.server:cmd_registry_delete")


def open_store(settings: Any) -> Any:
    """The migrated store of ``settings.database_url``."""
    from garrison.store.db import migrate, open_engine
    from garrison.store.repos import SqlStore

    engine = open_engine(settings.database_url)
    migrate(engine)
    return SqlStore(engine)


def _store(args: argparse.Namespace) -> Any:
    return open_store(server_settings(args))


def cmd_init(args: argparse.Namespace) -> int:
    from garrison.services import server as svc
    from garrison.store.db import describe

    settings = server_settings(args)
    new = svc.init_admin(open_store(settings), args.name)
    print(f"garrison: database {describe(settings.database_url)} ready; admin {args.name!r}", file=sys.stderr)
    print(new.secret)
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from garrison.services import server as svc

    user, new = svc.create_user(_store(args), svc.CLI_ACTOR, args.name, args.role, cluster=args.cluster)
    print(f"garrison: user {user.name!r} ({user.role.value}), token id {new.token.id}", file=sys.stderr)
    print(new.secret)
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from garrison.services import server as svc

    new = svc.create_token(_store(args), None, args.name, args.user, args.expires_days)
    print(f"garrison: token id {new.token.id} for {args.user!r}", file=sys.stderr)
    print(new.secret)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from garrison.services import server as svc

    tok = svc.revoke_token(_store(args), None, args.id, args.reason)
    print(f"garrison: token {tok.id} ({tok.prefix}…) revoked at {tok.revoked_at}", file=sys.stderr)
    return 0


def cmd_cluster_add(args: argparse.Namespace) -> int:
    from garrison.services import clusters

    made = clusters.create_cluster(_store(args), None, args.id, args.name, args.description)
    print(
        f"garrison: cluster {made.cluster.id!r}, agent {made.agent.name!r}, token id {made.token.token.id}",
        file=sys.stderr,
    )
    print(made.token.secret)
    return 0


def cmd_cluster_list(args: argparse.Namespace) -> int:
    from garrison.services import clusters

    page = clusters.list_clusters(_store(args), limit=1000)
    print(f"{'ID':<24} {'NAME':<24} {'SCORE':>6}  ASSESSED")
    for c in page.items:
        score = "-" if c.score is None else f"{c.score:.1f}"
        print(f"{c.id:<24} {c.name:<24} {score:>6}  {c.assessed_at or '-'}")
    return 0


def _read_secret(what: str) -> str:
    """A password or token from standard input (one line; never a flag, which ``ps`` and shell history
    would show)."""
    from garrison.errors import UsageError

    text = sys.stdin.readline().rstrip("\r\n")
    if not text:
        raise UsageError(f"--{what}-stdin: nothing on standard input")
    return text


def cmd_registry_add(args: argparse.Namespace) -> int:
    from garrison.errors import UsageError
    from garrison.services import registry

    if args.password_stdin and not args.username:
        raise UsageError("--password-stdin goes with --username")
    settings = server_settings(args)
    rec, new = registry.create_registry(
        open_store(settings),
        settings,
        None,
        args.name,
        args.url,
        username=args.username,
        password=_read_secret("password") if args.password_stdin else "",
        token=_read_secret("token") if args.token_stdin else "",
        scan_on_push=not args.no_scan_on_push,
    )
    print(f"garrison: registry {rec.id} {rec.name!r} ({rec.url}); its notification token follows", file=sys.stderr)
    print(new.secret)
    return 0


def cmd_registry_list(args: argparse.Namespace) -> int:
    from garrison.services import registry

    page = registry.list_registries(_store(args), limit=1000)
    print(f"{'ID':>4}  {'NAME':<24} {'URL':<40} CREDENTIALS  SCAN-ON-PUSH")
    for r in page.items:
        creds = "yes" if r.has_credentials else "no"
        print(f"{r.id:>4}  {r.name:<24} {r.url:<40} {creds:<12} {'yes' if r.scan_on_push else 'no'}")
    return 0


def cmd_registry_delete(args: argparse.Namespace) -> int:
    from garrison.services import registry

    rec = registry.delete_registry(_store(args), None, args.id)
    print(f"garrison: registry {rec.id} {rec.name!r} deleted; its notification token no longer works", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT, then shut down in order: stop accepting, let the running requests
    finish (up to the grace period), stop the queue (running jobs finish or go back to the queue), close
    the database; exit 0."""
    import logging

    from garrison.errors import UsageError
    from garrison.services.settings import check_files, parse_listen

    settings = server_settings(args)
    check_files(settings)
    try:
        host, port = parse_listen(settings.listen)
    except ValueError as e:  # validated already; kept for a settings record built by hand
        raise UsageError(str(e)) from None

    import uvicorn

    from garrison.admission.policy import load_policy
    from garrison.jobs import JobOptions, open_queue
    from garrison.server import observe
    from garrison.server.app import create_app
    from garrison.services.runtime import RuntimeOptions, load_ruleset
    from garrison.store.db import describe

    observe.configure_logging(settings.log_format, logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    cert, key = settings.tls_cert, settings.tls_key
    if settings.tls_self_signed:
        from garrison.server.tls import ensure_self_signed, names_for

        tls = ensure_self_signed(settings.data_dir, names_for(host, settings.tls_hosts))
        cert, key = tls.cert, tls.key
        # Always said, not only at -q's level: a client (or the admission caBundle) must trust this CA.
        observe.event(
            "self-signed TLS certificate " + ("made" if tls.made else "reused"),
            logging.WARNING,
            ca=str(tls.ca),
            sha256=tls.fingerprint,
            hosts=",".join(tls.hosts),
        )
    policy = load_policy(settings.admission_policy)  # a bad policy fails here, before anything listens
    store = open_store(settings)
    ruleset = load_ruleset(RuntimeOptions(rule_files=settings.rules))
    options = JobOptions(
        concurrency=settings.job_concurrency,
        rescan_interval=settings.rescan_interval,
        stale_after=settings.stalled_after,
    )
    try:
        queue = open_queue(settings, store, options=options)
    except ValueError as e:  # a periodic interval procrastinate's cron cannot say
        raise UsageError(f"--rescan-interval: {e}") from None
    app = create_app(store, ruleset, queue=queue, settings=settings)
    app.state.admission_policy = policy
    app.state.metrics.sources.append(observe.queue_gauges(queue.counts))
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(cert) if cert else None,
        ssl_keyfile=str(key) if key else None,
        log_config=None,  # our handler (observe.configure_logging) formats uvicorn's lines too
        access_log=False,  # observe.RequestLog writes one line per request, by route template
        server_header=False,
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace)),
    )
    server = uvicorn.Server(config)
    scheme = "https" if cert else "http"
    observe.event(
        f"serving {scheme}://{host}:{port}",
        database=describe(settings.database_url),
        queue=type(queue).__name__,
        log_format=settings.log_format,
    )
    # What was loaded to serve (rules, controls, policy, the app: hundreds of thousands of objects) lives
    # as long as the process: kept out of the cyclic collector's generations, its full collections stop
    # re-scanning it (a pause of tens of milliseconds every few thousand requests, seen in p99 latency).
    gc.collect()
    gc.freeze()
    with _signals() as received:
        queue.start()
        try:
            server.run()
        finally:
            queue.stop(settings.shutdown_grace)
            store.engine.dispose()
    observe.event("stopped", signal=",".join(received) or "none")
    return 0 if server.started else 1


@contextmanager
def _signals() -> Iterator[list[str]]:
    """SIGTERM and SIGINT noted rather than fatal while serving. uvicorn installs its own handlers while it
    runs (they start the graceful shutdown) and, once stopped, raises the signal it caught again into the
    handlers it found — these — so the process goes on to stop the queue and exit 0."""
    import signal

    received: list[str] = []

    def note(sig: int, _frame: Any) -> None:
        received.append(signal.Signals(sig).name)

    previous = {s: signal.signal(s, note) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
