"""Runtime use cases: load the rules, evaluate events into alerts, audit a log, run the audit receiver.

The CLI, the API facade and (later) the server call these; none wires the engine by hand.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from garrison.errors import InputError, UsageError
from garrison.model.runtime import Alert
from garrison.runtime.alerts import DEFAULT_WINDOW, AlertAggregator
from garrison.runtime.audit_source import DEFAULT_MAX_EVENT_BYTES, ReadStats, read_events
from garrison.runtime.engine import RuleSet, load_rules
from garrison.runtime.events import Event
from garrison.runtime.report import InputStats, RuntimeReport

#: garrison's own runtime rule files (package data).
RULES_DIR = Path(__file__).resolve().parent.parent / "rules" / "runtime"
#: The list the Tor rule reads; ``--tor-exit-nodes FILE`` appends the file's addresses to it.
TOR_LIST = "garrison_tor_exit_nodes"


def default_rule_files() -> tuple[Path, ...]:
    """garrison's rule files, in name order (``k8s_audit.yaml``, the node rules…)."""
    return tuple(sorted(RULES_DIR.glob("*.yaml")))


@dataclass(frozen=True)
class RuntimeOptions:
    """Which rules, and how alerts are folded."""

    #: Rule files loaded after garrison's own (Falco's files, your overrides), in order.
    rule_files: tuple[Path, ...] = ()
    #: Load garrison's own rules first (``--no-default-rules`` turns this off).
    default_rules: bool = True
    #: De-duplication window, seconds.
    window: float = DEFAULT_WINDOW
    #: The cluster name the events come from (``ka.cluster.name`` and the alerts' ``cluster``).
    cluster: str = ""
    #: A file of Tor exit node addresses (one per line, ``#`` comments), for the Tor rule.
    tor_exit_nodes: Path | None = None
    #: Longest single event accepted.
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES


def _tor_rules(path: Path) -> tuple[str, str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"--tor-exit-nodes {path}: cannot read: {e}") from None
    ips = []
    for n, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            ips.append(str(ipaddress.ip_address(text)))
        except ValueError:
            raise InputError(f"{path}:{n}: {text!r} is not an IP address") from None
    items = ", ".join(f'"{ip}"' for ip in ips)
    return (str(path), f"- list: {TOR_LIST}\n  items: [{items}]\n  append: true\n")


def load_ruleset(options: RuntimeOptions) -> RuleSet:
    """The rules ``options`` name. Raises RuleLoadError (file, line, rule) or UsageError (no rules)."""
    files = [*(default_rule_files() if options.default_rules else ()), *options.rule_files]
    if not files:
        raise UsageError("no rules: give --rules FILE or drop --no-default-rules")
    for f in options.rule_files:
        if not Path(f).is_file():
            raise UsageError(f"--rules {f}: no such file")
    texts = []
    if options.tor_exit_nodes is not None:
        if not options.default_rules:
            raise UsageError("--tor-exit-nodes feeds garrison's Tor rule: it needs the default rules")
        texts.append(_tor_rules(options.tor_exit_nodes))
    return load_rules(files, texts=texts)


@dataclass(frozen=True, slots=True)
class Evaluation:
    alerts: tuple[Alert, ...]
    events: int
    matches: int


def evaluate_events(
    events: Iterable[Event],
    ruleset: RuleSet,
    *,
    window: float = DEFAULT_WINDOW,
    on_alert: Callable[[Alert], None] | None = None,
) -> Evaluation:
    """Every event through the rules, matches folded into alerts (``on_alert`` is called as each alert
    closes, the last ones at the end). The sum of the alerts' counts equals ``matches``."""
    agg = AlertAggregator(window=window, registry=ruleset.registry)
    alerts: list[Alert] = []

    def emit(a: Alert) -> None:
        alerts.append(a)
        if on_alert is not None:
            on_alert(a)

    n = 0
    evaluate = ruleset.evaluate
    add = agg.add
    for ev in events:
        n += 1
        matches = evaluate(ev)
        if matches:
            for m in matches:
                closed = add(m)
                if closed is not None:
                    emit(closed)
    for a in agg.flush():
        emit(a)
    return Evaluation(tuple(alerts), n, agg.matches)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def audit_log(
    stream: BinaryIO,
    name: str,
    options: RuntimeOptions | None = None,
    *,
    ruleset: RuleSet | None = None,
    on_alert: Callable[[Alert], None] | None = None,
) -> RuntimeReport:
    """Evaluate an audit log (JSON lines; ``name`` is how the user named it: a path or ``-``)."""
    options = options or RuntimeOptions()
    ruleset = ruleset or load_ruleset(options)
    stats = ReadStats()
    events = read_events(stream, stats, max_event_bytes=options.max_event_bytes, cluster=options.cluster)
    ev = evaluate_events(events, ruleset, window=options.window, on_alert=on_alert)
    warnings = [*ruleset.warnings]
    if summary := stats.summary():
        warnings.append(f"{name}: {summary}")
    warnings.extend(f"{name}: {p}" for p in stats.problems[1:5])
    if ruleset.skipped:
        warnings.append(f"{len(ruleset.skipped)} rule(s) skipped (fields or sources garrison does not have)")
    from garrison import __version__

    return RuntimeReport(
        target=name,
        alerts=ev.alerts,
        matches=ev.matches,
        stats=InputStats(events=stats.events, lines=stats.lines, malformed=stats.malformed, oversized=stats.oversized),
        rules=len(ruleset.enabled()),
        rule_files=ruleset.files,
        skipped=ruleset.skipped,
        warnings=tuple(warnings),
        generated_at=_now(),
        tool_version=__version__,
    )
