"""``garrison server worker``: process jobs from the queue on PostgreSQL (many workers, many machines).

On SQLite it runs the inline queue's jobs in its own process (one machine: the server's threads and the
worker share the ``jobs`` table). SIGTERM or SIGINT stops it gracefully: no new job is taken, the running
ones get ``--grace`` seconds to finish, and those that do not are left queued for another worker; a
second signal stops at once (its jobs are then taken back by the other workers when its heartbeat goes
stale). Progress goes to standard error.
"""

from __future__ import annotations

import argparse
import sys


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds cannot be negative")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number from 1 to 256")
    return int(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The worker's own flags (``--database`` is added by :mod:`garrison.cli.server`)."""
    from garrison.jobs import JobOptions

    d = JobOptions()
    p.add_argument(
        "--concurrency",
        type=_count,
        default=d.concurrency,
        metavar="N",
        help=f"jobs run at once (default {d.concurrency})",
    )
    p.add_argument(
        "--grace",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, how long running jobs may take to finish before they are left queued (default 30)",
    )
    p.add_argument(
        "--rescan-interval",
        type=_seconds,
        default=d.rescan_interval,
        metavar="SECONDS",
        help=f"queue a rescan of every stored SBOM this often (default {d.rescan_interval:g}; 0: never)",
    )
    p.add_argument(
        "--stalled-after",
        type=_seconds,
        default=d.stale_after,
        metavar="SECONDS",
        help="take back the jobs of a worker whose heartbeat is this old: killed, frozen or its machine gone "
        f"(default {d.stale_after:g})",
    )
    p.add_argument(
        "--heartbeat",
        type=_seconds,
        default=d.heartbeat,
        metavar="SECONDS",
        help=f"seconds between this worker's heartbeats (default {d.heartbeat:g}; keep it well under --stalled-after)",
    )


def cmd_worker(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from garrison.errors import UsageError
    from garrison.jobs import JobOptions, is_postgresql, open_queue, prepare
    from garrison.services.settings import ServerSettings
    from garrison.store.db import data_dir, default_url, describe, migrate, open_engine
    from garrison.store.repos import SqlStore

    if args.heartbeat <= 0 or args.heartbeat >= args.stalled_after:
        raise UsageError("--heartbeat must be above 0 and below --stalled-after")
    url = args.database or default_url()
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    engine = open_engine(url)
    migrate(engine)
    prepare(url)
    settings = ServerSettings(data_dir=data_dir(), database_url=url)
    options = JobOptions(
        concurrency=args.concurrency,
        heartbeat=args.heartbeat,
        stale_after=args.stalled_after,
        rescan_interval=args.rescan_interval,
    )
    queue = open_queue(settings, SqlStore(engine), run_jobs=True, options=options)
    kind = "PostgreSQL queue" if is_postgresql(url) else "inline queue (SQLite)"
    print(f"garrison: worker on {describe(url)} ({kind}), {args.concurrency} at once", file=sys.stderr)

    stop = threading.Event()

    def _signalled(signum: int, _frame: object) -> None:
        if stop.is_set():
            print("garrison: worker: second signal, stopping now", file=sys.stderr)
            raise SystemExit(1)
        print(
            f"garrison: worker: {signal.Signals(signum).name}, finishing running jobs (up to {args.grace:g} s)",
            file=sys.stderr,
        )
        stop.set()

    signal.signal(signal.SIGTERM, _signalled)
    signal.signal(signal.SIGINT, _signalled)
    queue.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        queue.stop(grace=args.grace)
        engine.dispose()
    print("garrison: worker stopped", file=sys.stderr)
    return 0
