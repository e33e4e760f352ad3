"""The admission engine on the AdmissionReviews a real API server sent, and on variations of them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.admission.recorded import NAMES, encode, needs_recorded, review

from garrison.admission.policy import Policy, default_policy, parse_policy
from garrison.admission.review import MAX_WARNING, BadReview, decide, handle, parse_review

pytestmark = needs_recorded

#: The verdict each recorded request must get under the default policy (deny PSS baseline), and why.
EXPECTED: dict[str, tuple[bool, set[str], str]] = {
    "create-pod-priv": (False, {"GAR-PSS-003"}, "securityContext.privileged: true breaks baseline"),
    "create-pod-hostpath": (
        False,
        {"GAR-PSS-002", "GAR-PSS-005"},
        "hostNetwork and hostPID, and hostPath volumes / and the Docker socket, break baseline",
    ),
    "create-deployment-web": (True, set(), "a plain container: baseline holds (restricted only warns)"),
    "update-deployment-web": (True, set(), "the new object (image 1.4.3) is as harmless as the old one"),
    "update-pod-priv": (
        False,
        {"GAR-PSS-003"},
        "a label change, but the new object is still privileged: an UPDATE is judged on the new object",
    ),
}


def test_every_recorded_request_has_an_expectation() -> None:
    assert set(NAMES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_verdict(name: str) -> None:
    allowed, denied, why = EXPECTED[name]
    doc = review(name)
    _, verdict, resp = handle(encode(doc), default_policy())
    assert resp["apiVersion"] == "admission.k8s.io/v1"
    assert resp["kind"] == "AdmissionReview"
    r = resp["response"]
    assert r["uid"] == doc["request"]["uid"], "the response must echo request.uid"
    assert r["allowed"] is allowed, why
    assert {f.detail.control_id for f in verdict.denied} == denied, why
    if allowed:
        assert "status" not in r
    else:
        assert r["status"]["code"] == 403
        for cid in denied:
            assert cid in r["status"]["message"]
        assert r["auditAnnotations"]["denied"] == ",".join(sorted(denied))


def test_privileged_denial_names_the_control_the_field_and_the_fix() -> None:
    _, _, resp = handle(encode(review("create-pod-priv")), default_policy())
    msg = resp["response"]["status"]["message"]
    assert "Pod shop/priv" in msg
    assert "GAR-PSS-003 Privileged container" in msg
    assert "container c: spec.containers[0].securityContext.privileged is true" in msg
    assert "fix: Remove securityContext.privileged from the container, or set it to false." in msg


def test_hostpath_denial_names_every_field() -> None:
    _, verdict, resp = handle(encode(review("create-pod-hostpath")), default_policy())
    msg = resp["response"]["status"]["message"]
    paths = {f.detail.path for f in verdict.denied}
    assert paths == {"spec.hostNetwork", "spec.hostPID", "spec.volumes[0].hostPath", "spec.volumes[1].hostPath"}
    for p in paths:
        assert p in msg
    assert '"/var/run/docker.sock"' in msg


def test_restricted_failures_are_warnings_under_the_default_policy() -> None:
    _, verdict, resp = handle(encode(review("create-deployment-web")), default_policy())
    warnings = resp["response"]["warnings"]
    assert resp["response"]["allowed"] is True
    assert any(w.startswith("GAR-PSS-015 ") for w in warnings)
    assert {f.detail.control_id for f in verdict.warned} >= {"GAR-PSS-014", "GAR-PSS-015", "GAR-PSS-017"}
    assert all(len(w) <= MAX_WARNING for w in warnings)


RESTRICTED = "version: 1\ndeny:\n  frameworks: [pss-restricted]\n"


def test_restricted_on_request_denies_the_plain_deployment() -> None:
    policy = parse_policy(RESTRICTED, "restricted.yaml")
    _, verdict, resp = handle(encode(review("create-deployment-web")), policy)
    assert resp["response"]["allowed"] is False
    assert {"GAR-PSS-014", "GAR-PSS-015", "GAR-PSS-017", "GAR-PSS-018"} <= {f.detail.control_id for f in verdict.denied}
    assert "policy restricted.yaml" in resp["response"]["status"]["message"]
    assert "spec.template.spec" in resp["response"]["status"]["message"]


def _privileged(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc``'s new object with its first container privileged."""
    obj = doc["request"]["object"]
    spec = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
    spec["containers"][0]["securityContext"] = {"privileged": True}
    return doc


def test_update_is_judged_on_the_new_object() -> None:
    # Old object harmless, new one privileged: denied.
    doc = _privileged(review("update-deployment-web"))
    _, verdict, _ = handle(encode(doc), default_policy())
    assert not verdict.allowed
    assert [f.detail.path for f in verdict.denied] == ["spec.template.spec.containers[0].securityContext.privileged"]
    # Old object privileged, new one harmless: allowed.
    doc = review("update-deployment-web")
    old = doc["request"]["oldObject"]["spec"]["template"]["spec"]["containers"][0]
    old["securityContext"] = {"privileged": True}
    _, verdict, _ = handle(encode(doc), default_policy())
    assert verdict.allowed


def test_existing_violations_may_only_warn_on_update() -> None:
    policy = parse_policy(
        "version: 1\ndeny: {frameworks: [pss-baseline]}\nexistingViolationsOnUpdate: warn\n", "legacy.yaml"
    )
    # The label update of the privileged pod: the old object was privileged at the same path already.
    _, verdict, resp = handle(encode(review("update-pod-priv")), policy)
    assert verdict.allowed
    assert any(w.startswith("[already in oldObject] GAR-PSS-003") for w in resp["response"]["warnings"])
    # A violation the update introduces is still denied.
    doc = _privileged(review("update-deployment-web"))
    _, verdict, _ = handle(encode(doc), policy)
    assert not verdict.allowed


@pytest.mark.parametrize(
    ("kind", "api_version", "wrap"),
    [
        ("Deployment", "apps/v1", "template"),
        ("StatefulSet", "apps/v1", "template"),
        ("DaemonSet", "apps/v1", "template"),
        ("ReplicaSet", "apps/v1", "template"),
        ("Job", "batch/v1", "template"),
        ("CronJob", "batch/v1", "cronjob"),
    ],
)
def test_every_kind_with_a_pod_template_is_judged(kind: str, api_version: str, wrap: str) -> None:
    doc = review("create-pod-priv")
    pod = doc["request"]["object"]
    template = {"metadata": {"labels": {"app": "priv"}}, "spec": pod["spec"]}
    spec: dict[str, Any] = {"template": template}
    if wrap == "cronjob":
        spec = {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}
    doc["request"]["kind"] = {"group": api_version.split("/")[0], "version": "v1", "kind": kind}
    doc["request"]["object"] = {"apiVersion": api_version, "kind": kind, "metadata": pod["metadata"], "spec": spec}
    _, verdict, resp = handle(encode(doc), default_policy())
    assert resp["response"]["allowed"] is False
    assert {f.detail.control_id for f in verdict.denied} == {"GAR-PSS-003"}
    assert f"{kind} shop/priv" in resp["response"]["status"]["message"]


def test_kube_system_is_excluded_by_default() -> None:
    doc = review("create-pod-priv")
    doc["request"]["namespace"] = "kube-system"
    doc["request"]["object"]["metadata"]["namespace"] = "kube-system"
    _, verdict, resp = handle(encode(doc), default_policy())
    assert verdict.allowed and not verdict.denied
    assert resp["response"]["auditAnnotations"]["skipped"] == "namespace kube-system is excluded by the policy"


def test_excluded_namespaces_come_from_the_policy() -> None:
    policy = parse_policy("version: 1\ndeny: {frameworks: [pss-baseline]}\nexclude: {namespaces: [shop]}\n", "p")
    assert handle(encode(review("create-pod-priv")), policy)[1].allowed
    doc = review("create-pod-priv")
    doc["request"]["namespace"] = "kube-system"
    doc["request"]["object"]["metadata"]["namespace"] = "kube-system"
    assert not handle(encode(doc), policy)[1].allowed, "kube-system is only excluded by the default list"


def test_namespace_missing_from_the_object_is_taken_from_the_request() -> None:
    doc = review("create-pod-priv")
    del doc["request"]["object"]["metadata"]["namespace"]
    doc["request"]["namespace"] = "kube-system"
    assert handle(encode(doc), default_policy())[1].allowed


def test_exemption_by_annotation_allows_and_is_recorded() -> None:
    doc = review("create-pod-priv")
    doc["request"]["object"]["metadata"]["annotations"].update(
        {"garrison.dev/exempt": "GAR-PSS-003", "garrison.dev/exempt-reason": "node debugging pod"}
    )
    _, verdict, resp = handle(encode(doc), default_policy())
    assert verdict.allowed
    assert [s.finding.rule.id for s in verdict.exempted] == ["GAR-PSS-003"]
    assert resp["response"]["auditAnnotations"]["exempted"] == "GAR-PSS-003"
    # An exemption of another control does not help.
    doc = review("create-pod-priv")
    doc["request"]["object"]["metadata"]["annotations"].update(
        {"garrison.dev/exempt": "GAR-PSS-002", "garrison.dev/exempt-reason": "wrong control"}
    )
    assert not handle(encode(doc), default_policy())[1].allowed


def test_audit_mode_allows_with_warnings() -> None:
    policy = parse_policy("version: 1\nmode: audit\ndeny: {frameworks: [pss-baseline]}\n", "audit.yaml")
    _, verdict, resp = handle(encode(review("create-pod-priv")), policy)
    assert verdict.allowed and not verdict.denied
    assert resp["response"]["warnings"][0].startswith("[audit: would deny] GAR-PSS-003 Privileged container")


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_delete_and_connect_are_allowed_unchecked(operation: str) -> None:
    doc = review("update-pod-priv")
    doc["request"]["operation"] = operation
    doc["request"]["object"] = None
    _, verdict, resp = handle(encode(doc), default_policy())
    assert verdict.allowed
    assert resp["response"]["auditAnnotations"]["skipped"] == f"operation {operation} is not checked"


def test_an_object_without_a_pod_template_is_allowed() -> None:
    doc = review("create-pod-priv")
    doc["request"]["kind"] = {"group": "", "version": "v1", "kind": "ConfigMap"}
    doc["request"]["object"] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}
    assert handle(encode(doc), default_policy())[1].allowed


def _bad(doc: Any) -> bytes:
    return doc if isinstance(doc, bytes) else encode(doc)


def _req(**change: Any) -> dict[str, Any]:
    doc = review("create-pod-priv")
    for k, v in change.items():
        if v is ...:
            del doc["request"][k]
        else:
            doc["request"][k] = v
    return doc


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "empty body"),
        (b"   \n", "empty body"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "got JSON list"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (
            {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1beta1", "request": {}},
            "admissionReviewVersions",
        ),
        ({"kind": "Pod", "apiVersion": "v1"}, "expected kind AdmissionReview"),
        ({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}, "without a request"),
        (_req(uid=...), "request.uid"),
        (_req(uid=12), "request.uid"),
        (_req(operation="PATCH"), "request.operation"),
        (_req(object=None), "request.object is required for CREATE"),
        (_req(object=[1]), "request.object must be an object"),
        (_req(oldObject="x"), "request.oldObject must be an object"),
    ],
)
def test_malformed_reviews_are_400s(body: Any, says: str) -> None:
    with pytest.raises(BadReview) as info:
        handle(_bad(body), default_policy())
    assert info.value.status == 400
    assert says in str(info.value)


def test_oversized_review_is_refused_before_parsing() -> None:
    policy = default_policy()
    body = encode(review("create-pod-priv"))
    with pytest.raises(BadReview, match="larger than the limit of 1024 bytes"):
        parse_review(body, 1024)
    assert parse_review(body, len(body)).uid == review("create-pod-priv")["request"]["uid"]
    assert policy.max_request_bytes == 4 * 1024 * 1024


def test_decide_does_not_change_the_request() -> None:
    doc = review("create-pod-priv")
    del doc["request"]["object"]["metadata"]["namespace"]
    before = copy.deepcopy(doc)
    req = parse_review(encode(doc), 1 << 22)
    decide(req, default_policy())
    assert req.object == before["request"]["object"]


def test_policy_is_a_value() -> None:
    p = default_policy()
    assert isinstance(p, Policy)
    assert {c.id for c in p.deny}.isdisjoint({c.id for c in p.warn})
    assert "GAR-PSS-003" in {c.id for c in p.deny}
    assert "GAR-PSS-015" in {c.id for c in p.warn}
