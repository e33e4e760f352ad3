"""``garrison runtime rules`` and ``garrison runtime audit`` (a log, stdin or ``--listen`` for the audit
webhook): parser and commands, thin — one :mod:`garrison.api` call each, then a renderer."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

#: ``runtime audit -f``: ``json`` is the issue's JSON lines of alerts; ``findings`` the
#: ``garrison.findings/v2`` document every pillar writes; ``sarif`` SARIF 2.1.0.
AUDIT_FORMATS = ("table", "json", "findings", "sarif")
#: Where the receiver's token comes from when ``--token-file`` is not given.
TOKEN_ENV = "GARRISON_AUDIT_TOKEN"  # noqa: S105 - the name of a variable, not a token
#: The bearer token ``--webhook`` sends, when the receiver wants one.
WEBHOOK_TOKEN_ENV = "GARRISON_WEBHOOK_TOKEN"  # noqa: S105 - the name of a variable, not a token


def _rule_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rules",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="Falco rule file loaded after garrison's own (repeatable, in order: later files append and override)",
    )
    p.add_argument("--no-default-rules", action="store_true", help="do not load garrison's own rules")
    p.add_argument(
        "--webhook",
        default=None,
        metavar="URL",
        help=f"also POST the alerts there as JSON (bearer token from ${WEBHOOK_TOKEN_ENV} when set)",
    )


def _webhook(args: argparse.Namespace) -> Any:
    """The ``--webhook`` sink, or None."""
    url = getattr(args, "webhook", None)
    if not url:
        return None
    from garrison import api

    return api.alert_webhook(url, os.environ.get(WEBHOOK_TOKEN_ENV, "").strip())


def _close_webhook(sink: Any) -> None:
    if sink is not None:
        stats = sink.close()
        print(f"garrison: webhook {sink.url}: {stats.summary()}", file=sys.stderr)


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``runtime`` on the top-level subparsers."""
    from garrison.cli.main import _gate_exit_code

    p = sub.add_parser(
        "runtime",
        help="runtime threat detection: Falco rules over Kubernetes audit events (and node events)",
        description="Evaluate Falco-language rules over Kubernetes audit events. See docs/runtime.md.",
    )
    rsub = p.add_subparsers(dest="runtime_action", metavar="ACTION")

    rules = rsub.add_parser("rules", parents=[common], help="list the loaded rules (and the rules skipped)")
    _rule_flags(rules)
    rules.add_argument("-f", "--format", default="table", choices=("table", "json"))
    rules.add_argument("-o", "--output", type=Path, default=None, help="write to FILE instead of standard output")
    rules.set_defaults(func="garrison.cli.runtime:cmd_rules")

    audit = rsub.add_parser(
        "audit",
        parents=[common],
        help="evaluate a Kubernetes audit log (FILE or -), or receive kube-apiserver's audit webhook (--listen)",
        epilog=f"The receiver's token: --token-file FILE or ${TOKEN_ENV}; requests must send "
        "'Authorization: Bearer TOKEN'. SIGHUP reloads the rules (a broken file keeps the running rules).",
    )
    audit.add_argument("source", nargs="?", default=None, metavar="FILE|-", help="audit log: JSON lines, - for stdin")
    _rule_flags(audit)
    audit.add_argument("-f", "--format", default="table", choices=AUDIT_FORMATS)
    audit.add_argument("-o", "--output", type=Path, default=None, help="write to FILE instead of standard output")
    audit.add_argument("--window", type=float, default=300.0, metavar="SECONDS", help="de-duplication window")
    audit.add_argument("--cluster", default="", help="cluster name to put on alerts (ka.cluster.name)")
    audit.add_argument("--tor-exit-nodes", type=Path, default=None, metavar="FILE", help="Tor exit node IPs")
    audit.add_argument(
        "--max-event-bytes", type=int, default=4 * 1024 * 1024, metavar="N", help="longest event accepted"
    )
    audit.add_argument("--listen", default=None, metavar="HOST:PORT", help="run the audit webhook receiver")
    audit.add_argument("--token-file", type=Path, default=None, metavar="FILE", help="receiver token file")
    audit.add_argument("--max-body", type=int, default=64 * 1024 * 1024, metavar="N", help="largest request body")
    audit.add_argument("--tls-cert", type=Path, default=None, metavar="FILE", help="serve HTTPS with this cert")
    audit.add_argument("--tls-key", type=Path, default=None, metavar="FILE", help="the certificate's key")
    audit.add_argument(
        "--exit-code",
        type=_gate_exit_code,
        default=0,
        metavar="N",
        help="exit with N (e.g. 1) when there are alerts (a CI gate over a log)",
    )
    audit.set_defaults(func="garrison.cli.runtime:cmd_audit")
    # Further runtime actions register here.
    sensor = rsub.add_parser(
        "sensor",
        parents=[common],
        help="run the node sensor (root) until interrupted: processes, files and connections; alerts as JSON lines",
        epilog="Alerts are written when their de-duplication window closes, and at exit (Ctrl-C or SIGTERM), "
        "followed by a summary of the events seen and lost on standard error. See docs/runtime.md, 'Node sensor'.",
    )
    _rule_flags(sensor)
    sensor.add_argument("-o", "--output", type=Path, default=None, help="append alerts to FILE (JSON lines)")
    sensor.add_argument("--window", type=float, default=10.0, metavar="SECONDS", help="de-duplication window")
    sensor.add_argument(
        "--watch",
        action="append",
        default=[],
        metavar="PATH[:MODE]",
        help="also watch PATH (a file, or a folder's direct children) for writes (w), reads (r) or both (rw)",
    )
    sensor.add_argument("--poll", type=float, default=1.0, metavar="SECONDS", help="sock_diag period (0: off)")
    sensor.add_argument(
        "--docker-host",
        default=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"),
        help="Docker daemon socket for container names and images",
    )
    sensor.set_defaults(func="garrison.cli.runtime:cmd_sensor")

    imp = rsub.add_parser(
        "import",
        parents=[common],
        help="evaluate the rules on another sensor's output: Falco JSON alerts or Tetragon JSON events (FILE or -)",
    )
    imp.add_argument("source", metavar="FILE|-", help="JSON lines; - for standard input")
    imp.add_argument("--from", dest="kind", required=True, choices=("falco", "tetragon"), help="the format")
    _rule_flags(imp)
    imp.add_argument("-o", "--output", type=Path, default=None, help="write to FILE instead of standard output")
    imp.add_argument("--window", type=float, default=300.0, metavar="SECONDS", help="de-duplication window")
    imp.add_argument(
        "--no-falco-alerts", action="store_true", help="with --from falco: garrison's alerts only, not Falco's own"
    )
    imp.set_defaults(func="garrison.cli.runtime:cmd_import")


def _options(args: argparse.Namespace) -> Any:
    from garrison import api

    return api.RuntimeOptions(
        rule_files=tuple(args.rules),
        default_rules=not args.no_default_rules,
        window=getattr(args, "window", 300.0),
        cluster=getattr(args, "cluster", ""),
        tor_exit_nodes=getattr(args, "tor_exit_nodes", None),
        max_event_bytes=getattr(args, "max_event_bytes", 4 * 1024 * 1024),
    )


def cmd_rules(args: argparse.Namespace) -> int:
    from garrison import api
    from garrison.cli.output import open_output, output_target
    from garrison.report import runtime_rules

    target = output_target(args.output)
    ruleset = api.runtime_rules(_options(args))
    with open_output(target) as out:
        (runtime_rules.render_json if args.format == "json" else runtime_rules.render_table)(ruleset, out)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    if args.listen is not None:
        return _listen(args)
    from garrison import api
    from garrison.cli.output import open_output, output_target
    from garrison.errors import UsageError

    if args.source is None:
        raise UsageError("runtime audit: give FILE, - (standard input) or --listen HOST:PORT")
    target = output_target(args.output)
    sink = _webhook(args)
    try:
        report = api.runtime_audit(args.source, _options(args), on_alert=sink)
    finally:
        _close_webhook(sink)
    with open_output(target) as out:
        if args.format == "json":
            from garrison.report.alerts_jsonl import render

            render(report.alerts, out)
        else:
            from garrison.report import report_renderer

            fmt = "json" if args.format == "findings" else args.format
            report_renderer(fmt).render(report, out)  # type: ignore[arg-type]
    if args.format != "table" or target.mode != "stdout":
        for w in report.all_warnings()[:20]:
            print(f"garrison: warning: {w}", file=sys.stderr)
    return args.exit_code if args.exit_code and report.alerts else 0


def _token(args: argparse.Namespace) -> str:
    from garrison.errors import UsageError

    token: str
    if args.token_file is not None:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise UsageError(f"--token-file {args.token_file}: {e.strerror}") from None
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(f"the receiver needs a token: --token-file FILE or ${TOKEN_ENV}")
    return token


def _listen(args: argparse.Namespace) -> int:
    import signal
    import threading

    from garrison import api
    from garrison.cli.output import open_output, output_target
    from garrison.errors import UsageError
    from garrison.report.alerts_jsonl import write_alert

    if args.source is not None:
        raise UsageError("runtime audit: give either FILE|- or --listen, not both")
    if args.format not in ("json", "table"):
        raise UsageError("runtime audit --listen writes JSON lines of alerts (-f json)")
    host, sep, port_text = args.listen.rpartition(":")
    if not sep or not port_text.isdigit() or not host:
        raise UsageError(f"--listen {args.listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8765")
    token = _token(args)
    options = _options(args)
    target = output_target(args.output)
    stop = threading.Event()
    sink = _webhook(args)
    with open_output(target) as out:
        lock = threading.Lock()

        def on_alert(a: Any) -> None:
            with lock:
                write_alert(a, out)
                out.flush()
            if sink is not None:
                sink(a)

        receiver = api.audit_receiver(
            options,
            token=token,
            on_alert=on_alert,
            host=host.strip("[]"),
            port=int(port_text),
            max_body=args.max_body,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
        )
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())

        def reload(*_: Any) -> None:
            error = receiver.reload(lambda: api.runtime_rules(options))
            print(f"garrison: rules {'not reloaded: ' + error if error else 'reloaded'}", file=sys.stderr)

        signal.signal(signal.SIGHUP, reload)
        receiver.start()
        h, p = receiver.address
        scheme = "https" if args.tls_cert else "http"
        print(f"garrison: receiving audit events on {scheme}://{h}:{p}/k8s-audit", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
        receiver.stop()
    _close_webhook(sink)
    s = receiver.stats()
    print(
        f"garrison: {s.events} event(s) in {s.bodies} batch(es), {s.alerts} alert(s); refused: "
        f"{s.malformed_bodies} malformed, {s.oversized_bodies} oversized, {s.unauthorized} unauthorized, "
        f"{s.refused_batches} busy batch(es) holding {s.refused_events} event(s) (the sender retries those)",
        file=sys.stderr,
    )
    return 0


def cmd_sensor(args: argparse.Namespace) -> int:
    """``garrison runtime sensor``: the node sensor until SIGINT/SIGTERM, then a summary."""
    import signal

    from garrison import api
    from garrison.cli.output import output_target
    from garrison.report.alerts_jsonl import write_alert

    watches = []
    for w in args.watch:
        path, sep, mode = w.rpartition(":")
        if not sep or mode not in ("r", "w", "rw"):
            path, mode = w, "w"
        watches.append((path, mode))
    target = output_target(args.output)  # refuses a directory before anything starts
    out = sys.stdout if target.path is None else open(target.path, "a", encoding="utf-8")  # noqa: SIM115
    sink = _webhook(args)
    try:

        def on_alert(a: Any) -> None:
            write_alert(a, out)
            out.flush()
            if sink is not None:
                sink(a)

        run = api.node_sensor(
            _options(args),
            on_alert=on_alert,
            watches=watches,
            poll_s=args.poll,
            docker_host=args.docker_host,
            window=args.window,
        )
        run.start()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: run.stop())
        print(f"garrison: node sensor running ({len(run.ruleset.enabled())} rules); Ctrl-C to stop", file=sys.stderr)
        while not run.wait(0.5):
            pass
    finally:
        if out is not sys.stdout:
            out.close()
        _close_webhook(sink)
    print(f"garrison: sensor stopped: {run.stats.summary()}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """``garrison runtime import``: alerts as JSON lines, then what was read on standard error."""
    from garrison import api
    from garrison.cli.output import open_output, output_target
    from garrison.errors import UsageError
    from garrison.report.alerts_jsonl import render

    target = output_target(args.output)
    try:
        f = sys.stdin.buffer if args.source == "-" else open(args.source, "rb")  # noqa: SIM115
    except OSError as e:
        raise UsageError(f"runtime import: {args.source}: {e.strerror}") from None
    try:
        alerts, stats = api.import_events(
            args.kind, f, _options(args), window=args.window, falco_alerts=not args.no_falco_alerts
        )
    finally:
        if f is not sys.stdin.buffer:
            f.close()
    with open_output(target) as out:
        render(alerts, out)
    sink = _webhook(args)
    if sink is not None:
        for a in alerts:
            sink(a)
        _close_webhook(sink)
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(stats.unsupported_types.items()))
    print(
        f"garrison: {stats.events} event(s) from {stats.lines} line(s), {len(alerts)} alert(s); skipped: "
        f"{stats.malformed} malformed, {stats.oversized} oversized, {stats.unsupported} unsupported"
        + (f" ({skipped})" if skipped else ""),
        file=sys.stderr,
    )
    return 0
