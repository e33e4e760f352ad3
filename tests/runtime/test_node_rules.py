"""garrison's node rules as data: valid against the rule schema, every rule complete (MITRE, severity,
remediation, Defender and Falco equivalents), every node topic of the issue covered; Falco's syscall rule
files load against the sensor's field registry (rules needing fields the sensor lacks are skipped, named)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from garrison.runtime.engine import load_rules
from garrison.runtime.fields import SYSCALL_FIELDS
from garrison.runtime.node.event import _GETTERS

RULES = Path(__file__).resolve().parents[2] / "src/garrison/rules/runtime"
FALCO = Path(__file__).resolve().parents[3] / "shared/reference/falco"

#: The issue's node topics → the rule that covers each.
TOPICS = {
    "crypto-miner execution": "Crypto miner executed",
    "crypto-miner download": "Crypto miner downloaded",
    "reverse shells": "Reverse shell",
    "shell history cleared": "Shell history cleared",
    "system log removal": "System log removed",
    "download-and-run": "Download and run",
    "nohup of a hidden file in a temp folder": "Nohup of a hidden file in a temporary folder",
    "user added": "User added",
    "password changed": "Password changed",
    "SSH server in a container": "SSH server in a container",
    "kubelet kubeconfig access": "Kubelet kubeconfig access",
    "cloud metadata service access": "Cloud metadata service access",
    "known attack tools": "Known attack tool",
    "credential-access tools": "Known credential access tool",
    "bursts of reconnaissance commands": "Burst of reconnaissance commands",
    "update timers disabled": "Update timer disabled",
    "timestamp tampering": "File timestamp tampering",
    "docker build on a node": "Docker build on a node",
    "privileged command in a container": "Privileged command in a container",
    "new namespace from a container": "New namespace from a container",
    "security tools killed": "Security tool killed",
    "web shells": "Web shell",
    "port forwarding to outside": "Port forwarding to outside",
    "test alert": "Garrison test alert",
}


def test_node_rules_match_the_schema() -> None:
    schema = json.loads((RULES / "schema.json").read_text())
    doc = yaml.safe_load((RULES / "node.yaml").read_text())
    errors = [f"{list(e.path)}: {e.message}" for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]
    assert errors == []


def test_every_node_rule_loads_complete_and_every_topic_is_covered() -> None:
    rs = load_rules([RULES / "node.yaml"])
    assert rs.skipped == ()
    names = {r.name for r in rs.rules}
    assert sorted(set(TOPICS.values()) - names) == []
    for r in rs.rules:
        assert r.source == "syscall" and r.enabled, r.name
        assert r.mitre_tactic.startswith("TA") and r.mitre_technique.startswith("T"), r.name
        assert r.remediation and r.desc, r.name
        assert r.defender or r.falco, r.name
        assert all(d.startswith("K8S.NODE_") for d in r.defender), r.name


def test_sensor_field_table_and_event_agree() -> None:
    """Every field the node event computes is declared for the engine, and the declared fields the event
    does not compute are the known few (the rules using them load and never match)."""
    declared = {f.name for f in SYSCALL_FIELDS}
    computed = set(_GETTERS)
    assert computed - declared == set()
    assert declared - computed - {"garrison.recon_burst"} == {
        "proc.env",
        "proc.duration",
        "group.name",
        "fd.net",
        "fd.snet",
        "fd.rnet",
    }


@pytest.mark.parametrize("name", ["falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"])
def test_falco_syscall_rules_load(name: str) -> None:
    path = FALCO / name
    if not path.exists():
        pytest.skip(f"{path} not present (../shared/reference/falco)")
    rs = load_rules([path])
    assert len(rs.rules) >= 15
    for s in rs.skipped:
        assert s.field and s.reason.startswith("unknown field"), s
    loaded = {r.name for r in rs.rules}
    wanted = {
        "falco_rules.yaml": {"Redirect STDOUT/STDIN to Network Connection in Container", "Clear Log Activities"},
        "falco-incubating_rules.yaml": {"Delete or rename shell history", "User mgmt binaries"},
        "falco-sandbox_rules.yaml": {"Known Cryptominer Process Executed", "Web Server Spawned Shell"},
    }[name]
    assert wanted <= loaded
