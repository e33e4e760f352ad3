"""The documented Python API: a facade over :mod:`garrison.services`. The CLI calls only these.

>>> from garrison import api
>>> inv = api.inventory("oci:build/debian:12")                       # doctest: +SKIP
>>> report = api.scan("oci:build/debian:12", options=api.ScanOptions(severities=("CRITICAL",)))  # doctest: +SKIP
>>> [(f.rule.id, f.subject.package) for f in report.findings]       # doctest: +SKIP

Every function raises :class:`garrison.errors.GarrisonError` subclasses on failure; none prints or exits.
For many scans in one process (a worker), hold one :class:`~garrison.services.scan.ScanService`: it keeps
the advisory database open between scans.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from garrison.config import Settings
from garrison.progress import NO_PROGRESS, Progress

if TYPE_CHECKING:
    from garrison.model.common import Finding
    from garrison.model.inventory import Inventory
    from garrison.report.model import ScanReport
    from garrison.services.scan import ScanRequest
    from garrison.vulndb.store import DBStatus


@dataclass(frozen=True)
class ScanOptions:
    """What to look for and what to keep of the findings (the CLI's scanner and filter flags)."""

    #: Keep only these severities (names, e.g. ``("HIGH", "CRITICAL")``); empty = all.
    severities: tuple[str, ...] = ()
    #: Hide vulnerabilities that have no fixed version yet.
    ignore_unfixed: bool = False
    #: YAML ignore rules (rule or advisory ids, packages, paths, expiry dates, reasons); see
    #: docs/vulnerabilities.md.
    ignore_file: Path | None = None
    #: OpenVEX documents; ``not_affected`` and ``fixed`` statements suppress vulnerabilities.
    vex: tuple[Path, ...] = ()
    #: What to look for: ``vuln``, ``secret`` or both (the default, as Trivy's ``image`` does).
    scanners: tuple[str, ...] = ("vuln", "secret")
    #: A secret rule file of your own (extra rules, disabled built-ins, allow rules); see docs/secrets.md.
    secret_config: Path | None = None


def _request(options: ScanOptions | None) -> ScanRequest:
    """Parse the options before any download: a bad ignore file or scanner name fails first."""
    from garrison.findings.suppress import build_options
    from garrison.services.scan import ScanRequest, parse_scanners

    options = options or ScanOptions()
    return ScanRequest(
        scanners=parse_scanners(",".join(options.scanners)),
        suppress=build_options(
            severity=",".join(options.severities),
            ignore_unfixed=options.ignore_unfixed,
            ignore_file=options.ignore_file,
            vex=options.vex,
        ),
        secret_config=options.secret_config,
    )


def inventory(reference: str, settings: Settings | None = None, progress: Progress = NO_PROGRESS) -> Inventory:
    """Open ``reference`` (``oci:DIR[:tag]``, ``docker-archive:FILE``, ``dir:PATH``, ``docker:IMAGE`` or a
    registry reference) and return what is installed in it (``garrison sbom``: packages only)."""
    from garrison.services.scan import ScanService

    return ScanService(settings, progress).inventory(reference)


def scan(
    reference: str,
    settings: Settings | None = None,
    options: ScanOptions | None = None,
    progress: Progress = NO_PROGRESS,
) -> ScanReport:
    """Scan ``reference`` for vulnerabilities (the advisory database is built first when missing) and
    secrets, as ``options.scanners`` says."""
    from garrison.services.scan import ScanService

    request = _request(options)
    with ScanService(settings, progress) as service:
        return service.scan(reference, request)


def scan_sbom(
    path: Path,
    settings: Settings | None = None,
    options: ScanOptions | None = None,
    progress: Progress = NO_PROGRESS,
) -> ScanReport:
    """Match the packages of a CycloneDX or SPDX JSON SBOM (garrison's, trivy's, syft's…). An SBOM has
    no file contents, so only the vulnerability scanner runs."""
    from garrison.services.scan import Scanner, ScanService
    from garrison.sources.sbom import load_sbom

    request = _request(options)
    request = replace(request, scanners=frozenset({Scanner.VULN}))
    with ScanService(settings, progress) as service:
        return service.scan_inventory(load_sbom(path), request)


def scan_inventory(
    inv: Inventory,
    settings: Settings | None = None,
    options: ScanOptions | None = None,
    progress: Progress = NO_PROGRESS,
) -> ScanReport:
    """Match and suppress an inventory you already have (its ``secrets`` are reported when the secret
    scanner is asked for)."""
    from garrison.services.scan import ScanService

    with ScanService(settings, progress) as service:
        return service.scan_inventory(inv, _request(options))


def update_database(settings: Settings | None = None, progress: Progress = NO_PROGRESS) -> DBStatus:
    """``garrison db update``: fetch the mirror and rebuild the advisory database when it changed."""
    from garrison.services.database import update_database as _update

    return _update(settings or Settings(), progress)


def database_status(settings: Settings | None = None) -> DBStatus:
    """``garrison db status``: what the advisory database holds."""
    from garrison.services.database import database_status as _status

    return _status(settings or Settings())


def format_database_status(status: DBStatus, fmt: str = "table") -> str:
    """``db status`` as text: ``table`` for people, ``json`` for scripts."""
    from garrison.vulndb.store import format_status

    return format_status(status, fmt)


# ---------------------------------------------------------------------------------------------- posture

if TYPE_CHECKING:
    from garrison.posture.controls import Control
    from garrison.posture.report import PostureReport
    from garrison.services.posture import PostureOptions as PostureOptions


def __getattr__(name: str) -> object:
    """``api.PostureOptions`` without importing the posture service on every ``garrison`` start."""
    if name == "PostureOptions":
        from garrison.services.posture import PostureOptions

        return PostureOptions
    if name == "RuntimeOptions":
        from garrison.services.runtime import RuntimeOptions

        return RuntimeOptions
    raise AttributeError(name)


def assess(sources: tuple[str, ...] | list[str], options: PostureOptions | None = None) -> PostureReport:
    """``garrison posture SOURCE…``: assess manifests, snapshots, clusters or Docker hosts against the
    posture controls (exemptions and suppression applied, the score computed)."""
    from garrison.services.posture import assess as _assess

    return _assess(tuple(sources), options)


def posture_controls(frameworks: tuple[str, ...] = (), ids: tuple[str, ...] = ()) -> tuple[Control, ...]:
    """``garrison posture controls``: the built-in controls (of ``frameworks``, narrowed to ``ids``);
    an unknown framework or id is a usage error."""
    from garrison.posture.controls import builtin_controls, select

    return select(builtin_controls(), frameworks, ids)


# ---------------------------------------------------------------------------------------------- runtime

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import IO

    from garrison.model.runtime import Alert
    from garrison.runtime.engine import RuleSet
    from garrison.runtime.importers import ImportStats
    from garrison.runtime.node.run import SensorRun
    from garrison.runtime.receiver import AuditReceiver
    from garrison.runtime.report import RuntimeReport
    from garrison.runtime.sinks import WebhookSink
    from garrison.services.runtime import RuntimeOptions as RuntimeOptions


def runtime_rules(options: RuntimeOptions | None = None) -> RuleSet:
    """``garrison runtime rules``: garrison's runtime rules and the ``rule_files`` of ``options``,
    loaded and compiled (``.skipped`` lists the rules garrison cannot evaluate, with the reason)."""
    from garrison.services.runtime import RuntimeOptions, load_ruleset

    return load_ruleset(options or RuntimeOptions())


def runtime_audit(
    source: str | Path, options: RuntimeOptions | None = None, on_alert: Callable[[Alert], None] | None = None
) -> RuntimeReport:
    """``garrison runtime audit FILE|-``: evaluate a Kubernetes audit log (JSON lines; ``-`` reads
    standard input) into de-duplicated alerts."""
    import sys

    from garrison.errors import NotFoundError
    from garrison.services.runtime import RuntimeOptions, audit_log, load_ruleset

    options = options or RuntimeOptions()
    ruleset = load_ruleset(options)
    if str(source) == "-":
        return audit_log(sys.stdin.buffer, "-", options, ruleset=ruleset, on_alert=on_alert)
    path = Path(source)
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        raise NotFoundError(f"{source}: no such file") from None
    except OSError as e:
        raise NotFoundError(f"{source}: {e.strerror}") from None
    with stream:
        return audit_log(stream, str(source), options, ruleset=ruleset, on_alert=on_alert)


def audit_receiver(
    options: RuntimeOptions | None = None,
    *,
    token: str,
    on_alert: Callable[[Alert], None],
    host: str = "127.0.0.1",
    port: int = 0,
    max_body: int | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> AuditReceiver:
    """``garrison runtime audit --listen``: the audit webhook receiver, not yet started (``start()``,
    ``stop()``, ``reload(load)``, ``stats()``)."""
    from garrison.runtime.receiver import DEFAULT_MAX_BODY, AuditReceiver
    from garrison.services.runtime import RuntimeOptions, load_ruleset

    options = options or RuntimeOptions()
    context = None
    if tls_cert is not None:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_cert, tls_key)
    return AuditReceiver(
        load_ruleset(options),
        token=token,
        on_alert=on_alert,
        host=host,
        port=port,
        cluster=options.cluster,
        window=options.window,
        max_body=max_body or DEFAULT_MAX_BODY,
        max_event_bytes=options.max_event_bytes,
        ssl_context=context,
    )


def node_sensor(
    options: RuntimeOptions | None = None,
    *,
    on_alert: Callable[[Alert], None],
    watches: Sequence[tuple[str, str]] = (),
    poll_s: float = 1.0,
    docker_host: str = "",
    window: float = 10.0,
) -> SensorRun:
    """``garrison runtime sensor``: the node sensor over the loaded rules, not yet started (``start()``,
    ``stop()``, ``wait(timeout)``, ``stats``). Needs root: a clear :class:`UsageError` without it."""
    from garrison.runtime.node.run import SensorRun
    from garrison.runtime.node.sensor import SensorConfig, require_root
    from garrison.services.runtime import RuntimeOptions, load_ruleset

    require_root()
    ruleset = load_ruleset(options or RuntimeOptions())
    config = SensorConfig(extra_watches=list(watches), poll_s=poll_s, docker_host=docker_host)
    return SensorRun(ruleset, on_alert, config=config, window=window)


def import_events(
    kind: str,
    stream: IO[bytes],
    options: RuntimeOptions | None = None,
    *,
    window: float = 300.0,
    falco_alerts: bool = True,
) -> tuple[list[Alert], ImportStats]:
    """``garrison runtime import``: Falco's or Tetragon's JSON output through garrison's rules (and
    Falco's own alerts kept for triage when ``falco_alerts``); returns the alerts and what was read."""
    from garrison.runtime.importers import ImportStats, import_alerts
    from garrison.services.runtime import RuntimeOptions, load_ruleset

    stats = ImportStats()
    ruleset = load_ruleset(options or RuntimeOptions())
    alerts = import_alerts(kind, stream, ruleset, window=window, falco_alerts=falco_alerts, stats=stats)
    return list(alerts), stats


def alert_webhook(url: str, token: str = "", settings: Settings | None = None) -> WebhookSink:
    """``--webhook URL``: a sink that posts alerts there as JSON from a background thread (call it with
    each alert; ``close()`` flushes and returns what was delivered, failed and dropped)."""
    from garrison.runtime.sinks import WebhookSink

    return WebhookSink(url, token=token, settings=settings)


def gate_fails(findings: Iterable[Finding[Any]]) -> bool:
    """The CI gate (``--exit-code N``): does any open finding, of any kind, remain?"""
    from garrison.findings.gate import should_fail

    return should_fail(findings)
