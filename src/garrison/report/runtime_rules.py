"""``garrison runtime rules``: the loaded rules as a table or as JSON (``garrison.runtime-rules/v1``)::

{"schema": "garrison.runtime-rules/v1", "files": [...],
 "rules": [{"name", "source", "priority", "severity", "enabled", "tags", "mitre": {"tactic", "technique"},
            "equivalents": {"defender": [...], "falco"}, "desc", "remediation", "file", "line", "fields"}],
 "skipped": [{"name", "source", "file", "line", "reason", "field"}]}
"""

from __future__ import annotations

import json
from typing import IO, Any

from rich.table import Table
from rich.text import Text

from garrison.runtime.engine import RuleSet

RULES_SCHEMA = "garrison.runtime-rules/v1"


def rules_document(ruleset: RuleSet) -> dict[str, Any]:
    return {
        "schema": RULES_SCHEMA,
        "files": list(ruleset.files),
        "rules": [
            {
                "name": r.name,
                "source": r.source,
                "priority": r.priority,
                "severity": r.severity.name,
                "enabled": r.enabled,
                "tags": list(r.tags),
                "mitre": {"tactic": r.mitre_tactic, "technique": r.mitre_technique},
                "equivalents": {"defender": list(r.defender), "falco": r.falco},
                "desc": r.desc,
                "remediation": r.remediation,
                "file": r.file,
                "line": r.line,
                "fields": list(r.fields),
            }
            for r in ruleset.rules
        ],
        "skipped": [
            {"name": s.name, "source": s.source, "file": s.file, "line": s.line, "reason": s.reason, "field": s.field}
            for s in ruleset.skipped
        ],
        "warnings": list(ruleset.warnings),
    }


def render_json(ruleset: RuleSet, out: IO[str]) -> None:
    json.dump(rules_document(ruleset), out, indent=2, ensure_ascii=False)
    out.write("\n")


def render_table(ruleset: RuleSet, out: IO[str]) -> None:
    from garrison.report.table import SEVERITY_STYLE, _box, _console

    console = _console(out)
    table = Table(box=_box(console), show_lines=False)
    for col in ("Rule", "Source", "Priority", "Severity", "MITRE", "Equivalents", "Tags"):
        table.add_column(col, overflow="fold")
    for r in ruleset.rules:
        eq = "; ".join(x for x in (", ".join(r.defender), f"Falco: {r.falco}" if r.falco else "") if x)
        name = r.name if r.enabled else f"{r.name} (disabled)"
        table.add_row(
            name,
            r.source,
            r.priority,
            Text(r.severity.name, style=SEVERITY_STYLE[r.severity]),
            " ".join(x for x in (r.mitre_tactic, r.mitre_technique) if x),
            eq,
            ", ".join(r.tags),
        )
    console.print(table)
    enabled = sum(1 for r in ruleset.rules if r.enabled)
    console.print(f"{len(ruleset.rules)} rules loaded ({enabled} enabled) from {len(ruleset.files)} file(s)")
    if ruleset.skipped:
        console.print(f"{len(ruleset.skipped)} rule(s) skipped:")
        for s in ruleset.skipped:
            console.print(f"  {s.name} ({s.file}:{s.line}): {s.reason}", markup=False, highlight=False)
    for w in ruleset.warnings:
        console.print(Text(f"warning: {w}", style="yellow"))
