"""Version-dependent pod security checks: the check of the selected Kubernetes version runs
(``--k8s-version``), as pod-security-admission picks the highest MinimumVersion at or below it."""

from __future__ import annotations

from typing import Any

import pytest

from garrison.posture.controls import builtin_controls, parse_version, select
from garrison.posture.engine import evaluate
from garrison.posture.resources import Resource


def _pod(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> Resource:
    meta: dict[str, Any] = {"name": "p"}
    if annotations:
        meta["annotations"] = annotations
    spec.setdefault("containers", [{"name": "c", "image": "i"}])
    return Resource({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})


def _ids(r: Resource, version: str, level: str = "pss-restricted") -> set[str]:
    controls = select(builtin_controls(), [level])
    return {f.rule.id for f in evaluate([r], controls, version=version).findings}


@pytest.mark.parametrize(
    ("name", "since"),
    [
        ("net.ipv4.ip_local_reserved_ports", "1.27"),
        ("net.ipv4.tcp_keepalive_time", "1.29"),
        ("net.ipv4.tcp_rmem", "1.32"),
        ("net.ipv4.tcp_notsent_lowat", "1.37"),
    ],
)
def test_sysctl_safe_from_its_version(name: str, since: str) -> None:
    major, minor = parse_version(since)
    r = _pod({"securityContext": {"sysctls": [{"name": name, "value": "1"}]}})
    assert "GAR-PSS-011" in _ids(r, f"v{major}.{minor - 1}", "pss-baseline")
    assert "GAR-PSS-011" not in _ids(r, f"v{major}.{minor}", "pss-baseline")


def test_probe_host_forbidden_from_1_34() -> None:
    r = _pod(
        {"containers": [{"name": "c", "image": "i", "livenessProbe": {"tcpSocket": {"host": "10.0.0.1", "port": 1}}}]}
    )
    assert "GAR-PSS-012" not in _ids(r, "v1.33", "pss-baseline")
    assert "GAR-PSS-012" in _ids(r, "v1.34", "pss-baseline")
    assert "GAR-PSS-012" in _ids(r, "latest", "pss-baseline")


def test_user_namespace_relaxations_from_1_35() -> None:
    spec = {
        "hostUsers": False,
        "containers": [{"name": "c", "image": "i", "securityContext": {"runAsUser": 0, "procMount": "Unmasked"}}],
    }
    at_34 = _ids(_pod(dict(spec)), "v1.34")
    at_35 = _ids(_pod(dict(spec)), "v1.35")
    assert {"GAR-PSS-009", "GAR-PSS-015", "GAR-PSS-016"} <= at_34
    assert not {"GAR-PSS-009", "GAR-PSS-015", "GAR-PSS-016"} & at_35
    # Restricted re-tightens procMount for user-namespace pods from v1.35.
    assert "GAR-PSS-019" in at_35 and "GAR-PSS-019" not in at_34


def test_windows_exemptions_from_1_25() -> None:
    r = _pod({"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True}})
    assert {"GAR-PSS-014", "GAR-PSS-017", "GAR-PSS-018"} <= _ids(r, "v1.24")
    assert not {"GAR-PSS-014", "GAR-PSS-017", "GAR-PSS-018"} & _ids(r, "v1.25")


def test_seccomp_annotations_before_1_19_fields_after() -> None:
    by_annotation = _pod({}, {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"})
    by_field = _pod({"securityContext": {"seccompProfile": {"type": "Unconfined"}}})
    assert "GAR-PSS-010" in _ids(by_annotation, "v1.18", "pss-baseline")
    assert "GAR-PSS-010" not in _ids(by_annotation, "v1.19", "pss-baseline")
    assert "GAR-PSS-010" in _ids(by_field, "v1.19", "pss-baseline")


def test_selinux_container_engine_t_from_1_31() -> None:
    r = _pod({"securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}})
    assert "GAR-PSS-008" in _ids(r, "v1.30", "pss-baseline")
    assert "GAR-PSS-008" not in _ids(r, "v1.31", "pss-baseline")


def test_run_as_user_check_starts_at_1_23() -> None:
    r = _pod({"securityContext": {"runAsNonRoot": True, "runAsUser": 0}})
    assert "GAR-PSS-016" not in _ids(r, "v1.22")
    assert "GAR-PSS-016" in _ids(r, "v1.23")


def test_bad_version_is_a_usage_error() -> None:
    from garrison.errors import UsageError

    with pytest.raises(UsageError):
        parse_version("1.x")
