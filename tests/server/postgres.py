"""A private PostgreSQL cluster on loopback for the tests (Debian's ``initdb`` and ``pg_ctl``): started
once per session on a free port, one fresh database per test, stopped and removed at the end.

Run as root, the cluster belongs to the ``postgres`` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.registry import free_port

_names = itertools.count()


def _bin(name: str) -> str:
    """A PostgreSQL program: on PATH, else where Debian's ``postgresql`` package puts it."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return ""


def available() -> str:
    """ "" when a cluster can be started here, else why not."""
    if not (_bin("initdb") and _bin("pg_ctl")):
        return "no initdb/pg_ctl (apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
    except ModuleNotFoundError:
        return "no psycopg (pip install 'psycopg[binary]')"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a postgres user"
    return ""


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def cluster() -> Iterator[str]:
    """A running cluster; yields its SQLAlchemy URL without a database name."""
    root = Path(tempfile.mkdtemp(prefix="garrison-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = free_port()
    run = dict(check=True, capture_output=True, timeout=60)
    try:
        subprocess.run(_as_owner([_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-N"]), **run)  # type: ignore[call-overload]
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
        start = [_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"]
        subprocess.run(_as_owner(start), **run)  # type: ignore[call-overload]
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
        finally:
            subprocess.run(_as_owner([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]), **run)  # type: ignore[call-overload]
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def database(base: str, template: str = "") -> Iterator[str]:
    """A fresh database in the cluster at ``base`` (empty, or a copy of the database ``template``);
    dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"t{os.getpid()}_{next(_names)}"
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            # FILE_COPY: for a near-empty template, about twice as fast as the default WAL_LOG.
            copy = f' TEMPLATE "{template}"' if template else ""
            conn.execute(text(f'CREATE DATABASE "{name}"{copy} STRATEGY FILE_COPY'))
        yield f"{base}/{name}"
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
