"""Pod Security checks that read both pod and container fields report one finding per offending
container, at that container's JSON path and with its name, and one at the pod for a pod-level field;
the verdict per pod stays Kubernetes' own (tests/posture/test_pss_conformance.py)."""

from __future__ import annotations

from pathlib import Path

from garrison.posture.controls import builtin_controls, select
from garrison.posture.engine import evaluate
from garrison.posture.inputs import load_path

POD = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    metadata:
      annotations:
        container.apparmor.security.beta.kubernetes.io/init: unconfined
        container.apparmor.security.beta.kubernetes.io/app: runtime/default
        container.apparmor.security.beta.kubernetes.io/side: unconfined
    spec:
      securityContext:
        runAsUser: 0
      initContainers:
        - name: init
          image: busybox
          securityContext:
            runAsNonRoot: false
            seccompProfile: {type: Unconfined}
            seLinuxOptions: {type: spc_t}
      containers:
        - name: app
          image: web
          securityContext:
            runAsNonRoot: true
            runAsUser: 1000
            seccompProfile: {type: RuntimeDefault}
            appArmorProfile: {type: RuntimeDefault}
        - name: side
          image: proxy
          securityContext:
            appArmorProfile: {type: Unconfined}
            windowsOptions: {hostProcess: true}
"""
BASE = "spec.template.spec"


def _findings(tmp_path: Path) -> dict[str, list[tuple[str, str]]]:
    f = tmp_path / "pod.yaml"
    f.write_text(POD)
    controls = select(builtin_controls(), ["pss-restricted"])
    out: dict[str, list[tuple[str, str]]] = {}
    for x in evaluate(load_path(f).resources, controls).findings:
        out.setdefault(x.rule.id, []).append((x.detail.container, x.detail.path))
    return out


def test_one_finding_per_offending_container(tmp_path: Path) -> None:
    got = _findings(tmp_path)
    # runAsNonRoot: init says false, side inherits nothing; app is fine.
    assert sorted(got["GAR-PSS-015"]) == [
        ("init", f"{BASE}.initContainers[0].securityContext.runAsNonRoot"),
        ("side", f"{BASE}.containers[1].securityContext.runAsNonRoot"),
    ]
    # seccomp (restricted): init is Unconfined, side has none and the pod sets none.
    assert sorted(got["GAR-PSS-017"]) == [
        ("init", f"{BASE}.initContainers[0].securityContext.seccompProfile.type"),
        ("side", f"{BASE}.containers[1].securityContext.seccompProfile"),
    ]
    # seccomp (baseline): only the Unconfined one.
    assert got["GAR-PSS-010"] == [("init", f"{BASE}.initContainers[0].securityContext.seccompProfile.type")]
    assert got["GAR-PSS-008"] == [("init", f"{BASE}.initContainers[0].securityContext.seLinuxOptions.type")]
    assert got["GAR-PSS-001"] == [("side", f"{BASE}.containers[1].securityContext.windowsOptions.hostProcess")]


def test_pod_level_field_is_one_finding_at_the_pod(tmp_path: Path) -> None:
    got = _findings(tmp_path)
    # runAsUser 0 at pod level: one finding at the pod's field (no container), none for app (1000).
    assert got["GAR-PSS-016"] == [("", f"{BASE}.securityContext.runAsUser")]


def test_annotations_are_one_finding_each(tmp_path: Path) -> None:
    got = _findings(tmp_path)
    ann = "spec.template.metadata.annotations"
    assert sorted(got["GAR-PSS-007"]) == [
        ("", f'{ann}["container.apparmor.security.beta.kubernetes.io/init"]'),
        ("", f'{ann}["container.apparmor.security.beta.kubernetes.io/side"]'),
        ("side", f"{BASE}.containers[1].securityContext.appArmorProfile.type"),
    ]
