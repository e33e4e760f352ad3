"""The ``garrison`` command line: a thin layer over :mod:`garrison.api`.

argparse rather than typer: importing typer (click + rich) costs ~100 ms, measured with
``python -X importtime``, against ~18 ms for argparse, and a warm scan must finish in a fraction of a
second. Everything heavy is imported inside the command functions, so ``garrison --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_SETTING_FLAGS: dict[str, tuple[str, str]] = {
    # setting name: (flag, help)
    "cache_dir": ("--cache-dir", "garrison's own cache folder (layers, advisory database)"),
    "no_cache": ("--no-cache", "do not use or fill the per-layer inventory cache"),
    "mirror": ("--mirror", "advisory mirror laid out like the OSV bucket (https://, http://, file://)"),
    "kev_url": ("--kev-url", "CISA KEV catalog URL or file:// path"),
    "db_path": ("--db", "advisory database file"),
    "offline": ("--offline", "never download; fail when the advisory database is missing"),
    "username": ("--username", "registry user name (else GARRISON_USERNAME or ~/.docker/config.json)"),
    "password": ("--password", "registry password or token (prefer GARRISON_PASSWORD: flags show in `ps`)"),
    "insecure_registries": ("--insecure-registry", "registries (HOST[:PORT], comma-separated) allowed over plain HTTP"),
    "tls_skip_verify": ("--tls-skip-verify", "do not verify registry TLS certificates"),
    "ca_file": ("--ca-file", "CA bundle to verify registries with"),
    "platform": ("--platform", "platform to pick from multi-platform images (default linux/amd64)"),
    "docker_host": ("--docker-host", "Docker daemon socket for docker: sources"),
    "workers": ("--workers", "layers read in parallel"),
}


def _add_setting_flags(p: argparse.ArgumentParser, names: Sequence[str]) -> None:
    from garrison.config import Settings

    defaults = Settings()
    g = p.add_argument_group("settings (also GARRISON_<NAME> env vars and the config file)")
    for name in names:
        flag, helptext = _SETTING_FLAGS[name]
        if isinstance(getattr(defaults, name), bool):
            g.add_argument(flag, dest=f"set_{name}", action="store_const", const=True, default=None, help=helptext)
        else:
            g.add_argument(flag, dest=f"set_{name}", default=None, metavar=name.upper(), help=helptext)


_SOURCE_SETTINGS = (
    "cache_dir",
    "no_cache",
    "username",
    "password",
    "insecure_registries",
    "tls_skip_verify",
    "ca_file",
    "platform",
    "docker_host",
    "workers",
)
_DB_SETTINGS = ("cache_dir", "mirror", "kev_url", "db_path", "offline")
#: The settings each scan target uses: a directory or an SBOM reaches no registry and has no layers.
_SCAN_SETTINGS = {
    "image": tuple(dict.fromkeys((*_SOURCE_SETTINGS, *_DB_SETTINGS))),
    "dir": _DB_SETTINGS,
    "sbom": _DB_SETTINGS,
}


def _gate_exit_code(text: str) -> int:
    """``--exit-code N``: 0 (no gate) or a code that cannot be mistaken for one of garrison's errors."""
    from garrison.errors import MAX_GATE_EXIT_CODE, RESERVED_EXIT_CODES

    try:
        code = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if code in RESERVED_EXIT_CODES or not 0 <= code <= MAX_GATE_EXIT_CODE:
        used = ", ".join(str(c) for c in sorted(RESERVED_EXIT_CODES))
        raise argparse.ArgumentTypeError(
            f"{code} is not allowed: garrison exits with {used} on errors and codes above "
            f"{MAX_GATE_EXIT_CODE} mean a signal or a shell error; use 1 or another code up to {MAX_GATE_EXIT_CODE}"
        )
    return code


#: Top-level commands (``build_parser`` registers each; its flags only when it may be the one run).
COMMANDS = ("sbom", "scan", "db", "posture", "runtime", "admission", "server", "version")


#: ``(command, module with add_parser(sub, common), help)`` of the commands each pillar brings.
_PILLAR_COMMANDS = (
    ("posture", "garrison.cli.posture", "assess manifests, snapshots, clusters and Docker hosts (posture controls)"),
    ("runtime", "garrison.cli.runtime", "runtime threat detection: Falco rules over Kubernetes audit events"),
    (
        "admission",
        "garrison.cli.admission",
        "Kubernetes admission control: judge AdmissionReviews with posture controls",
    ),
    ("server", "garrison.cli.server", "the garrison server: alerts, triage with roles, the audit webhook"),
)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full parser; given ``argv``, the flags of commands whose name does not appear in it are left
    out (every command is still registered, so help, choices and errors are the same): building
    every subcommand's flags is a measurable part of a warm start."""
    named = set(argv or ()) & set(COMMANDS)
    wanted = named or set(COMMANDS)
    p = argparse.ArgumentParser(
        prog="garrison",
        description="Container security: image vulnerabilities and secrets, posture, runtime threats, admission.",
        epilog="Sources: REGISTRY/REPO[:TAG|@DIGEST], oci:DIR[:TAG], docker-archive:FILE, dir:PATH, docker:IMAGE. "
        "Exit codes: 0 ok, N findings remain (--exit-code N), 2 usage error, 3 source error, 4 database error, "
        "5 invalid input document, 70 internal error (a bug), 130 interrupted; --exit-code refuses 2-5, 70, >125.",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--config", type=Path, default=None, help="config file (default ~/.config/garrison/config.yaml)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    # The global flags are accepted after the command too (`garrison sbom IMAGE -q`): SUPPRESS keeps a
    # subcommand from resetting what was given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress display")
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    sbom_help = "list what is installed in an image (an SBOM)"
    if "sbom" not in wanted:
        sub.add_parser("sbom", help=sbom_help)
    else:
        sb = sub.add_parser("sbom", parents=[common], help=sbom_help)
        sb.add_argument("source", help="image reference or source (see below)")
        sb.add_argument("-f", "--format", default="table", choices=_formats(scan=False))
        sb.add_argument("-o", "--output", type=Path, default=None, help="write to FILE instead of standard output")
        _add_setting_flags(sb, _SOURCE_SETTINGS)
        sb.set_defaults(func="garrison.cli.commands:cmd_sbom")

    scan = sub.add_parser("scan", help="scan for known vulnerabilities")
    if "scan" in wanted:
        _add_scan_targets(scan, common)

    db = sub.add_parser("db", help="manage the advisory database")
    if "db" in wanted:
        _add_db_actions(db, common)

    # The pillars' commands: each module's add_parser registers its parser, imported only when the command
    # is the one being run (a placeholder keeps `garrison --help` listing it).
    for name, module, helptext in _PILLAR_COMMANDS:
        if name not in wanted:
            sub.add_parser(name, help=helptext)
        else:
            importlib.import_module(module).add_parser(sub, common)

    ver = sub.add_parser("version", help="print the version")
    ver.set_defaults(func="garrison.cli.commands:cmd_version")
    return p


def _formats(scan: bool) -> list[str]:
    """The ``-f`` choices, read from the one declaration of formats in :mod:`garrison.report`."""
    from garrison.report import INVENTORY_FORMATS, SCAN_FORMATS

    return list(SCAN_FORMATS if scan else INVENTORY_FORMATS)


def _add_scan_targets(scan: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    scan_sub = scan.add_subparsers(dest="target", metavar="TARGET")
    for target, helptext in (
        ("image", "an image (registry, oci:, docker-archive:, docker:, dir:)"),
        ("sbom", "a CycloneDX or SPDX JSON SBOM (from garrison, trivy, syft…)"),
        ("dir", "a directory: installed packages and lock files"),
    ):
        sp = scan_sub.add_parser(target, parents=[common], help=helptext)
        sp.add_argument("source", help="what to scan")
        sp.add_argument("-f", "--format", default="table", choices=_formats(scan=True))
        if target != "sbom":  # an SBOM has no file contents: only vulnerabilities can be looked for
            sp.add_argument(
                "--scanners",
                default="vuln,secret",
                help="what to look for, comma list of vuln and secret (default both; secret alone skips the database)",
            )
            sp.add_argument(
                "--secret-config",
                type=Path,
                default=None,
                help="your secret rules: extra rules, disabled built-ins, allow rules (see docs/secrets.md)",
            )
        sp.add_argument("-o", "--output", type=Path, default=None, help="write to FILE instead of standard output")
        sp.add_argument("--severity", default="", help="only these severities (comma list) e.g. HIGH,CRITICAL")
        sp.add_argument("--ignore-unfixed", action="store_true", help="hide findings with no fixed version")
        sp.add_argument(
            "--ignore-file",
            type=Path,
            default=None,
            help="YAML ignore rules (default .garrisonignore.yaml when present)",
        )
        sp.add_argument("--vex", type=Path, action="append", default=[], help="OpenVEX document (repeatable)")
        sp.add_argument(
            "--exit-code",
            type=_gate_exit_code,
            default=0,
            metavar="N",
            help="exit with N (e.g. 1) when findings remain after filters (a CI gate); not 2-5, 70 or >125",
        )
        _add_setting_flags(sp, _SCAN_SETTINGS[target])
        sp.set_defaults(func="garrison.cli.commands:cmd_scan")


def _add_db_actions(db: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    db_sub = db.add_subparsers(dest="action", metavar="ACTION")
    up = db_sub.add_parser("update", parents=[common], help="download advisories and rebuild the database")
    _add_setting_flags(up, _DB_SETTINGS)
    up.set_defaults(func="garrison.cli.commands:cmd_db_update")
    st = db_sub.add_parser("status", parents=[common], help="what is in the database and how old it is")
    st.add_argument("-f", "--format", default="table", choices=["table", "json"])
    _add_setting_flags(st, _DB_SETTINGS)
    st.set_defaults(func="garrison.cli.commands:cmd_db_status")


def settings_from_args(args: argparse.Namespace) -> Any:
    """Defaults < config file < env < flags, each value validated (a bad one is a usage error naming the
    setting and where it came from); warnings about the config file go to standard error."""
    from garrison.config import load_settings

    flags = {
        name: (flag, value)
        for name, (flag, _) in _SETTING_FLAGS.items()
        if (value := getattr(args, f"set_{name}", None)) is not None
    }
    warnings: list[str] = []
    settings = load_settings(args.config, flags=flags, warnings=warnings)
    for w in warnings:
        print(f"garrison: warning: {w}", file=sys.stderr)
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script. Returns the exit code (and exits with it when run as a script)."""
    code = run(sys.argv[1:] if argv is None else list(argv), script=argv is None)
    if argv is None:
        sys.exit(code)
    return code


def _exit_now(code: int) -> None:
    """End the process at once with ``code`` once standard output and error are flushed, skipping the
    interpreter's shutdown: that frees every object one by one and runs a last full garbage collection
    over them (the parsed documents and findings of an assessment: ~20 ms of a 0.25 s run on 1,000
    objects, measured). Only for a command that declared it (``fast_exit`` in its defaults) because it
    has closed its output and leaves no thread, child process, temporary file or ``atexit`` work
    behind. Returns (and the normal exit follows) when flushing fails, e.g. a closed pipe."""
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None when the process was started with it closed
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


def run(argv: list[str], *, script: bool = False) -> int:
    """Parse ``argv`` and run its command; the exit code. ``script``: this is the console script's
    run, which a command may end itself (:func:`_exit_now`)."""
    from garrison.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, GarrisonError

    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE

    modname, fname = args.func.split(":")
    import importlib

    func = getattr(importlib.import_module(modname), fname)
    # The command may skip clean-up that only matters to a process that goes on (cmd_posture leaves the
    # garbage collector off: turned on again, its first pass walks every object of the assessment).
    args.ending = script and getattr(args, "fast_exit", False)
    try:
        code = int(func(args))
        if args.ending:
            _exit_now(code)
        return code
    except GarrisonError as e:
        if args.debug:
            import traceback

            traceback.print_exc()
        print(f"garrison: error: {_one_line(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("garrison: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Output piped into `head` and the reader went away: not an error worth a message.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as e:  # the one place where unexpected errors become a message
        if args.debug:
            raise
        print(
            f"garrison: internal error: {type(e).__name__}: {_one_line(str(e))} (run with --debug for a traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _one_line(message: str) -> str:
    """Errors are one line on the terminal, whatever a message from below holds."""
    return " ".join(message.split())


if __name__ == "__main__":
    main()
