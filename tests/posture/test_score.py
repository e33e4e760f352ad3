"""The secure score: the documented formula, per framework and namespace; no score for an empty input;
a --severity view does not raise it."""

from __future__ import annotations

from pathlib import Path

from garrison.model.common import Severity
from garrison.posture.score import CLUSTER_SCOPED, WEIGHTS
from garrison.services.posture import PostureOptions, assess

TWO = """apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: a}
spec: {hostPID: true, containers: [{name: c, image: i, securityContext: {privileged: true}}]}
---
apiVersion: v1
kind: Pod
metadata: {name: ok, namespace: b}
spec: {containers: [{name: c, image: i}]}
"""


def _report(tmp_path: Path, text: str, **kw):  # type: ignore[no-untyped-def]
    p = tmp_path / "m.yaml"
    p.write_text(text)
    return assess([str(p)], PostureOptions(**kw))


def test_formula(tmp_path: Path) -> None:
    # GAR-PSS-002 (HIGH) and GAR-PSS-003 (CRITICAL) on two pods: pod "bad" fails both.
    r = _report(tmp_path, TWO, controls=("GAR-PSS-002", "GAR-PSS-003"))
    hi, crit = WEIGHTS[Severity.HIGH], WEIGHTS[Severity.CRITICAL]
    expected = round(100 * (hi + crit) / (2 * hi + 2 * crit), 1)
    assert r.score.overall.score == expected == 50.0
    assert (r.score.overall.checks, r.score.overall.passed, r.score.overall.failed) == (4, 2, 2)
    assert r.score.by_namespace["a"].score == 0.0 and r.score.by_namespace["b"].score == 100.0
    assert r.score.by_framework["pss-baseline"].score == 50.0
    assert "cis-docker" not in r.score.by_framework


def test_weights_favour_severe_controls(tmp_path: Path) -> None:
    only_high = _report(
        tmp_path, TWO.replace(", securityContext: {privileged: true}", ""), controls=("GAR-PSS-002", "GAR-PSS-003")
    )
    # Failing one HIGH of four checks: 100 * (6 + 10 + 10) / (6*2 + 10*2).
    assert only_high.score.overall.score == round(100 * 26 / 32, 1)


def test_empty_input_has_no_score(tmp_path: Path) -> None:
    r = _report(tmp_path, "# nothing\n")
    assert r.score.overall.score is None and r.score.by_framework == {} and r.score.by_namespace == {}
    r2 = _report(tmp_path, "apiVersion: v1\nkind: Widget\nmetadata: {name: w}\n")
    assert r2.score.overall.score is None


def test_severity_view_does_not_change_the_score(tmp_path: Path) -> None:
    full = _report(tmp_path, TWO)
    viewed = _report(tmp_path, TWO, severity="CRITICAL")
    assert viewed.score == full.score
    assert {f.severity for f in viewed.findings} == {Severity.CRITICAL}
    assert len(viewed.findings) < len(full.findings) and viewed.suppressed


def test_cluster_scoped_objects_have_their_own_row(tmp_path: Path) -> None:
    text = (
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: b}\n"
        "roleRef: {kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: User, name: u}]\n"
    )
    r = _report(tmp_path, text, frameworks=("cis-kubernetes",))
    assert r.score.by_namespace[CLUSTER_SCOPED].failed == 1
