"""``garrison server worker``: process jobs from the queue on PostgreSQL (many workers, many machines).

On SQLite it runs the inline queue's jobs in its own process (one machine: the server's threads and the
worker share the ``jobs`` table). SIGTERM or SIGINT stops it gracefully: no new job is taken, the running
ones get ``--grace`` seconds to finish, and those that do not are left queued for another worker; a
second signal stops at once (its jobs are then taken back by the other workers when its heartbeat goes
stale). Progress goes to standard error.
"""

from __future__ import annotations

import argparse

#: The shortest ``--stalled-after``: three heartbeats of every worker (they all beat each second).
MIN_STALLED_AFTER = 3.0


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
        default=None,
        metavar="N",
        help=f"jobs run at once (default: the job_concurrency setting, {d.concurrency})",
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
        default=None,
        metavar="SECONDS",
        help="queue a rescan of every stored SBOM this often (default: the rescan_interval setting, "
        f"{d.rescan_interval:g}; 0: never)",
    )
    p.add_argument(
        "--stalled-after",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="take back the jobs of a worker whose heartbeat is this old: killed, frozen or its machine gone "
        f"(default: the stalled_after setting, {d.stale_after:g})",
    )


def cmd_worker(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from garrison.cli.server import open_store, server_settings
    from garrison.errors import UsageError
    from garrison.jobs import JobOptions, is_postgresql, open_queue, prepare
    from garrison.server import observe
    from garrison.store.db import describe

    if args.stalled_after is not None and args.stalled_after < MIN_STALLED_AFTER:
        # Every worker beats each JobOptions.heartbeat (1 s); a shorter limit would take jobs from live ones.
        raise UsageError(f"--stalled-after: at least {MIN_STALLED_AFTER:g} s")
    settings = server_settings(args)
    observe.configure_logging(settings.log_format, logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    logging.getLogger("procrastinate").setLevel(logging.WARNING)  # our own lines say what each job did
    store = open_store(settings)
    prepare(settings.database_url)
    # The flags over the settings (GARRISON_JOB_CONCURRENCY, the config file's server: keys, …).
    options = JobOptions(
        concurrency=args.concurrency if args.concurrency is not None else settings.job_concurrency,
        stale_after=args.stalled_after if args.stalled_after is not None else settings.stalled_after,
        rescan_interval=args.rescan_interval if args.rescan_interval is not None else settings.rescan_interval,
    )
    try:
        queue = open_queue(settings, store, run_jobs=True, options=options)
    except ValueError as e:  # a periodic interval procrastinate's cron cannot say
        raise UsageError(f"--rescan-interval: {e}") from None
    kind = "PostgreSQL queue" if is_postgresql(settings.database_url) else "inline queue (SQLite)"
    observe.event(
        f"worker on {describe(settings.database_url)} ({kind})",
        concurrency=options.concurrency,
        grace=args.grace,
        rescan_interval=options.rescan_interval,
    )

    stop = threading.Event()

    def _signalled(signum: int, _frame: object) -> None:
        if stop.is_set():
            observe.event("second signal: stopping now", logging.WARNING)
            raise SystemExit(1)
        name = signal.Signals(signum).name
        observe.event(f"{name}: finishing running jobs (up to {args.grace:g} s), taking no new ones")
        stop.set()

    previous = {s: signal.signal(s, _signalled) for s in (signal.SIGTERM, signal.SIGINT)}
    queue.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        queue.stop(grace=args.grace)
        store.engine.dispose()
        for s, handler in previous.items():
            signal.signal(s, handler)
    observe.event("worker stopped")
    return 0
