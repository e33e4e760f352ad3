"""``garrison server``: ``init``, ``run``, ``user add`` and ``token create|revoke`` — thin, one
:mod:`garrison.services.server` call each. The server's packages (FastAPI, SQLAlchemy, uvicorn: the
``garrison[server]`` extra) are imported inside the commands only.

A new token is printed alone on standard output (so ``TOKEN=$(garrison server init)`` captures it);
everything else goes to standard error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROLES = ("admin", "security-admin", "security-reader", "agent")


def _db_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database",
        default=None,
        metavar="URL",
        help="SQLAlchemy URL (default $GARRISON_DATABASE_URL, else SQLite server.db in $GARRISON_DATA_DIR "
        "or the XDG data folder)",
    )


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
    _db_flag(run)
    run.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT", help="default 127.0.0.1:8080")
    run.add_argument("--tls-cert", type=Path, default=None, metavar="FILE", help="serve HTTPS with this certificate")
    run.add_argument("--tls-key", type=Path, default=None, metavar="FILE", help="the certificate's private key")
    run.add_argument(
        "--rules",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="Falco rule file for the audit webhook, loaded after garrison's own (repeatable)",
    )
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


def _store(args: argparse.Namespace) -> Any:
    from garrison.store.db import default_url, migrate, open_engine
    from garrison.store.repos import SqlStore

    engine = open_engine(args.database or default_url())
    migrate(engine)
    return SqlStore(engine)


def cmd_init(args: argparse.Namespace) -> int:
    from garrison.services import server as svc
    from garrison.store.db import default_url, describe

    new = svc.init_admin(_store(args), args.name)
    print(f"garrison: database {describe(args.database or default_url())} ready; admin {args.name!r}", file=sys.stderr)
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


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) → (host, port). Raises UsageError."""
    from garrison.errors import UsageError

    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host, int(port)


def cmd_run(args: argparse.Namespace) -> int:
    from garrison.errors import UsageError

    host, port = parse_listen(args.listen)
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    for f in (args.tls_cert, args.tls_key, *args.rules):
        if f is not None and not Path(f).is_file():
            raise UsageError(f"{f}: no such file")

    import uvicorn

    from garrison.server.app import create_app
    from garrison.services.runtime import RuntimeOptions, load_ruleset
    from garrison.store.db import default_url, describe

    ruleset = load_ruleset(RuntimeOptions(rule_files=tuple(args.rules)))
    app = create_app(_store(args), ruleset)
    scheme = "https" if args.tls_cert else "http"
    print(
        f"garrison: serving {scheme}://{host}:{port} (database {describe(args.database or default_url())})",
        file=sys.stderr,
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        ssl_certfile=str(args.tls_cert) if args.tls_cert else None,
        ssl_keyfile=str(args.tls_key) if args.tls_key else None,
        log_level="warning" if getattr(args, "quiet", False) else "info",
        server_header=False,
    )
    return 0
