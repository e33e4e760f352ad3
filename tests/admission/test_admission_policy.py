"""Policy files: the packaged default against its schema, good files compiled, bad files refused at start."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml
from tests.admission.recorded import encode, needs_recorded, review

from garrison.admission.policy import load_policy, parse_policy, schema
from garrison.admission.review import handle
from garrison.errors import UsageError

ROOT = resources.files("garrison.rules") / "admission"


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())


def test_default_policy_satisfies_the_schema() -> None:
    data = yaml.safe_load((ROOT / "policy.yaml").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema()).validate(data)
    p = load_policy(None)
    assert p.origin == "default"
    assert p.excluded_namespaces == frozenset({"kube-system", "garrison"})
    assert p.mode == "enforce"


def test_a_policy_file(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text(
        "version: 1\n"
        "deny:\n  controls: [GAR-PSS-005]\n"
        "warn:\n  controls: [GAR-PSS-003, GAR-PSS-005]\n"
        "exclude:\n  namespaces: []\n"
        "kubernetesVersion: v1.30\n"
        "maxRequestBytes: 65536\n",
        encoding="utf-8",
    )
    p = load_policy(f)
    assert [c.id for c in p.deny] == ["GAR-PSS-005"]
    assert [c.id for c in p.warn] == ["GAR-PSS-003"], "a control in deny is not repeated in warn"
    assert p.excluded_namespaces == frozenset()
    assert p.kubernetes_version == (1, 30)
    assert p.max_request_bytes == 65536
    assert p.origin == str(f)


@needs_recorded
def test_a_policy_file_decides(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text("version: 1\ndeny:\n  controls: [GAR-PSS-005]\nwarn:\n  controls: [GAR-PSS-003]\n", encoding="utf-8")
    p = load_policy(f)
    _, priv, resp = handle(encode(review("create-pod-priv")), p)
    assert priv.allowed, "privileged only warns in this policy"
    assert resp["response"]["warnings"][0].startswith("GAR-PSS-003 Privileged container")
    _, hostpath, _ = handle(encode(review("create-pod-hostpath")), p)
    assert not hostpath.allowed
    assert {f.detail.control_id for f in hostpath.denied} == {"GAR-PSS-005"}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("deny: {frameworks: [pss-baseline]}\n", "'version' is a required property"),
        ("version: 2\n", "version: 1 was expected"),
        ("version: 1\nenforce: true\n", "Additional properties are not allowed ('enforce'"),
        ("version: 1\nmode: block\n", "mode: 'block' is not one of"),
        (
            "version: 1\ndeny: {frameworks: [pss-baseline-x]}\n",
            "unknown framework 'pss-baseline-x' (did you mean pss-baseline?)",
        ),
        ("version: 1\ndeny: {controls: [GAR-PSS-03]}\n", "unknown control 'GAR-PSS-03'"),
        ("version: 1\ndeny: {frameworks: pss-baseline}\n", "deny/frameworks: 'pss-baseline' is not of type 'array'"),
        ("version: 1\n", "selects no control"),
        ("version: 1\nkubernetesVersion: '1.x'\ndeny: {frameworks: [pss-baseline]}\n", "kubernetesVersion"),
        ("version: 1\nmaxRequestBytes: 10\ndeny: {frameworks: [pss-baseline]}\n", "maxRequestBytes"),
        ("version: 1\nexistingViolationsOnUpdate: ignore\n", "existingViolationsOnUpdate"),
        ("version: [1\n", "not valid YAML"),
        ("- version: 1\n", "is not of type 'object'"),
        ("", "'version' is a required property"),
    ],
)
def test_bad_policies_are_usage_errors(text: str, says: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_policy(text, "bad.yaml")
    assert str(info.value).startswith("admission policy bad.yaml: ")
    assert says in str(info.value)


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read admission policy"):
        load_policy(tmp_path / "nope.yaml")


def test_schema_documents_every_key() -> None:
    props = schema()["properties"]
    assert set(yaml.safe_load((ROOT / "policy.yaml").read_text(encoding="utf-8"))) <= set(props)
    assert all("description" in v for v in props.values()), json.dumps(props)[:200]
