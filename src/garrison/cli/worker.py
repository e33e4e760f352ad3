"""``garrison server worker``: process jobs from the queue on PostgreSQL (many workers, many machines)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The worker's own flags (``--database`` is added by :mod:`garrison.cli.server`)."""


def cmd_worker(args: argparse.Namespace) -> int:
    from garrison.errors import UsageError

    raise UsageError("garrison server worker: not built yet")
