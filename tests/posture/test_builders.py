"""``model/posture.py``'s positional builders: the objects the engine builds with them are the ones the
dataclasses' own constructors build, field for field, and a class they cannot build right is refused."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from garrison.model.common import Finding, FindingKind, RuleId, RuleRef, Severity, Subject, SubjectKind
from garrison.model.posture import (
    Misconfiguration,
    ObjectRef,
    misconfiguration_finding,
    misconfiguration_subject,
    new_misconfiguration,
    positional_builder,
)

REF = ObjectRef("Deployment", "web", "shop", "apps/v1", "m.yaml", 3, 1, "prod", "")


def _values() -> tuple[Any, ...]:
    return (
        "GAR-PSS-003",
        "Privileged container",
        Severity.CRITICAL,
        REF,
        "spec.template.spec.containers[0].securityContext.privileged",
        "true",
        "false or unset",
        "set privileged: false",
        "pod-security",
        "app",
        ("pss-baseline",),
        ("checkov:CKV_K8S_16",),
        (("binding", "x"),),
    )


def test_new_misconfiguration_is_the_constructor() -> None:
    fast, plain = new_misconfiguration(*_values()), Misconfiguration(*_values())
    assert type(fast) is Misconfiguration
    assert fast == plain and hash(fast) == hash(plain)
    for f in dataclasses.fields(Misconfiguration):
        assert getattr(fast, f.name) is getattr(plain, f.name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.path = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        new_misconfiguration(*_values()[:-1])  # every field, always: a new field cannot be left unset


def test_misconfiguration_finding_is_the_envelope_constructor() -> None:
    m = Misconfiguration(*_values())
    rule = RuleRef(id=RuleId(m.control_id), source="garrison/posture", title=m.title, aliases=m.equivalents)
    subject = misconfiguration_subject(REF, m.container)
    got = misconfiguration_finding(m, rule=rule, subject=subject, where="Deployment/shop/web container app")
    want = Finding(
        kind=FindingKind.MISCONFIGURATION,
        rule=rule,
        subject=subject,
        severity=m.severity,
        title=f"Deployment/shop/web container app: {m.title}",
        detail=m,
        evidence=(("path", m.path), ("actual", m.actual), ("expected", m.expected)),
    )
    assert type(got) is Finding and got == want and got.fingerprint == want.fingerprint
    for f in dataclasses.fields(Finding):
        assert getattr(got, f.name) == getattr(want, f.name)
    assert misconfiguration_finding(m) == want  # the rule, subject and title built here the same way


def test_classes_it_cannot_build_right_are_refused() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            raise ValueError

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    for cls in (Checked, NoSlots):
        with pytest.raises(TypeError):
            positional_builder(cls)
    assert positional_builder(Subject)(
        *[getattr(Subject(SubjectKind.HOST), f.name) for f in dataclasses.fields(Subject)]
    ) == Subject(SubjectKind.HOST)
