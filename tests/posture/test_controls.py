"""One parametrized test per control folder (``controls/<CONTROL-ID>/``): ``fail.yaml`` must give that
control at least one finding, ``pass.yaml`` none. Each file is a complete, realistic input (a namespace,
its default-deny NetworkPolicy and the objects under test), so cross-object controls (a Role's
bindings, NetworkPolicy selection) are tested as they run. Every control of this engine's families has
a folder; the rule files validate against ``schema.json``."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import yaml

from garrison.posture.controls import builtin_controls, parse_control_file
from garrison.posture.engine import evaluate
from garrison.posture.inputs import load_path

HERE = Path(__file__).parent / "controls"
FAMILIES = ("pod-security", "workload", "rbac", "network")
#: The trusted registry the fixtures use (GAR-WL-018 is off while no registry is trusted).
PARAMS = {"trusted_registries": ["registry.example.com"]}
FOLDERS = sorted(p.name for p in HERE.iterdir() if p.is_dir())


def _controls() -> list:  # type: ignore[type-arg]
    return [c for c in builtin_controls() if c.family in FAMILIES]


@pytest.mark.parametrize("control_id", FOLDERS)
def test_control_folder(control_id: str) -> None:
    controls = _controls()
    assert control_id in {c.id for c in controls}
    fail = evaluate(load_path(HERE / control_id / "fail.yaml").resources, controls, PARAMS).findings
    hits = [f for f in fail if f.rule.id == control_id]
    assert hits, f"{control_id}: fail.yaml gave no finding"
    for f in hits:
        # Every finding explains itself: where, what was found, what is expected, how to fix it.
        assert f.detail.object.source.endswith("fail.yaml") and f.detail.object.line > 0
        assert f.detail.path and f.detail.expected and f.detail.remediation
    ok = evaluate(load_path(HERE / control_id / "pass.yaml").resources, controls, PARAMS).findings
    assert [f.detail.path for f in ok if f.rule.id == control_id] == []


def test_every_control_has_a_folder() -> None:
    assert {c.id for c in _controls()} == set(FOLDERS)


def test_hardened_baseline_is_clean() -> None:
    # The objects every folder starts from pass every control of these families.
    r = load_path(HERE / "GAR-WL-001" / "pass.yaml").resources
    assert [f.rule.id for f in evaluate(r, _controls(), PARAMS).findings] == []


def _rule_files() -> list[tuple[str, str]]:
    root = resources.files("garrison.rules") / "posture"
    return sorted((e.name, e.read_text(encoding="utf-8")) for e in root.iterdir() if e.name.endswith(".yaml"))


@pytest.mark.parametrize(("name", "text"), _rule_files(), ids=[n for n, _ in _rule_files()])
def test_rule_file_matches_schema(name: str, text: str) -> None:
    import jsonschema

    schema = json.loads((resources.files("garrison.rules") / "posture" / "schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(yaml.safe_load(text), schema)
    assert parse_control_file(text, name)  # and it compiles


@pytest.mark.parametrize(("name", "text"), _rule_files(), ids=[n for n, _ in _rule_files()])
def test_builtin_files_read_alike_by_ryaml_and_pyyaml(name: str, text: str) -> None:
    # Built-in files are read with ryaml (YAML 1.2); a YAML 1.1 spelling (yes/no/on/off, octals)
    # would read differently, and this fails first.
    ryaml = pytest.importorskip("ryaml")
    assert ryaml.loads(text) == yaml.safe_load(text)


def test_every_builtin_control_compiles() -> None:
    # Built-in checks compile on first use; every one of them must compile.
    for c in builtin_controls():
        assert c.checks, c.id
        for chk in c.checks:
            assert chk.fails


def test_a_user_control_file_compiles_when_loaded() -> None:
    from garrison.errors import InputError

    bad = (
        "version: '1'\nfamily: mine\ncontrols:\n  - {id: MY-1, title: t, severity: low, remediation: r, "
        "kinds: [Pod], check: {fail: 'unknown_fn(spec)'}}\n"
    )
    with pytest.raises(InputError, match="unknown function or predicate unknown_fn"):
        parse_control_file(bad, "mine.yaml")


def test_control_ids_unique_and_prefixed_by_family() -> None:
    prefixes = {"pod-security": "GAR-PSS-", "workload": "GAR-WL-", "rbac": "GAR-RBAC-", "network": "GAR-NET-"}
    ids = [c.id for c in builtin_controls()]
    assert len(ids) == len(set(ids))
    for c in _controls():
        assert c.id.startswith(prefixes[c.family])


def test_every_control_names_its_equivalents() -> None:
    # A user migrating from Trivy, Checkov, Kubescape or Polaris recognises most findings.
    controls = _controls()
    with_ids = [
        c for c in controls if any(c.equivalents.get(t) for t in ("trivy", "checkov", "kubescape", "polaris", "pss"))
    ]
    assert len(with_ids) >= 0.85 * len(controls)


def _rbac(rules: list[dict[str, object]]) -> set[str]:
    from garrison.posture.resources import Resource

    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "r"},
        "rules": rules,
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "b"},
        "roleRef": {"kind": "ClusterRole", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "build"}],
    }
    findings = evaluate([Resource(role), Resource(binding)], _controls()).findings
    return {f.rule.id for f in findings if f.detail.object.kind == "ClusterRole"}


def test_rbac_wildcards_grant_what_the_authorizer_grants() -> None:
    everything = _rbac([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}])
    assert {f"GAR-RBAC-{n:03d}" for n in range(1, 12)} | {"GAR-RBAC-016"} <= everything
    # "*" resources of the apps group do not reach core resources (secrets, pods/exec, nodes/proxy).
    apps = _rbac([{"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"]}])
    assert "GAR-RBAC-006" in apps and not {"GAR-RBAC-002", "GAR-RBAC-003", "GAR-RBAC-005"} & apps
