"""Exemptions from a file (control + namespace, resource glob, label selector, reason, expiry) and from
``garrison.dev/exempt`` annotations: reported as exempted, never dropped; typos are errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from garrison.errors import InputError
from garrison.services.posture import PostureOptions, assess

MANIFEST = """apiVersion: apps/v1
kind: DaemonSet
metadata: {name: calico-node, namespace: kube-system, labels: {k8s-app: calico-node}}
spec:
  template:
    spec:
      hostNetwork: true
      containers: [{name: c, image: calico, securityContext: {privileged: true}}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: exporter
  namespace: monitoring
  annotations:
    garrison.dev/exempt: GAR-PSS-002, GAR-PSS-003
    garrison.dev/exempt-reason: reads host metrics
spec:
  template:
    spec:
      hostNetwork: true
      containers: [{name: c, image: exporter, securityContext: {privileged: true}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      hostNetwork: true
      containers: [{name: c, image: web, securityContext: {privileged: true}}]
"""
CONTROLS = ("GAR-PSS-002", "GAR-PSS-003")
TODAY = dt.date(2026, 12, 2)


def _run(tmp_path: Path, exemptions: str | None, today: dt.date = TODAY):  # type: ignore[no-untyped-def]
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST)
    ex = None
    if exemptions is not None:
        ex = tmp_path / "ex.yaml"
        ex.write_text(exemptions)
    return assess([str(m)], PostureOptions(controls=CONTROLS, exemptions_file=ex, today=today))


def _open(report) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {(f.detail.object.name, f.rule.id) for f in report.findings}


def test_annotation_exempts_and_keeps_the_finding_aside(tmp_path: Path) -> None:
    report = _run(tmp_path, None)
    assert _open(report) == {(n, c) for n in ("calico-node", "web") for c in CONTROLS}
    exempted = [(s.finding.detail.object.name, s.finding.rule.id, s.suppression.reason) for s in report.exempted]
    assert sorted(exempted) == [("exporter", c, "reads host metrics") for c in CONTROLS]
    assert all(s.suppression.by == "exemption" for s in report.exempted)


@pytest.mark.parametrize(
    "rule",
    [
        "controls: [GAR-PSS-002, GAR-PSS-003]\n    namespaces: [kube-system]",
        "controls: ['*']\n    resources: ['DaemonSet/kube-system/calico-*']",
        "controls: [GAR-PSS-002, GAR-PSS-003]\n    selector: {matchLabels: {k8s-app: calico-node}}",
        "controls: [GAR-PSS-002, GAR-PSS-003]\n    selector:\n"
        "      matchExpressions: [{key: k8s-app, operator: In, values: [calico-node]}]",
    ],
    ids=["namespace", "resource-glob", "match-labels", "match-expressions"],
)
def test_file_exemption_by_scope(tmp_path: Path, rule: str) -> None:
    report = _run(tmp_path, f"exemptions:\n  - {rule}\n    reason: CNI needs the host\n    by: platform\n")
    assert _open(report) == {("web", c) for c in CONTROLS}
    from_file = [s for s in report.exempted if s.finding.detail.object.name == "calico-node"]
    assert len(from_file) == 2 and all(s.suppression.decided_by == "platform" for s in from_file)


def test_expired_exemption_no_longer_applies_and_says_so(tmp_path: Path) -> None:
    text = "exemptions:\n  - controls: ['*']\n    namespaces: [kube-system]\n    reason: r\n    expires: 2026-12-01\n"
    report = _run(tmp_path, text)
    assert ("calico-node", "GAR-PSS-002") in _open(report)
    assert any("expired on 2026-12-01" in w for w in report.warnings)
    assert ("calico-node", "GAR-PSS-002") not in _open(_run(tmp_path, text, dt.date(2026, 12, 1)))


#: An exemption of every control, to which the cases below add a selector.
_ALL = "exemptions:\n  - controls: ['*']\n    reason: r\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("exemptions:\n  - controls: [GAR-PSS-0003]\n    reason: r\n", "unknown control 'GAR-PSS-0003' (did you mean"),
        ("exemptions:\n  - controls: [GAR-PSS-003]\n", "needs a 'reason'"),
        ("exemptions:\n  - reason: r\n", "needs 'controls'"),
        ("exemptions:\n  - controls: ['*']\n    reason: r\n    expires: soon\n", "YYYY-MM-DD"),
        ("exemptions: {a: 1}\n", "'exemptions' list"),
        # A selector that would select every object (and so exempt the whole cluster) is refused.
        (_ALL + "    selector: {matchLabel: {a: b}}\n", "unknown key 'matchLabel'"),
        (_ALL + "    selector: {}\n", "empty selector"),
        (_ALL + "    selector: {matchLabels: {v: 2}}\n", "matchLabels: a mapping"),
        (_ALL + "    selector:\n      matchExpressions: [{key: a, operator: In}]\n", "In and NotIn need values"),
    ],
)
def test_bad_exemption_files_are_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        _run(tmp_path, text)


def test_unknown_control_in_an_annotation_is_a_warning(tmp_path: Path) -> None:
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST.replace("GAR-PSS-002, GAR-PSS-003", "GAR-PSS-02"))
    report = assess([str(m)], PostureOptions(controls=CONTROLS, today=TODAY))
    assert any("unknown control(s) GAR-PSS-02" in w for w in report.warnings)
    assert ("exporter", "GAR-PSS-003") in _open(report)


def test_exempted_checks_leave_the_score(tmp_path: Path) -> None:
    plain = _run(tmp_path, None).score
    assert plain is not None and plain.overall.exempted == 2 and plain.overall.checks == 4
