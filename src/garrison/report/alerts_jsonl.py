"""Runtime alerts as JSON lines (``garrison runtime audit -f json`` and the audit receiver): one object per
alert, written as each alert closes::

    {"rule": "Privileged Container Created", "priority": "Warning", "severity": "HIGH", "count": 1,
     "time": "2026-12-01T22:44:20.123456Z", "first_seen": "…", "last_seen": "…",
     "output": "Privileged container created (user=admin …)", "source": "k8s_audit",
     "entities": {"namespace": "shop", "pod": "priv", "user": "admin", …},
     "mitre": {"tactic": "TA0004", "technique": "T1611"}, "equivalents": {"defender": […], "falco": "…"},
     "events": [{"time", "id", "output"}, …]}

``entities`` holds only the entities the events name. Keys are only ever added.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import IO, Any

import orjson

from garrison.model.runtime import Alert


def alert_line(a: Alert) -> dict[str, Any]:
    """One alert as the JSON-lines object."""
    return {
        "rule": a.rule,
        "priority": a.priority,
        "severity": a.severity.name,
        "count": a.count,
        "time": a.time,
        "first_seen": a.first_seen,
        "last_seen": a.last_seen,
        "output": a.output,
        "source": a.source,
        "entities": {k: v for k, v in asdict(a.entities).items() if v},
        "mitre": {"tactic": a.mitre_tactic, "technique": a.mitre_technique},
        "equivalents": {"defender": list(a.defender), "falco": a.falco},
        "events": [asdict(e) for e in a.events],
    }


def write_alert(a: Alert, out: IO[str]) -> None:
    out.write(orjson.dumps(alert_line(a)).decode())
    out.write("\n")


def render(alerts: tuple[Alert, ...] | list[Alert], out: IO[str]) -> None:
    for a in alerts:
        write_alert(a, out)
