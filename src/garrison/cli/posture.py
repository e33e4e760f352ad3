"""``garrison posture SOURCE…`` and ``garrison posture controls``: parser and commands (thin: one
:mod:`garrison.api` call each, then a renderer)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: The formats of ``garrison posture``: the renderers that take any findings report.
POSTURE_FORMATS = ("table", "json", "sarif")
FRAMEWORK_NAMES = ("pss-baseline", "pss-restricted", "cis-kubernetes", "cis-docker", "nsa", "mitre", "garrison")


def _csv(values: list[str]) -> tuple[str, ...]:
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``posture`` on the top-level subparsers."""
    from garrison.cli.main import _gate_exit_code

    p = sub.add_parser(
        "posture",
        parents=[common],
        help="assess Kubernetes manifests, snapshots, clusters and Docker hosts against posture controls",
        description="Assess SOURCEs against posture controls (Pod Security Standards, workload hygiene, RBAC, "
        "network exposure…). `garrison posture controls` lists the controls.",
        epilog="SOURCE: a file or folder (YAML, JSON, List kinds, Dockerfiles), - (standard input: helm template, "
        "kustomize build), snapshot:FILE (kubectl get … -A -o json), cluster[:CONTEXT], docker[:HOST]. "
        "See docs/posture.md.",
    )
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="what to assess, or `controls` to list the controls")
    p.add_argument(
        "--framework",
        action="append",
        default=[],
        metavar="NAME",
        help=f"only the controls of these frameworks (comma list or repeated): {', '.join(FRAMEWORK_NAMES)}; "
        "pss-restricted includes pss-baseline",
    )
    p.add_argument(
        "--control", action="append", default=[], metavar="ID", help="only these control ids (comma list or repeated)"
    )
    p.add_argument(
        "--severity", default="", help="show only these severities (HIGH,CRITICAL or HIGH+); the score still counts all"
    )
    p.add_argument(
        "--exemptions", type=Path, default=None, metavar="FILE", help="exemptions file (see docs/posture.md)"
    )
    p.add_argument(
        "--ignore-file", type=Path, default=None, metavar="FILE", help="ignore rules (ids, paths, fingerprints)"
    )
    p.add_argument(
        "--k8s-version", default="latest", metavar="VERSION", help="pod security version: latest (v1.37) or v1.N"
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="control parameter, e.g. trusted_registries=registry.example.com,ghcr.io (a JSON value or a comma list)",
    )
    p.add_argument(
        "--exit-code",
        type=_gate_exit_code,
        default=0,
        metavar="N",
        help="exit with N (e.g. 1) when findings remain after exemptions and filters (a CI gate)",
    )
    p.add_argument(
        "--kubeconfig", default="", metavar="FILE", help="kubeconfig for cluster[:CONTEXT] (else $KUBECONFIG)"
    )
    p.add_argument(
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="cluster[:CONTEXT]: only these namespaces (comma list or repeated; cluster-scoped kinds are still read)",
    )
    p.add_argument(
        "--daemon-config", default="", metavar="FILE", help="docker[:HOST]: daemon.json (else the one dockerd uses)"
    )
    from garrison.cli.main import _add_setting_flags

    _add_setting_flags(p, ("docker_host",))
    p.add_argument("-f", "--format", default="table", choices=POSTURE_FORMATS)
    p.add_argument("-o", "--output", type=Path, default=None, help="write to FILE instead of standard output")
    # An assessment closes its output and leaves nothing running: the console script may end at once
    # (cli/main.py's _exit_now) instead of freeing every parsed object.
    p.set_defaults(func="garrison.cli.posture:cmd_posture", fast_exit=True)


def _params(items: list[str]) -> dict[str, Any]:
    from garrison.errors import UsageError

    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param {item!r}: expected NAME=VALUE")
        try:
            out[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[name.strip()] = [v.strip() for v in value.split(",") if v.strip()]
    return out


def cmd_posture(args: argparse.Namespace) -> int:
    from garrison.cli.output import output_target

    if args.sources == ["controls"]:
        return cmd_controls(args)
    from garrison.errors import UsageError

    if not args.sources:
        raise UsageError("posture: name at least one SOURCE (a file, a folder, -, snapshot:FILE, cluster, docker)")
    target = output_target(args.output)  # a bad -o fails before the work
    from garrison.posture import readahead

    # The files are parsed in a second process while this one imports the engine (a CPU permitting).
    ahead = readahead.start(tuple(args.sources))
    try:
        return _assess(args, target, ahead)
    finally:
        if ahead is not None:
            ahead.close()


def _assess(args: argparse.Namespace, target: Any, ahead: Any) -> int:
    from garrison import api
    from garrison.cli.main import settings_from_args
    from garrison.cli.output import open_output

    options = api.PostureOptions(
        frameworks=_csv(args.framework),
        controls=_csv(args.control),
        severity=args.severity,
        exemptions_file=args.exemptions,
        ignore_file=args.ignore_file,
        params=_params(args.param),
        kubernetes_version=args.k8s_version,
        source_options={
            "settings": settings_from_args(args),
            "kubeconfig": args.kubeconfig,
            "namespaces": _csv(args.namespace),
            "daemon_config": args.daemon_config,
            "readahead": ahead,
        },
    )
    import gc

    # One assessment, then the process ends: the cyclic collector would only re-scan the millions of
    # parsed objects (the documents hold no cycles) each time the findings allocate (~10% of a
    # 10,000-object run). Restored afterwards for callers that run the command in-process; not when the
    # process ends right after (cli/main.py's ``ending``): turned on again, the collector's next pass
    # walks every object allocated since it was turned off (~7 ms of a 1,000-object run, measured).
    was_enabled = gc.isenabled() and not getattr(args, "ending", False)
    gc.disable()
    try:
        report = api.assess(tuple(args.sources), options)
        from garrison.report import report_renderer

        with open_output(target) as out:
            report_renderer(args.format).render(report, out)  # type: ignore[arg-type]
    finally:
        if was_enabled:
            gc.enable()
    if args.format != "table" or target.mode != "stdout":  # the table prints them itself
        for w in report.all_warnings()[:20]:
            print(f"garrison: warning: {w}", file=sys.stderr)
    return int(args.exit_code) if args.exit_code and api.gate_fails(report.findings) else 0


def cmd_controls(args: argparse.Namespace) -> int:
    from garrison import api
    from garrison.cli.output import open_output, output_target
    from garrison.errors import UsageError

    if args.format not in ("table", "json"):
        raise UsageError("posture controls: -f table or json")
    controls = api.posture_controls(_csv(args.framework), _csv(args.control))
    target = output_target(args.output)
    with open_output(target) as out:
        if args.format == "json":
            doc = {
                "schema": "garrison.posture-controls/v1",
                "controls": [
                    {
                        "id": c.id,
                        "title": c.title,
                        "severity": c.severity.name,
                        "family": c.family,
                        "version": c.version,
                        "kinds": sorted(c.kinds),
                        "description": c.description,
                        "remediation": c.remediation,
                        "expected": c.expected,
                        "frameworks": {k: list(v) for k, v in c.frameworks.items()},
                        "equivalents": {k: list(v) for k, v in c.equivalents.items() if v},
                        "params": c.params,
                    }
                    for c in controls
                ],
            }
            json.dump(doc, out, indent=2, ensure_ascii=False)
            out.write("\n")
        else:
            from garrison.report.table import render_controls

            render_controls(controls, out)
    return 0
