"""Posture inputs: multi-document YAML, JSON, List kinds, stdin and snapshots, lines and document
indexes, and bad input (alias bombs, deep nesting, huge documents, binary files, non-Kubernetes YAML,
unknown kinds, broken objects): a message per document, the rest still assessed, memory bounded."""

from __future__ import annotations

import io
import json
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from garrison.errors import NotFoundError, UsageError
from garrison.posture import inputs
from garrison.posture.inputs import load_path, load_source, parse_text, split_documents
from garrison.services.posture import PostureOptions, assess

GOOD = """apiVersion: v1
kind: Pod
metadata: {name: good, namespace: app}
spec:
  containers: [{name: c, image: nginx, securityContext: {privileged: true}}]
"""


def test_documents_lines_and_indexes(tmp_path: Path) -> None:
    text = (
        "# header\n---\n"
        + GOOD
        + "---\n\n# Source: chart/templates/svc.yaml\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n...\n"
    )
    loaded = parse_text(text, "m.yaml")
    assert [(r.kind, r.line, r.document) for r in loaded.resources] == [("Pod", 3, 0), ("Service", 11, 1)]
    assert loaded.warnings == []


def test_split_keeps_inline_document_content() -> None:
    docs = list(split_documents("--- {kind: A}\n--- {kind: B}\n"))
    assert [d.strip() for _, d in docs] == ["{kind: A}", "{kind: B}"]


def test_list_kinds_and_json_snapshot(tmp_path: Path) -> None:
    snap = tmp_path / "snap.json"
    items = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"p{i}", "namespace": "ns"},
            "spec": {"containers": []},
        }
        for i in range(3)
    ]
    snap.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    loaded = load_source(f"snapshot:{snap}")
    assert [r.name for r in loaded.resources] == ["p0", "p1", "p2"]
    assert all(r.source == str(snap) for r in loaded.resources)
    with pytest.raises(NotFoundError):
        load_source(f"snapshot:{tmp_path / 'nope.json'}")
    with pytest.raises(UsageError):
        load_source("snapshot:")


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(GOOD.encode())))
    loaded = load_source("-")
    assert [(r.name, r.source) for r in loaded.resources] == [("good", "-")]


def test_folder_walk_skips_hidden_and_other_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text(GOOD.replace("good", "b"))
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "c.yaml").write_text(GOOD)
    (tmp_path / "README.md").write_text("# not yaml")
    loaded = load_path(tmp_path)
    assert sorted(r.name for r in loaded.resources) == ["b", "good"]


def _bad_file(tmp_path: Path, bad: str) -> Path:
    p = tmp_path / "bad.yaml"
    p.write_text(GOOD + "---\n" + bad + "\n---\n" + GOOD.replace("good", "after"))
    return p


def _assess_one(p: Path) -> tuple[list[str], list[str]]:
    report = assess([str(p)], PostureOptions(frameworks=("pss-baseline",)))
    names = sorted({f.detail.object.name for f in report.findings})
    return names, list(report.warnings)


BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{c}: &{c} [{','.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    + ["kind: ConfigMap", "data: *i"]
)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (BILLION_LAUGHS, "alias bomb"),
        ("[" * 5000 + "]" * 5000, "nested deeper"),
        ("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 600)), "indented deeper"),
        ("kind: [unclosed", "not valid YAML"),
        ("just: text", "not a Kubernetes object"),
        ("- a\n- b", "not a Kubernetes object (a list)"),
    ],
    ids=["alias-bomb", "deep-flow", "deep-block", "syntax", "not-k8s", "list"],
)
def test_bad_document_is_one_message_and_the_rest_is_assessed(tmp_path: Path, bad: str, message: str) -> None:
    tracemalloc.start()
    try:
        names, warnings = _assess_one(_bad_file(tmp_path, bad))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert names == ["after", "good"]
    assert len(warnings) == 1 and message in warnings[0] and "document 2" in warnings[0], warnings
    assert peak < 64 * 1024 * 1024


def test_huge_document_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "MAX_DOC_BYTES", 100_000)
    names, warnings = _assess_one(_bad_file(tmp_path, "kind: ConfigMap\ndata:\n  x: " + "y" * 200_000))
    assert names == ["after", "good"] and "larger than" in warnings[0]


def test_huge_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "MAX_FILE_BYTES", 1000)
    p = tmp_path / "big.yaml"
    p.write_text(GOOD * 20)
    loaded = load_path(p)
    assert loaded.resources == [] and "larger than" in loaded.warnings[0]


@pytest.mark.parametrize("payload", [b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4, b"\xff\xfe\x00k\x00i"])
def test_binary_files_are_skipped_with_a_message(tmp_path: Path, payload: bytes) -> None:
    (tmp_path / "bin.yaml").write_bytes(payload)
    (tmp_path / "ok.yaml").write_text(GOOD)
    loaded = load_path(tmp_path)
    assert [r.name for r in loaded.resources] == ["good"]
    assert len(loaded.warnings) == 1 and "bin.yaml" in loaded.warnings[0]


def test_deep_json_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "deep.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    loaded = load_path(p)
    assert loaded.resources == [] and "too deep" in loaded.warnings[0]


def test_unknown_kinds_are_counted_not_errors(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(GOOD + "---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    report = assess([str(p)])
    assert report.unassessed_kinds == {"Widget": 1}
    assert report.resources == {"Pod": 1, "Widget": 1}
    assert report.warnings == ()


def test_broken_objects_are_assessed_without_crashing(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text(
        "kind: Deployment\nmetadata: [x]\n"
        "spec: {template: {spec: {containers: [1, null, {name: c, securityContext: 7}]}}}\n"
        "---\nkind: Pod\nspec: nope\n---\nkind: Role\nrules: {a: 1}\n---\nkind: Service\nspec: {ports: 3, type: [1]}\n"
    )
    report = assess([str(p)])
    assert sum(report.resources.values()) == 4


def test_crd_with_a_pod_template_is_a_workload(tmp_path: Path) -> None:
    p = tmp_path / "rollout.yaml"
    p.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r, namespace: a}\n"
        "spec:\n  template:\n    spec:\n      containers: [{name: c, image: x, securityContext: {privileged: true}}]\n"
    )
    report = assess([str(p)], PostureOptions(controls=("GAR-PSS-003",)))
    assert [f.detail.path for f in report.findings] == ["spec.template.spec.containers[0].securityContext.privileged"]


def test_snapshot_owned_objects_are_assessed_through_their_owner(tmp_path: Path) -> None:
    dep: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "n"},
        "spec": {
            "template": {"spec": {"containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]}}
        },
    }
    rs = json.loads(json.dumps(dep))
    rs["kind"], rs["metadata"] = (
        "ReplicaSet",
        {"name": "d-1", "namespace": "n", "ownerReferences": [{"kind": "Deployment", "name": "d", "controller": True}]},
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "d-1-x",
            "namespace": "n",
            "ownerReferences": [{"kind": "ReplicaSet", "name": "d-1", "controller": True}],
        },
        "spec": dep["spec"]["template"]["spec"],
    }
    snap = tmp_path / "s.json"
    snap.write_text(json.dumps({"kind": "List", "items": [dep, rs, pod]}))
    report = assess([f"snapshot:{snap}"], PostureOptions(controls=("GAR-PSS-003",)))
    assert [f.detail.object.display() for f in report.findings] == ["Deployment/n/d"]
    assert report.owned_skipped == 2
