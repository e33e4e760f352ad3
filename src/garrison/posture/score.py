"""The secure score: 0-100 per framework, per namespace and for the whole input, weighted by severity.

For a scope (all controls, one framework's controls, one namespace's objects), each (control, object)
pair the control applied to is one *check*; it *passes* when it has no open finding. Then::

    score = 100 * sum weight(control severity) * passed  /  sum weight(control severity) * applicable

with weights CRITICAL 10, HIGH 6, MEDIUM 3, LOW 1. Exempted pairs (every finding of the pair exempted,
or ignored by an ignore rule) leave both sums: an accepted risk is neither a pass nor a fail. Findings
hidden by ``--severity`` still count as failures, so a view filter never raises the score. A scope
where no control applied has **no score** (``None``), not 100.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from garrison.model.common import Finding, Severity, Suppressed
from garrison.model.posture import Misconfiguration
from garrison.posture.controls import FRAMEWORKS, Control

WEIGHTS = {
    Severity.CRITICAL: 10.0,
    Severity.HIGH: 6.0,
    Severity.MEDIUM: 3.0,
    Severity.LOW: 1.0,
    Severity.NEGLIGIBLE: 0.5,
    Severity.UNKNOWN: 1.0,
}
#: Suppression steps that mean "accepted risk" (left out of the score); others (a --severity view)
#: still count as failures.
ACCEPTED = frozenset({"exemption", "ignore-file"})
#: The namespace label of cluster-scoped and non-Kubernetes objects.
CLUSTER_SCOPED = "(cluster-scoped)"


@dataclass(frozen=True, slots=True)
class ScopeScore:
    """One score with what it is made of."""

    #: 0-100 with one decimal, or None when nothing was applicable.
    score: float | None
    #: (control, object) checks that applied, passed and failed; exempted ones are in neither.
    checks: int
    passed: int
    failed: int
    exempted: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "checks": self.checks,
            "passed": self.passed,
            "failed": self.failed,
            "exempted": self.exempted,
        }


@dataclass(frozen=True, slots=True)
class Score:
    overall: ScopeScore
    by_framework: dict[str, ScopeScore]
    by_namespace: dict[str, ScopeScore]

    def as_dict(self) -> dict[str, Any]:
        return {
            "formula": "100 * sum(w * passed) / sum(w * applicable), w = CRITICAL 10, HIGH 6, MEDIUM 3, LOW 1; "
            "exempted checks excluded; null when nothing applied",
            "overall": self.overall.as_dict(),
            "by_framework": {k: v.as_dict() for k, v in self.by_framework.items()},
            "by_namespace": {k: v.as_dict() for k, v in self.by_namespace.items()},
        }


def _object_id(m: Misconfiguration) -> tuple[str, str, str, str, int]:
    o = m.object
    return (o.kind, o.namespace, o.name, o.source, o.document)


class _Acc:
    __slots__ = ("applicable", "exempted", "failed", "w_applicable", "w_passed")

    def __init__(self) -> None:
        self.applicable = self.failed = self.exempted = 0
        self.w_applicable = self.w_passed = 0.0

    def add(self, weight: float, applicable: int, failed: int, exempted: int) -> None:
        counted = applicable - exempted
        self.applicable += counted
        self.failed += failed
        self.exempted += exempted
        self.w_applicable += weight * counted
        self.w_passed += weight * (counted - failed)

    def result(self) -> ScopeScore:
        score = None if self.w_applicable <= 0 else round(100.0 * self.w_passed / self.w_applicable, 1)
        return ScopeScore(score, self.applicable, self.applicable - self.failed, self.failed, self.exempted)


def compute(
    controls: Sequence[Control],
    applicable: Mapping[tuple[str, str], int],
    findings: Iterable[Finding[Any]],
    suppressed: Iterable[Suppressed[Any]],
) -> Score:
    """The score of one assessment: ``applicable`` from the engine, ``findings`` still open,
    ``suppressed`` with their decisions."""
    failing: dict[tuple[str, str], set[tuple[str, str, str, str, int]]] = {}
    accepted: dict[tuple[str, str], set[tuple[str, str, str, str, int]]] = {}
    for f in findings:
        if isinstance(f.detail, Misconfiguration):
            m = f.detail
            failing.setdefault((m.control_id, m.object.namespace), set()).add(_object_id(m))
    for s in suppressed:
        m2 = s.finding.detail
        if not isinstance(m2, Misconfiguration):
            continue
        target = accepted if s.suppression.by in ACCEPTED else failing
        target.setdefault((m2.control_id, m2.object.namespace), set()).add(_object_id(m2))
    by_id = {c.id: c for c in controls}
    # Per control that applied, its weight and the accumulators of its frameworks (looked up once, not
    # at each of its (control, namespace) entries: ~2,000 of them on 1,000 objects).
    per_control: dict[str, tuple[float, list[_Acc]]] = {}
    overall = _Acc()
    frameworks: dict[str, _Acc] = {}
    namespaces: dict[str, _Acc] = {}
    nothing: set[tuple[str, str, str, str, int]] = set()
    for (cid, ns), n in applicable.items():
        got = per_control.get(cid)
        if got is None:
            control = by_id.get(cid)
            if control is None:
                continue
            accs = []
            for fw in FRAMEWORKS:
                if control.in_framework(fw):
                    acc = frameworks.get(fw)
                    if acc is None:
                        acc = frameworks[fw] = _Acc()
                    accs.append(acc)
            got = per_control[cid] = (WEIGHTS[control.severity], accs)
        w, accs = got
        fail_set = failing.get((cid, ns), nothing)
        ok_set = accepted.get((cid, ns), nothing) - fail_set
        failed, ok = len(fail_set), len(ok_set)
        overall.add(w, n, failed, ok)
        key = ns or CLUSTER_SCOPED
        acc = namespaces.get(key)
        if acc is None:
            acc = namespaces[key] = _Acc()
        acc.add(w, n, failed, ok)
        for acc in accs:
            acc.add(w, n, failed, ok)
    return Score(
        overall.result(),
        {k: frameworks[k].result() for k in FRAMEWORKS if k in frameworks},
        {k: v.result() for k, v in sorted(namespaces.items())},
    )
