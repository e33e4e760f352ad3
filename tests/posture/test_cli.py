"""``garrison posture`` in-process: formats, exit codes, usage errors for typos, the controls listing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from garrison.cli.main import run

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers: [{name: c, image: nginx, securityContext: {privileged: true}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: everyone}
roleRef: {kind: ClusterRole, name: view}
subjects: [{kind: Group, name: system:anonymous}]
"""


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    p = tmp_path / "m.yaml"
    p.write_text(MANIFEST)
    return p


def test_json_report(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["posture", str(manifest), "-f", "json", "--framework", "pss-baseline"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "garrison.findings/v2"
    f = doc["findings"][0]
    m = f["misconfiguration"]
    assert f["rule"]["id"] == m["control_id"] == "GAR-PSS-003"
    assert m["object"] == {
        "kind": "Deployment",
        "name": "web",
        "namespace": "shop",
        "api_version": "apps/v1",
        "source": str(manifest),
        "line": 1,
        "document": 0,
        "cluster": "",
        "host": "",
        "ref": "Deployment/shop/web",
    }
    assert m["path"] == "spec.template.spec.containers[0].securityContext.privileged" and m["actual"] == "true"
    assert "checkov:CKV_K8S_16" in f["rule"]["aliases"] and "pss-baseline:Privileged Containers" in m["frameworks"]
    assert doc["score"]["overall"]["score"] is not None and doc["assessment"]["resources_total"] == 2
    assert doc["recommendations"][0]["control"] == "GAR-PSS-003"


def test_sarif_locations(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["posture", str(manifest), "-f", "sarif", "--control", "GAR-PSS-003,GAR-RBAC-013"]) == 0
    results = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    by_rule = {r["ruleId"]: r["locations"][0] for r in results}
    assert by_rule["GAR-PSS-003"]["logicalLocations"][0]["fullyQualifiedName"] == "Deployment/shop/web"
    assert by_rule["GAR-RBAC-013"]["logicalLocations"][0]["fullyQualifiedName"] == "ClusterRoleBinding/everyone"
    assert by_rule["GAR-RBAC-013"]["physicalLocation"]["region"]["startLine"] == 9
    assert by_rule["GAR-PSS-003"]["physicalLocation"]["artifactLocation"]["uri"] == str(manifest).lstrip("/")


def test_table_and_gate(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["posture", str(manifest), "--exit-code", "1"]) == 1
    out = capsys.readouterr().out
    assert "GAR-PSS-003" in out and "Score:" in out and "Recommendations" in out
    assert "Deployment/shop/web [c]" in out  # the container, not swallowed as rich markup
    # Everything exempted or filtered away: the gate passes.
    assert run(["posture", str(manifest), "--control", "GAR-PSS-001", "--exit-code", "1"]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--framework", "pss-restricte"], "did you mean pss-restricted"),
        (["--control", "GAR-PSS-03"], "unknown control 'GAR-PSS-03'"),
        (["--k8s-version", "one"], "Kubernetes version"),
        (["--param", "nonsense"], "NAME=VALUE"),
    ],
)
def test_typos_are_usage_errors(
    manifest: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert run(["posture", str(manifest), *args]) == 2
    assert message in capsys.readouterr().err


def test_exit_code_may_not_be_an_error_code(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run(["posture", str(manifest), "--exit-code", "2"])
    assert exc.value.code == 2 and "not allowed" in capsys.readouterr().err


def test_missing_source_is_a_source_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["posture", str(tmp_path / "nope")]) == 3
    assert "no such file" in capsys.readouterr().err


def test_trusted_registries_param(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run(
            ["posture", str(manifest), "-f", "json", "--control", "GAR-WL-018", "--param", "trusted_registries=ghcr.io"]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert [f["misconfiguration"]["actual"] for f in doc["findings"]] == ['"docker.io"']


def test_controls_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["posture", "controls", "-f", "json", "--framework", "pss-restricted"]) == 0
    doc = json.loads(capsys.readouterr().out)
    ids = [c["id"] for c in doc["controls"]]
    assert len(ids) == 19 and "GAR-PSS-001" in ids
    assert run(["posture", "controls"]) == 0
    out = capsys.readouterr().out
    assert "GAR-RBAC-004" in out and "CKV_K8S_16" in out
