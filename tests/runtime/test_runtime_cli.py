"""``garrison runtime rules`` and ``garrison runtime audit``, run in-process."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from tests.runtime.audit_support import RECORDED, falco, needs_falco, needs_recorded

from garrison.cli.main import run


def test_rules_json_lists_garrison_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["runtime", "rules", "-f", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "garrison.runtime-rules/v1"
    priv = next(r for r in doc["rules"] if r["name"] == "Privileged Container Created")
    assert priv["mitre"] == {"tactic": "TA0004", "technique": "T1611"}
    assert priv["equivalents"]["defender"] == ["K8S_PrivilegedContainer"]


@needs_falco
def test_rules_table_reports_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["runtime", "rules", "--no-default-rules", "--rules", str(falco("falco_rules.yaml"))]) == 0
    out = capsys.readouterr().out
    assert "rule(s) skipped:" in out and "unknown field" in out


def test_broken_rules_file_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- rule: Broken\n  desc: d\n  condition: ka.verb = \n  output: o\n  priority: WARNING\n")
    assert run(["runtime", "rules", "--rules", str(bad)]) == 5
    err = capsys.readouterr().err
    assert f"{bad}:1: rule 'Broken': condition" in err


@needs_recorded
def test_audit_file_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["runtime", "audit", str(RECORDED), "-f", "json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {x["rule"] for x in lines} >= {"Privileged Container Created", "Cluster-Admin Role Bound"}
    for x in lines:
        assert set(x) >= {"rule", "priority", "count", "time", "output", "entities"}
    assert sum(x["count"] for x in lines) == 10


@needs_recorded
def test_audit_stdin_table_and_gate(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(RECORDED.read_bytes())))
    assert run(["runtime", "audit", "-", "--exit-code", "1"]) == 1
    out = capsys.readouterr().out
    assert "Privileged Container Created" in out and "Total: 9" in out


@needs_recorded
def test_audit_findings_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["runtime", "audit", str(RECORDED), "-f", "findings"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "garrison.findings/v2"
    assert doc["runtime"]["events"] == 129 and doc["runtime"]["matches"] == 10
    assert all(f["kind"] == "alert" and f["alert"]["count"] >= 1 for f in doc["findings"])


def test_audit_needs_a_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["runtime", "audit"]) == 2
    assert "FILE, - (standard input) or --listen" in capsys.readouterr().err


def test_listen_needs_a_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GARRISON_AUDIT_TOKEN", raising=False)
    assert run(["runtime", "audit", "--listen", "127.0.0.1:0", "-f", "json"]) == 2
    assert "needs a token" in capsys.readouterr().err


def test_tor_exit_nodes_feed_the_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tor = tmp_path / "tor.txt"
    tor.write_text("# exit nodes\n203.0.113.7\n")
    log = tmp_path / "audit.jsonl"
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": "1",
        "stage": "ResponseComplete",
        "verb": "get",
        "requestURI": "/api/v1/pods",
        "user": {"username": "eve"},
        "sourceIPs": ["203.0.113.7"],
        "responseStatus": {"code": 200},
        "stageTimestamp": "2026-01-01T00:00:00.000000Z",
    }
    log.write_text(json.dumps(event) + "\n" + json.dumps({**event, "sourceIPs": ["198.51.100.1"]}) + "\n")
    assert run(["runtime", "audit", str(log), "-f", "json", "--tor-exit-nodes", str(tor)]) == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["rule"] == "Request from a Tor Exit Node" and line["entities"]["source_address"] == "203.0.113.7"
    tor.write_text("not-an-ip\n")
    assert run(["runtime", "audit", str(log), "--tor-exit-nodes", str(tor)]) == 5
