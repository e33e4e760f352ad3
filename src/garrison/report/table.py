"""Human-readable table: the summary, one block per vulnerable package, then the secrets, then warnings.

On a terminal the table is coloured; when ``out`` is not a TTY (a pipe, a file, CI logs) it is plain
ASCII with no escape codes, so it stays readable in logs and diffable in tests.
"""

from __future__ import annotations

from collections import defaultdict
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from garrison.model import Inventory, Package
from garrison.model.common import Finding, Severity
from garrison.model.secret import Secret
from garrison.model.vuln import Vulnerability
from garrison.report.json_report import sorted_packages
from garrison.report.model import FindingsReport, ScanReport

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.NEGLIGIBLE: "dim",
    Severity.UNKNOWN: "dim",
}


class _Console(Console):
    """rich exits the process with status 1 when the reader of a pipe goes away (``garrison … | head``);
    raise the ordinary error instead, which the CLI treats as a normal end."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def _console(out: IO[str]) -> Console:
    tty = bool(getattr(out, "isatty", lambda: False)())
    if tty:
        return _Console(file=out, force_terminal=True)
    return _Console(
        file=out,
        force_terminal=False,
        no_color=True,
        color_system=None,
        width=200,
        highlight=False,
        emoji=False,
    )


def _box(console: Console) -> box.Box:
    return box.ROUNDED if console.is_terminal else box.ASCII


def _target(report_inv: Inventory) -> str:
    a = report_inv.artifact
    os_txt = (
        f" ({report_inv.os.pretty_name or report_inv.os.family + ' ' + report_inv.os.version_id})"
        if report_inv.os
        else ""
    )
    return f"{a.name}{os_txt}"


def _group(findings: tuple[Finding[Vulnerability], ...]) -> list[tuple[Package, list[Vulnerability]]]:
    groups: dict[Package, list[Vulnerability]] = defaultdict(list)
    for f in findings:
        groups[f.detail.package].append(f.detail)
    return sorted(groups.items(), key=lambda kv: (kv[0].type.value, kv[0].name, kv[0].version))


def _summary_line(report: FindingsReport) -> str:
    counts = report.counts()
    parts = ", ".join(f"{s.name}: {n}" for s, n in counts.items())
    line = f"Total: {len(report.findings)} ({parts})"
    kev = 0
    if isinstance(report, ScanReport):
        kev = sum(1 for f in report.vulnerabilities if f.detail.kev)
        if "secret" in report.scanners:
            line += f"  Secrets: {len(report.secrets)}"
    if kev:
        line += f"  Known exploited: {kev}"
    if report.suppressed:
        line += f"  Suppressed: {len(report.suppressed)}"
    return line


def _vulnerability_table(console: Console, findings: tuple[Finding[Vulnerability], ...]) -> Table:
    table = Table(box=_box(console), show_lines=False)
    for col in ("Package", "Installed", "Vulnerability", "Severity", "Fixed in", "Title"):
        table.add_column(col, overflow="fold")
    for pkg, vulns in _group(findings):
        first = True
        for v in sorted(vulns, key=lambda v: (-int(v.severity), v.vulnerability_id)):
            sev = Text(v.severity.name + (" KEV" if v.kev else ""), style=SEVERITY_STYLE[v.severity])
            table.add_row(
                pkg.name if first else "",
                pkg.version if first else "",
                v.vulnerability_id,
                sev,
                ", ".join(v.fixed_versions) or "(no fix)",
                (v.advisory.summary or v.advisory.details.split("\n", 1)[0])[:80],
            )
            first = False
        table.add_section()
    return table


def _secret_table(console: Console, findings: tuple[Finding[Secret], ...]) -> Table:
    table = Table(box=_box(console), show_lines=False, title="Secrets", title_justify="left")
    for col in ("Severity", "Rule", "File", "Layer", "Match"):
        table.add_column(col, overflow="fold")
    for f in findings:
        s = f.detail
        where = f"{s.path}:{s.line}" + (" (deleted)" if s.deleted else "")
        table.add_row(
            Text(s.severity.name, style=SEVERITY_STYLE[s.severity]),
            s.rule_id,
            where,
            s.layer.removeprefix("sha256:")[:12],
            s.masked,
        )
    return table


def _generic_table(console: Console, findings: tuple[Finding[Any], ...]) -> Table:
    """Findings of a kind without a table of its own: severity, rule, subject and title."""
    table = Table(box=_box(console), show_lines=False)
    for col in ("Severity", "Rule", "Subject", "Title"):
        table.add_column(col, overflow="fold")
    for f in findings:
        sub = f.subject
        where = "/".join(p for p in (sub.resource_kind, sub.namespace, sub.name) if p) or sub.path or sub.host
        table.add_row(Text(f.severity.name, style=SEVERITY_STYLE[f.severity]), f.rule.id, where, f.title)
    return table


def _alert_table(console: Console, findings: tuple[Finding[Any], ...]) -> Table:
    """Runtime alerts, highest severity first: the rule, how many events, when, who and on what."""
    table = Table(box=_box(console), show_lines=False)
    for col in ("Severity", "Rule", "Count", "First seen", "Entities", "Output"):
        table.add_column(col, overflow="fold")
    for f in sorted(findings, key=lambda f: (-f.severity, f.first_seen)):
        a = f.detail
        e = a.entities
        ents = ", ".join(
            f"{k}={v}"
            for k, v in (("ns", e.namespace), ("pod", e.pod), ("user", e.user), ("node", e.node), ("proc", e.process))
            if v
        )
        table.add_row(
            Text(f.severity.name, style=SEVERITY_STYLE[f.severity]),
            a.rule,
            str(a.count),
            a.first_seen[:19].replace("T", " "),
            ents,
            a.output,
        )
    return table


def render(report: FindingsReport, out: IO[str]) -> None:
    console = _console(out)
    if isinstance(report, ScanReport):
        inv = report.inventory
        console.print(Text(_target(inv), style="bold"))
        if "vuln" in report.scanners:
            console.print(f"{len(inv.packages)} packages scanned")
    else:
        console.print(Text(report.target, style="bold"))
    console.print(_summary_line(report))
    vulns = tuple(f for f in report.findings if isinstance(f.detail, Vulnerability))
    if vulns:
        console.print(_vulnerability_table(console, vulns))
    secrets = tuple(f for f in report.findings if isinstance(f.detail, Secret))
    if secrets:
        console.print(_secret_table(console, secrets))
    from garrison.posture.report import PostureReport

    if isinstance(report, PostureReport):
        _posture_tables(console, report)
    from garrison.model.runtime import Alert

    alerts = tuple(f for f in report.findings if isinstance(f.detail, Alert))
    if alerts:
        console.print(_alert_table(console, alerts))
    others = tuple(f for f in report.findings if not isinstance(f.detail, Vulnerability | Secret | Alert))
    if others and not isinstance(report, PostureReport):
        console.print(_generic_table(console, others))
    for w in report.all_warnings():
        console.print(Text(f"warning: {w}", style="yellow"))


def render_inventory(inv: Inventory, out: IO[str]) -> None:
    console = _console(out)
    console.print(Text(_target(inv), style="bold"))
    table = Table(box=_box(console))
    for col in ("Name", "Version", "Type", "Source", "Layer"):
        table.add_column(col, overflow="fold")
    for p in sorted_packages(inv.packages):
        src = p.source_name if p.source_name and p.source_name != p.name else ""
        table.add_row(p.name, p.version, p.type.value, src, p.layer[:19])
    console.print(table)
    console.print(f"{len(inv.packages)} packages")
    for w in inv.warnings:
        console.print(Text(f"warning: {w}", style="yellow"))


# ---------------------------------------------------------------------------------------------- posture


def _posture_tables(console: Console, report: Any) -> None:
    """A posture report: the score, the findings per object with path, actual and expected, then the
    recommendations (controls by severity and number of objects affected)."""
    from garrison.model.posture import Misconfiguration

    score = report.score
    if score is not None:
        overall = score.overall
        line = "Score: " + ("no score (nothing applicable)" if overall.score is None else f"{overall.score:.1f}/100")
        line += f"  checks {overall.checks}, passed {overall.passed}, failed {overall.failed}"
        if overall.exempted:
            line += f", exempted {overall.exempted}"
        console.print(Text(line, style="bold"))
        fw = ", ".join(f"{k} {v.score:.1f}" for k, v in score.by_framework.items() if v.score is not None)
        if fw:
            console.print(f"By framework: {fw}")
    res = report.resources
    line = f"{sum(res.values())} objects in {report.files} file(s)"
    if report.skipped_documents:
        line += f", {report.skipped_documents} document(s) skipped"
    if report.unassessed_kinds:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(report.unassessed_kinds.items()))
        line += f"; not assessed (no control for the kind): {kinds}"
    console.print(line)
    mis = [f for f in report.findings if isinstance(f.detail, Misconfiguration)]
    if mis:
        table = Table(box=_box(console), show_lines=False, title="Misconfigurations", title_justify="left")
        for col in ("Severity", "Control", "Object", "Where", "Path", "Actual", "Expected"):
            table.add_column(col, overflow="fold")
        for f in mis:
            m = f.detail
            o = m.object
            where = f"{o.source}:{o.line}" if o.source and o.line else o.source
            # Text cells: rich would read "[app]" or "[*]" as markup and drop it.
            table.add_row(
                Text(f.severity.name, style=SEVERITY_STYLE[f.severity]),
                Text(m.control_id),
                Text(o.display() + (f" [{m.container}]" if m.container else "")),
                Text(where),
                Text(m.path),
                Text(m.actual),
                Text(m.expected),
            )
        console.print(table)
    recs = report.recommendations()
    if recs:
        table = Table(box=_box(console), show_lines=False, title="Recommendations", title_justify="left")
        for col in ("Severity", "Control", "Objects", "Fix"):
            table.add_column(col, overflow="fold")
        for r in recs:
            sev = Text(r.severity.name, style=SEVERITY_STYLE[r.severity])
            table.add_row(sev, Text(f"{r.control_id} {r.title}"), str(len(r.objects)), Text(r.remediation))
        console.print(table)


def render_controls(controls: Any, out: IO[str]) -> None:
    """``garrison posture controls``: every control with its frameworks and equivalent ids."""
    console = _console(out)
    table = Table(box=_box(console), show_lines=False)
    for col in ("Control", "Severity", "Title", "Kinds", "Frameworks", "Equivalents"):
        table.add_column(col, overflow="fold")
    for c in controls:
        fws = "; ".join(f"{k} {', '.join(v)}" if v else k for k, v in c.frameworks.items())
        eqs = "; ".join(f"{k} {', '.join(v)}" for k, v in c.equivalents.items() if v)
        sev = Text(c.severity.name, style=SEVERITY_STYLE[c.severity])
        table.add_row(c.id, sev, Text(c.title), ", ".join(sorted(c.kinds)), Text(fws), Text(eqs))
    console.print(table)
    console.print(f"{len(controls)} controls")
