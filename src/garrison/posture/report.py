"""What a posture assessment produced: a :class:`~garrison.report.model.FindingsReport` that the table,
JSON (``garrison.findings/v2``) and SARIF renderers take as it is; :meth:`PostureReport.extra` adds the
score, the resource counts, the selection and the recommendations to the JSON document."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from garrison.model.common import Finding, Severity, Suppressed, severity_counts
from garrison.model.posture import Misconfiguration
from garrison.posture.score import Score


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One control's findings: what to fix first, with every affected object."""

    control_id: str
    title: str
    severity: Severity
    remediation: str
    #: ``Kind/namespace/name`` of every affected object, sorted.
    objects: tuple[str, ...]
    findings: int


@dataclass(frozen=True, slots=True)
class PostureReport:
    """Everything one ``garrison posture`` run produced."""

    #: The sources as the user gave them, joined with spaces.
    target: str
    findings: tuple[Finding[Any], ...] = ()
    #: Exempted (``by="exemption"``), ignored and severity-filtered findings, each with its decision.
    suppressed: tuple[Suppressed[Any], ...] = ()
    warnings: tuple[str, ...] = ()
    score: Score | None = None
    #: Objects read, per kind.
    resources: dict[str, int] = field(default_factory=dict)
    #: Kinds read that no selected control applies to (counted, not errors).
    unassessed_kinds: dict[str, int] = field(default_factory=dict)
    #: Objects assessed through their owner (a Pod of a ReplicaSet of a Deployment in a snapshot).
    owned_skipped: int = 0
    documents: int = 0
    files: int = 0
    skipped_documents: int = 0
    #: The controls that ran (after --framework/--control).
    controls: tuple[str, ...] = ()
    frameworks: tuple[str, ...] = ()
    kubernetes_version: str = "latest"
    generated_at: str = ""
    tool_version: str = ""

    @property
    def target_digest(self) -> str:
        return ""

    def all_warnings(self) -> tuple[str, ...]:
        return self.warnings

    def counts(self) -> dict[Severity, int]:
        return severity_counts(self.findings)

    @property
    def exempted(self) -> tuple[Suppressed[Any], ...]:
        return tuple(s for s in self.suppressed if s.suppression.by == "exemption")

    def recommendations(self) -> tuple[Recommendation, ...]:
        """Open findings grouped by control, most severe first, then by how many objects they touch
        (blast radius), then by id."""
        groups: dict[str, list[Misconfiguration]] = {}
        for f in self.findings:
            if isinstance(f.detail, Misconfiguration):
                groups.setdefault(f.detail.control_id, []).append(f.detail)
        out = []
        for cid, ms in groups.items():
            objects = tuple(sorted({m.object.display() for m in ms}))
            first = ms[0]
            out.append(Recommendation(cid, first.title, first.severity, first.remediation, objects, len(ms)))
        out.sort(key=lambda r: (-int(r.severity), -len(r.objects), r.control_id))
        return tuple(out)

    def extra(self) -> dict[str, Any]:
        return {
            "assessment": {
                "kubernetes_version": self.kubernetes_version,
                "frameworks": list(self.frameworks),
                "controls": list(self.controls),
                "files": self.files,
                "documents": self.documents,
                "skipped_documents": self.skipped_documents,
                "resources": dict(sorted(self.resources.items())),
                "resources_total": sum(self.resources.values()),
                "unassessed_kinds": dict(sorted(self.unassessed_kinds.items())),
                "owned_skipped": self.owned_skipped,
                "exempted": len(self.exempted),
            },
            "score": None if self.score is None else self.score.as_dict(),
            "recommendations": [
                {
                    "control": r.control_id,
                    "title": r.title,
                    "severity": r.severity.name,
                    "remediation": r.remediation,
                    "objects": list(r.objects),
                    "findings": r.findings,
                }
                for r in self.recommendations()
            ],
        }

    def by_control(self) -> Counter[str]:
        return Counter(f.rule.id for f in self.findings)
