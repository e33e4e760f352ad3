"""The check language: paths, wildcards, missing fields, comparisons, functions, the witness path, and
errors at compile time."""

from __future__ import annotations

from typing import Any

import pytest

from garrison.posture.expr import Compiler, Ctx, ExprError, split_image, truthy
from garrison.posture.predicates import PREDICATES, registry
from garrison.posture.resources import Resource, ResourceIndex

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "p",
        "annotations": {"a/b": "x", "container.apparmor.security.beta.kubernetes.io/c": "unconfined"},
    },
    "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 0},
        "initContainers": [{"name": "i", "image": "busybox", "securityContext": {"runAsNonRoot": False}}],
        "containers": [
            {
                "name": "c",
                "image": "ghcr.io/org/app:1.2@sha256:" + "0" * 64,
                "ports": [{"containerPort": 80, "hostPort": 0}],
            },
            {"name": "d", "image": "nginx", "securityContext": {"privileged": 1}},
        ],
        "ephemeralContainers": [{"name": "e", "image": "localhost:5000/dbg:latest"}],
        "hostNetwork": None,
    },
}


def ev(text: str, obj: dict[str, Any] | None = None) -> tuple[bool, Ctx]:
    r = Resource(obj or POD)
    ctx = Ctx(r, ResourceIndex([r]), {"allowed": ["NET_BIND_SERVICE"]}, ("", r.obj))
    return truthy(Compiler(PREDICATES).compile(text)(ctx), ctx), ctx


def test_missing_and_null_fields_satisfy_no_comparison() -> None:
    assert ev("spec.hostPID == true")[0] is False
    assert ev("spec.hostPID != true")[0] is False
    assert ev("spec.hostNetwork == null")[0] is False  # an explicit null is absent, as in Go
    assert ev("missing(spec.hostNetwork)")[0] is True
    assert ev("not (spec.hostPID == false)")[0] is True


def test_booleans_never_equal_numbers() -> None:
    assert ev("spec.containers[1].securityContext.privileged == true")[0] is False
    assert ev("spec.containers[1].securityContext.privileged == 1")[0] is True


def test_containers_cover_init_regular_and_ephemeral_with_paths() -> None:
    ok, ctx = ev('any($containers, image == "localhost:5000/dbg:latest")')
    assert ok and ctx.witness == ("spec.ephemeralContainers[0].image", "localhost:5000/dbg:latest")
    assert ev("count($containers) == 4")[0]


def test_wildcards_are_existential_and_record_the_witness() -> None:
    ok, ctx = ev("spec.containers[*].ports[*].containerPort == 80")
    assert ok and ctx.witness == ("spec.containers[0].ports[0].containerPort", 80)
    assert not ev("spec.containers[*].ports[*].hostPort != 0")[0]


def test_coalesce_gives_container_settings_precedence_over_the_pod() -> None:
    ok, ctx = ev(
        "any($containers, not (coalesce(securityContext.runAsNonRoot, $pod.securityContext.runAsNonRoot) == true))"
    )
    assert ok and ctx.witness == ("spec.initContainers[0].securityContext.runAsNonRoot", False)
    assert ev(
        "all($pod.containers[*], coalesce(securityContext.runAsNonRoot, $pod.securityContext.runAsNonRoot) == true)"
    )[0]


def test_missing_field_witness_is_where_it_should_be_set() -> None:
    ok, ctx = ev("any($containers, missing(resources.limits.memory))")
    assert ok and ctx.witness == ("spec.initContainers[0].resources.limits.memory", None)


def test_quoted_keys_entries_and_string_functions() -> None:
    assert ev('$.metadata.annotations["a/b"] == "x"')[0]
    ok, ctx = ev('any(entries($podmeta.annotations), startswith(key, "container.apparmor") and value == "unconfined")')
    assert ok and isinstance(ctx.witness, tuple)
    assert ctx.witness[0] == 'metadata.annotations["container.apparmor.security.beta.kubernetes.io/c"]'
    assert ev('matches($.metadata.name, "^p$") and endswith($.metadata.name, ["x", "p"])')[0]
    assert ev('"unconfined" in lower($.metadata.annotations[*])')[0]


def test_membership_and_sets() -> None:
    assert ev('"x" in $.metadata.annotations[*]')[0]
    assert ev("subset([80], spec.containers[*].ports[*].containerPort)")[0]
    assert not ev('intersects(["ALL"], spec.containers[*].securityContext.capabilities.drop[*])')[0]
    assert ev('$params.allowed[*] in ["NET_BIND_SERVICE"]')[0]


def test_image_references_are_read_as_the_runtime_does() -> None:
    assert split_image("nginx") == ("docker.io", "nginx", "", "")
    assert split_image("localhost:5000/dbg:latest") == ("localhost:5000", "dbg", "latest", "")
    assert split_image("ghcr.io/org/app:1.2@sha256:ab") == ("ghcr.io", "org/app", "1.2", "sha256:ab")
    assert split_image("registry:5000/app") == ("registry:5000", "app", "", "")
    assert ev('image_registry(spec.containers[0].image) == "ghcr.io" and image_tag(spec.containers[1].image) == ""')[0]


def test_ordering_only_between_like_types() -> None:
    assert ev("$pod.securityContext.runAsUser < 1")[0]
    assert not ev('$pod.securityContext.runAsUser < "1"')[0]


@pytest.mark.parametrize(
    "text",
    ["spec.(", "nosuch(x)", "$nosuch.x", "a[b]", "len(a, b)", "a if b else c", "a == b == c", "f.g()"],
)
def test_bad_expressions_fail_at_compile_time(text: str) -> None:
    with pytest.raises(ExprError):
        Compiler(PREDICATES).compile(text)


def test_predicate_registry_refuses_duplicates() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        registry([("x", PREDICATES["bindings"]), ("x", PREDICATES["bindings"])])


def test_broken_objects_never_crash() -> None:
    broken = {
        "kind": "Pod",
        "metadata": "nope",
        "spec": {"containers": "x", "securityContext": [1, 2], "volumes": {"a": 1}},
    }
    for text in (
        "any($containers, securityContext.privileged == true)",
        "$pod.securityContext.runAsUser == 0",
        "exists($pod.volumes[*].hostPath)",
    ):
        assert ev(text, broken)[0] is False


def test_inlined_walks_yield_what_the_generic_walk_yields() -> None:
    # The specialised walkers (plain keys, keys around one [*]) are a speed-up of expr._walk: same
    # nodes, same paths, same order, on lists with nulls, keys that are not names, several starts.
    from garrison.posture import expr

    star = expr._STAR
    obj = {
        "spec": {
            "containers": [
                {"name": "a", "ports": [{"hostPort": 80}, None, {"containerPort": 1}], "env": {"x/y": {"v": 1}}},
                None,
                {"name": "b", "ports": [{"hostPort": 0}], "env": {"k": {"v": None}, "j": {"v": 2}}},
            ],
            "m": {"a.b": [1, None, 2]},
        }
    }
    starts = [("", obj), ("$x", {"spec": {"containers": [{"ports": [{"hostPort": 9}]}]}}), ("p", 5)]
    cases = [
        ("spec", "containers", star),
        ("spec", "containers", star, "ports"),
        ("spec", "containers", star, "env"),
        ("spec", "m", "a.b", star),
        ("spec", "m", star),
        (star,),
        ("spec", "missing", star, "x"),
    ]
    for steps in cases:
        walk = expr._walker(steps)
        assert walk(starts) == expr._walk(starts, steps), steps
    entry = expr.Entry(key="k", value={"ports": [{"hostPort": 1}]})
    assert expr._walker(("value", "ports", star))([("a.b", entry)]) == expr._walk(
        [("a.b", entry)], ("value", "ports", star)
    )
