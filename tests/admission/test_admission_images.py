"""The image rules and the break-glass annotation in the pure engine, on the recorded AdmissionReviews
varied: verdicts as the store's ``image_verdict`` returns them (``ImageVerdict``, or None for an image
never scanned), and no verdicts at all (no store)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.admission.recorded import encode, needs_recorded, review

from garrison.admission.images import ImagePolicy
from garrison.admission.policy import BREAK_GLASS, default_policy, parse_policy
from garrison.admission.review import decide, handle, parse_review, request_images
from garrison.errors import UsageError
from garrison.services.registry import ImageVerdict

pytestmark = needs_recorded

DIGEST = "sha256:" + "ab" * 32
#: What the store says of nginx:1.25 after a scan that found 2 fixable criticals and a secret.
BAD = ImageVerdict(DIGEST, "2026-12-02T03:00:00.000000Z", 3, 5, 2, 1)
CLEAN = ImageVerdict(DIGEST, "2026-12-02T03:00:00.000000Z", 0, 1, 0, 0)


def _policy(images: str, mode: str = "enforce", extra: str = "") -> Any:
    return parse_policy(
        f"version: 1\nmode: {mode}\ndeny: {{frameworks: [pss-baseline]}}\nimages: {images}\n{extra}", "p"
    )


def _compliant() -> dict[str, Any]:
    """The recorded privileged pod made compliant with baseline (image nginx:1.25)."""
    doc = review("create-pod-priv")
    del doc["request"]["object"]["spec"]["containers"][0]["securityContext"]
    return doc


def test_images_of_the_request_every_container_kind() -> None:
    doc = review("create-deployment-web")
    spec = doc["request"]["object"]["spec"]["template"]["spec"]
    spec["initContainers"] = [{"name": "init", "image": "127.0.0.1:5000/tools/init:1"}]
    spec["containers"].append({"name": "side", "image": spec["containers"][0]["image"]})
    images = request_images(parse_review(encode(doc), 1 << 22))
    assert images == ("127.0.0.1:5000/tools/init:1", spec["containers"][0]["image"]), "unique, init first"
    doc["request"]["operation"] = "DELETE"
    assert request_images(parse_review(encode(doc), 1 << 22)) == ()


def test_critical_with_a_fix_denies_with_what_to_do() -> None:
    policy = _policy("{criticalWithFix: deny}")
    _, verdict, resp = handle(encode(_compliant()), policy, {"nginx:1.25": BAD})
    assert not verdict.allowed
    (issue,) = verdict.images_denied
    assert (issue.rule, issue.container, issue.image) == ("criticalWithFix", "c", "nginx:1.25")
    msg = resp["response"]["status"]["message"]
    assert msg.startswith("garrison denied CREATE of Pod shop/priv: 1 image check failed (policy p): (1) ")
    assert "image nginx:1.25 has 2 critical vulnerabilities with a fix available" in msg
    assert f"/api/v1/images/{DIGEST}/findings" in msg and "rebuild" in msg
    assert resp["response"]["auditAnnotations"]["images-denied"] == "criticalWithFix"
    assert handle(encode(_compliant()), policy, {"nginx:1.25": CLEAN})[1].allowed


def test_controls_and_images_are_counted_apart() -> None:
    policy = _policy("{criticalWithFix: deny, secrets: deny}")
    _, verdict, resp = handle(encode(review("create-pod-priv")), policy, {"nginx:1.25": BAD})
    msg = resp["response"]["status"]["message"]
    assert "1 control and 2 image checks failed" in msg
    assert "(1) GAR-PSS-003" in msg and "(2) image check criticalWithFix" in msg and "(3) image check secrets" in msg
    assert "contains 1 secret" in msg
    assert len(verdict.reasons) == 3


@pytest.mark.parametrize(
    ("action", "allowed", "warned"),
    [("deny", False, False), ("warn", True, True), ("allow", True, False)],
)
def test_never_scanned_follows_the_policy(action: str, allowed: bool, warned: bool) -> None:
    policy = _policy(f"{{notScanned: {action}}}")
    _, verdict, resp = handle(encode(_compliant()), policy, {"nginx:1.25": None})
    assert verdict.allowed is allowed
    text = "image nginx:1.25 was never scanned by garrison"
    if not allowed:
        assert text in resp["response"]["status"]["message"]
    assert any(text in w for w in resp["response"].get("warnings", [])) is warned


def test_without_a_store_only_the_registry_rule_is_judged() -> None:
    policy = _policy(
        "{criticalWithFix: deny, notScanned: deny, untrustedRegistry: deny, trustedRegistries: [127.0.0.1:5000]}"
    )
    _, verdict, resp = handle(encode(_compliant()), policy)  # verdicts None: no store
    assert [i.rule for i in verdict.images_denied] == ["untrustedRegistry"]
    assert (
        "image nginx:1.25 is from registry docker.io, which is not trusted (trusted: 127.0.0.1:5000)"
        in (resp["response"]["status"]["message"])
    )
    doc = _compliant()
    doc["request"]["object"]["spec"]["containers"][0]["image"] = "127.0.0.1:5000/library/nginx:1.25"
    assert handle(encode(doc), policy)[1].allowed


def test_audit_mode_turns_image_denials_into_warnings() -> None:
    policy = _policy("{criticalWithFix: deny}", mode="audit")
    _, verdict, resp = handle(encode(review("create-pod-priv")), policy, {"nginx:1.25": BAD})
    assert verdict.allowed and not verdict.images_denied and not verdict.break_glass
    warnings = resp["response"]["warnings"]
    assert warnings[0].startswith("[audit: would deny] GAR-PSS-003")
    assert any(
        w.startswith("[audit: would deny] image check criticalWithFix: container c: image nginx:1.25") for w in warnings
    )
    assert len(verdict.reasons) == 2, "what would have denied is kept for the record"


def _glass(doc: dict[str, Any], reason: str) -> dict[str, Any]:
    doc["request"]["object"]["metadata"]["annotations"][BREAK_GLASS] = reason
    return doc


def test_break_glass_allows_and_says_so() -> None:
    doc = _glass(review("create-pod-priv"), "  incident 4711:\n node debugging  ")
    _, verdict, resp = handle(encode(doc), default_policy())
    assert verdict.allowed
    assert verdict.break_glass == "incident 4711: node debugging"
    assert verdict.reasons and verdict.reasons[0].startswith("GAR-PSS-003 Privileged container")
    r = resp["response"]
    assert "status" not in r
    assert r["warnings"][0].startswith("[break-glass: would deny] GAR-PSS-003 Privileged container")
    assert r["auditAnnotations"]["break-glass"] == "incident 4711: node debugging"


def test_break_glass_needs_a_reason_and_the_policy() -> None:
    assert not handle(encode(_glass(review("create-pod-priv"), "   ")), default_policy())[1].allowed
    off = parse_policy("version: 1\ndeny: {frameworks: [pss-baseline]}\nbreakGlass: false\n", "off")
    assert not handle(encode(_glass(review("create-pod-priv"), "incident")), off)[1].allowed


def test_break_glass_is_not_used_when_nothing_would_be_denied() -> None:
    _, verdict, resp = handle(encode(_glass(review("create-deployment-web"), "just in case")), default_policy())
    assert verdict.allowed and verdict.break_glass == ""
    assert "break-glass" not in resp["response"].get("auditAnnotations", {})


def test_break_glass_covers_image_denials() -> None:
    policy = _policy("{criticalWithFix: deny}")
    verdict = decide(
        parse_review(
            encode(
                _glass(_compliant(), "hotfix"),
            ),
            1 << 22,
        ),
        policy,
        {"nginx:1.25": BAD},
    )
    assert verdict.allowed and verdict.break_glass == "hotfix" and not verdict.images_denied
    assert [i.rule for i in verdict.images_warned] == ["criticalWithFix"]


def test_default_policy_warns_about_images() -> None:
    p = default_policy()
    assert p.images == ImagePolicy(critical_with_fix="warn", secrets="warn", not_scanned="warn")
    assert p.break_glass
    _, verdict, _ = handle(encode(_compliant()), p, {"nginx:1.25": BAD})
    assert verdict.allowed
    assert {i.rule for i in verdict.images_warned} == {"criticalWithFix", "secrets"}


def test_a_policy_written_before_images_has_no_image_rule() -> None:
    p = parse_policy("version: 1\ndeny: {frameworks: [pss-baseline]}\n", "old.yaml")
    assert p.images == ImagePolicy() and not p.images.needs_verdicts
    assert handle(encode(_compliant()), p, {"nginx:1.25": None})[1].allowed


@pytest.mark.parametrize(
    ("images", "says"),
    [
        ("{criticalWithFix: block}", "images/criticalWithFix: 'block' is not one of"),
        ("{untrustedRegistry: deny}", "images/trustedRegistries is empty"),
        ("{fixable: deny}", "Additional properties are not allowed ('fixable'"),
    ],
)
def test_bad_image_rules_are_usage_errors(images: str, says: str) -> None:
    with pytest.raises(UsageError) as info:
        _policy(images)
    assert says in str(info.value)
