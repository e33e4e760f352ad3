"""Rule files: Falco's current rule files load unchanged (the rules garrison cannot evaluate are reported
as skipped with the field), garrison's own control-plane rules follow their schema and carry what the
issue asks of each rule, and both sets load together."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from tests.runtime.audit_support import FALCO_SYSCALL_FILES, falco, needs_falco

from garrison.runtime.engine import load_rules
from garrison.runtime.fields import default_registry
from garrison.services.runtime import RULES_DIR

K8S_RULES = RULES_DIR / "k8s_audit.yaml"
SCHEMA = json.loads((RULES_DIR / "schema.json").read_text())


def _items(path: Path) -> list[dict[str, object]]:
    items: list[dict[str, object]] = yaml.safe_load(path.read_text())
    return items


def test_garrison_rules_follow_the_schema() -> None:
    jsonschema.validate(_items(K8S_RULES), SCHEMA)


def test_the_schema_refuses_a_rule_without_mitre() -> None:
    bad = [
        {
            "rule": "No MITRE",
            "desc": "a rule without its MITRE ids",
            "condition": "ka.verb=create",
            "output": "x %ka.verb",
            "priority": "WARNING",
            "source": "k8s_audit",
            "tags": [],
            "severity": "HIGH",
            "remediation": "give it its ids",
            "equivalents": {},
        }
    ]
    with pytest.raises(jsonschema.ValidationError, match="mitre"):
        jsonschema.validate(bad, SCHEMA)


def test_each_garrison_rule_carries_ids_severity_and_equivalents() -> None:
    ruleset = load_rules([K8S_RULES])
    assert not ruleset.skipped
    assert len(ruleset.rules) >= 20
    for r in ruleset.rules:
        assert re.fullmatch(r"TA\d{4}", r.mitre_tactic), r.name
        assert re.fullmatch(r"T\d{4}(\.\d{3})?", r.mitre_technique), r.name
        assert r.remediation and r.desc, r.name
        assert all(d.startswith("K8S_") for d in r.defender), r.name
    with_defender = {r.name for r in ruleset.rules if r.defender}
    assert len(with_defender) >= 17
    # the list, by the Defender alert types garrison's rules map to
    for alert_type in (
        "K8S_PrivilegedContainer",
        "K8S_SensitiveMount",
        "K8S_ClusterAdminBinding",
        "K8S_HighPrivilegesRole",
        "K8S_KubeSystemContainer",
        "K8S_ExposedDashboard",
        "K8S_ExposedRedis",
        "K8S_ExposedPostgresTrustAuth",
        "K8S_ExposedPostgresBroadIPRange",
        "K8S_ExposedService",
        "K8S_ExposedKubeflow",
        "K8S_DeleteEvents",
        "K8S_CoreDnsModification",
        "K8S_AdmissionController",
        "K8S_MaliciousContainerImage",
        "K8S_PenTestToolsKubeHunter",
        "K8S_TI_Proxy",
        "K8S_ServiceAccountRareOperation",
    ):
        assert any(alert_type in r.defender for r in ruleset.rules), alert_type


def test_garrison_names_cannot_clash_with_falcos() -> None:
    for item in _items(K8S_RULES):
        for key in ("list", "macro"):
            if key in item:
                assert str(item[key]).startswith("garrison_"), item[key]


@needs_falco
def test_current_k8s_audit_rules_load_completely() -> None:
    ruleset = load_rules([falco("k8s_audit_rules.yaml")])
    assert len(ruleset.rules) == 48
    assert ruleset.skipped == ()
    assert ruleset.warnings == ()


@needs_falco
def test_falco_syscall_rules_load_with_skips_named() -> None:
    ruleset = load_rules([falco(f) for f in FALCO_SYSCALL_FILES])
    total = sum(1 for f in FALCO_SYSCALL_FILES for i in _items(falco(f)) if isinstance(i, dict) and "rule" in i)
    assert len(ruleset.rules) + len(ruleset.skipped) == total
    registry = default_registry()
    for s in ruleset.skipped:
        assert s.reason == f"unknown field {s.field}"
        base = s.field.split("[", 1)[0]
        assert registry.lookup("syscall", base) is None, s
        assert s.file.endswith(FALCO_SYSCALL_FILES) and s.line > 0
    loaded = {r.name for r in ruleset.rules}
    assert "Terminal shell in container" in loaded
    assert all(r.source == "syscall" for r in ruleset.rules)


@needs_falco
def test_garrison_and_falco_rules_load_together() -> None:
    together = load_rules([K8S_RULES, falco("k8s_audit_rules.yaml")])
    assert len(together.rules) == len(load_rules([K8S_RULES]).rules) + 48
