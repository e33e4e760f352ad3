"""Command implementations. Each turns parsed arguments into one :mod:`garrison.api` call and renders it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from garrison.cli.main import settings_from_args
from garrison.cli.output import open_output, output_target
from garrison.cli.progress import progress_for


def cmd_version(args: argparse.Namespace) -> int:
    from garrison import __version__

    print(f"garrison {__version__}")
    return 0


def cmd_sbom(args: argparse.Namespace) -> int:
    from garrison import api
    from garrison.report import render_inventory

    settings = settings_from_args(args)
    target = output_target(args.output)  # a bad -o fails before the work, not after
    with progress_for(args.quiet) as progress:
        inv = api.inventory(args.source, settings, progress)
    with open_output(target) as out:
        render_inventory(inv, args.format, out)
    if args.format != "table" or target.mode != "stdout":  # the table prints them itself
        _print_warnings(inv.warnings)
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    from garrison import api
    from garrison.report import render

    settings = settings_from_args(args)
    target = output_target(args.output)  # a bad -o fails before the work, not after
    options = api.ScanOptions(
        severities=tuple(s.strip() for s in args.severity.split(",") if s.strip()),
        ignore_unfixed=args.ignore_unfixed,
        ignore_file=args.ignore_file or _default_ignore_file(),
        vex=tuple(args.vex),
        scanners=tuple(getattr(args, "scanners", "vuln").split(",")),
        secret_config=getattr(args, "secret_config", None),
    )
    with progress_for(args.quiet) as progress:
        if args.target == "sbom":
            report = api.scan_sbom(Path(args.source), settings, options, progress)
        elif args.target == "dir":
            report = api.scan(f"dir:{args.source}", settings, options, progress)
        else:
            report = api.scan(args.source, settings, options, progress)
    with open_output(target) as out:
        render(report, args.format, out)
    if args.format != "table" or target.mode != "stdout":  # the table prints them itself
        _print_warnings((*report.inventory.warnings, *report.warnings))
    # --exit-code N: a CI gate on the findings of every kind that remain after the suppression step.
    return int(args.exit_code) if args.exit_code and api.gate_fails(report.findings) else 0


def _default_ignore_file() -> Path | None:
    p = Path(".garrisonignore.yaml")
    return p if p.is_file() else None


def cmd_db_update(args: argparse.Namespace) -> int:
    from garrison import api

    settings = settings_from_args(args)
    with progress_for(args.quiet) as progress:
        status = api.update_database(settings, progress)
    _print_db_status(status, "table")
    return 0


def cmd_db_status(args: argparse.Namespace) -> int:
    from garrison import api

    _print_db_status(api.database_status(settings_from_args(args)), args.format)
    return 0


def _print_db_status(status: Any, fmt: str) -> None:
    from garrison import api

    sys.stdout.write(api.format_database_status(status, fmt))


def _print_warnings(warnings: tuple[str, ...] | list[str]) -> None:
    if not warnings:
        return
    shown = list(warnings)[:20]
    for w in shown:
        print(f"garrison: warning: {w}", file=sys.stderr)
    if len(warnings) > len(shown):
        print(f"garrison: warning: … and {len(warnings) - len(shown)} more warnings", file=sys.stderr)
