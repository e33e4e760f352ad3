"""Falco's own Kubernetes audit test suite (falco/test/falco_k8s_audit_tests.yaml at 65435d4): each case
loads the rule files it names, reads its trace through garrison's file input and compares the matches with
the counts Falco expects. The rule files map as Falco's test harness used them (see docs/runtime.md):
``../rules/k8s_audit_rules.yaml`` is the rules file of that commit; ``../rules/falco_rules.yaml`` was the one
syscall rules file of the time and is today's three maturity files; ``./rules/k8s_audit/X`` the helpers."""

from __future__ import annotations

from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.runtime.audit_support import FALCO, FALCO_SYSCALL_FILES, falco, needs_falco

from garrison.runtime.audit_source import ReadStats, read_events
from garrison.runtime.engine import RuleSet, load_rules

pytestmark = needs_falco


class _MuxLoader(yaml.SafeLoader):
    """The suite is an avocado ``!mux`` document: a mapping with a tag."""


def _mux(loader: yaml.SafeLoader, node: yaml.Node) -> dict[object, object]:
    assert isinstance(node, yaml.MappingNode)
    return loader.construct_mapping(node, deep=True)


_MuxLoader.add_constructor("!mux", _mux)


def _cases() -> dict[str, dict[str, Any]]:
    path = falco("falco_k8s_audit_tests.yaml")
    if not path.is_file():
        return {}
    doc = yaml.load(path.read_text(), Loader=_MuxLoader)
    return dict(doc["trace_files"])


CASES = _cases()


def _rule_files(names: list[str]) -> list[Path]:
    out: list[Path] = []
    for name in names:
        if name == "../rules/falco_rules.yaml":
            out.extend(falco(f) for f in FALCO_SYSCALL_FILES)
        elif name == "../rules/k8s_audit_rules.yaml":
            out.append(falco("k8s_audit_rules_at_falco_65435d4.yaml"))
        else:
            out.append(falco("falco_test_rules_k8s_audit", name.split("./rules/k8s_audit/", 1)[1]))
    return out


@cache
def _ruleset(names: tuple[str, ...]) -> RuleSet:
    return load_rules(_rule_files(list(names)))


def _run(case: dict[str, Any]) -> tuple[Counter[str], set[str], ReadStats]:
    ruleset = _ruleset(tuple(case["rules_file"]))
    stats = ReadStats()
    counts: Counter[str] = Counter()
    priorities: set[str] = set()
    trace = FALCO / "k8s_audit_trace_files" / Path(case["trace_file"]).name
    with trace.open("rb") as f:
        for event in read_events(f, stats):
            for m in ruleset.evaluate(event):
                counts[m.rule.name] += 1
                priorities.add(m.rule.priority.upper())
    return counts, priorities, stats


def test_the_suite_is_all_there() -> None:
    assert len(CASES) == 66
    assert sum(1 for c in CASES.values() if c["detect"]) == 45


@pytest.mark.parametrize("name", sorted(CASES))
def test_falco_case(name: str) -> None:
    case = CASES[name]
    counts, priorities, _ = _run(case)
    if not case["detect"]:
        assert counts == Counter(), f"{name}: Falco detects nothing here; garrison matched {dict(counts)}"
        return
    expected: dict[str, int] = {}
    for d in case["detect_counts"]:
        expected.update(d)
    assert {r: counts[r] for r in expected} == expected
    level = case["detect_level"].upper().replace("INFO", "INFORMATIONAL")
    assert level in priorities, f"{name}: no match at {level} ({priorities})"


def test_non_audit_line_is_counted_not_fatal() -> None:
    """fal_01_003: Falco stops at a line that is not an audit event; garrison counts it, skips it and goes on."""
    case = CASES["fal_01_003"]
    counts, _, stats = _run(case)
    assert counts == Counter()
    assert stats.malformed == 1 and stats.lines == 1
    assert "not a Kubernetes audit Event" in stats.problems[0]
