"""Where the database is, opening it, and migrating it (Alembic, run in-process: no ``alembic.ini``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from garrison.errors import UsageError
from garrison.services.settings import default_data_dir, env_name, sqlite_url

#: The server's database URL when ``--database`` is not given.
DATABASE_ENV = env_name("database_url")
#: The folder of the server's data (else ``$XDG_DATA_HOME/garrison``, else ``~/.local/share/garrison``).
DATA_DIR_ENV = env_name("data_dir")
#: The head revision this code expects (the newest file in ``alembic/versions``).
HEAD = "0007"
_SCRIPTS = Path(__file__).resolve().parent / "alembic"


def data_dir() -> Path:
    """``$GARRISON_DATA_DIR``, else the XDG data folder's ``garrison``."""
    return default_data_dir()


def default_url() -> str:
    """``$GARRISON_DATABASE_URL``, else SQLite in the data folder (``server.db``)."""
    if url := os.environ.get(DATABASE_ENV):
        return url
    return sqlite_url(data_dir())


def describe(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


#: Connections kept open to a SQLite database (they are cheap: a file handle and a page cache).
SQLITE_POOL = 20
#: PostgreSQL connections kept open per process, and the extra ones opened under load.
PG_POOL, PG_OVERFLOW = 10, 20


def open_engine(url: str) -> Engine:
    """An engine on ``url``. For SQLite: the folder is created, foreign keys are on, and WAL lets the
    server read while it writes. Raises UsageError for a URL SQLAlchemy cannot use."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"database URL {url!r} does not parse") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # A pool as large as the threads that use it at once (the server's worker threads, the decision
        # writer, the inline queue): past pool_size, SQLAlchemy opens and closes a connection per
        # checkout, and each new SQLite connection runs the pragmas below again.
        on_disk = bool(parsed.database) and parsed.database != ":memory:"
        pool: dict[str, Any] = {"pool_size": SQLITE_POOL, "max_overflow": SQLITE_POOL} if on_disk else {}
        engine = create_engine(parsed, connect_args={"check_same_thread": False}, **pool)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # pysqlite's own BEGIN off: SQLAlchemy's "begin" below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=5000")
            if on_disk:
                cur.execute("PRAGMA journal_mode=WAL")
                # Under WAL, NORMAL syncs at checkpoints instead of at every commit: a crash of the process
                # loses nothing, a power cut at most the last commits (never the database's integrity), and
                # a commit no longer waits for an fsync (about 10 ms here, the cost of every small write).
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            # Take the write lock at the start (waiting up to busy_timeout): a transaction that reads and
            # then writes would otherwise fail at once with SQLITE_BUSY when another wrote in between.
            # A read-only one (Store.transaction(readonly=True)) takes no lock: under WAL it reads a
            # snapshot while a writer works, so token checks and lists never queue behind writes.
            readonly = conn.get_execution_options().get("garrison_readonly", False)
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    if parsed.drivername in ("postgresql", "postgres"):
        # A bare postgresql:// (as libpq and the docs write it) means psycopg 3, the driver of the
        # postgres extra, not SQLAlchemy's default psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        return create_engine(parsed, pool_pre_ping=True, pool_size=PG_POOL, max_overflow=PG_OVERFLOW)
    except ModuleNotFoundError as e:
        raise UsageError(f"{describe(url)}: the database driver is not installed ({e.name})") from None


def migrate(engine: Engine) -> None:
    """Bring the database to :data:`HEAD` (creating every table in an empty one)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def current_revision(engine: Engine) -> str | None:
    """The database's revision (None when it was never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ping(engine: Engine) -> None:
    """Raise when the database does not answer (for ``/readyz``)."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
