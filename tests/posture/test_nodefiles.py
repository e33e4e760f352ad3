"""Control-plane static pods, kubelet configuration and node file modes: the CIS Kubernetes 1.12 checks a
file can show (control-plane.yaml, kubelet.yaml), with ids and titles checked against kube-bench's data."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from garrison.posture import nodefiles
from garrison.posture.controls import builtin_controls
from garrison.posture.engine import assess
from garrison.posture.inputs import load_path, load_source
from garrison.posture.resources import Resource

KUBE_BENCH = Path(__file__).resolve().parents[3] / "shared" / "reference" / "kube-bench"


def _controls(*families: str):  # type: ignore[no-untyped-def]
    return [c for c in builtin_controls() if c.family in families]


def _benchmark() -> dict[str, str]:
    if not KUBE_BENCH.is_dir():
        pytest.skip(f"{KUBE_BENCH} is absent (kube-bench's CIS 1.12 data lives in ../shared)")
    out: dict[str, str] = {}
    for name in ("cis-1.12-master.yaml", "cis-1.12-node.yaml"):
        doc = yaml.safe_load((KUBE_BENCH / name).read_text())
        for group in doc["groups"]:
            for check in group.get("checks") or []:
                out[str(check["id"])] = str(check["text"])
    return out


def _manifest(program: str, *flags: str) -> dict:  # type: ignore[type-arg]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": program, "namespace": "kube-system"},
        "spec": {
            "containers": [
                {"name": program, "image": f"registry.k8s.io/{program}:v1.32.0", "command": [program, *flags]}
            ]
        },
    }


GOOD_APISERVER = _manifest(
    "kube-apiserver",
    "--anonymous-auth=false",
    "--authorization-mode=Node,RBAC",
    "--enable-admission-plugins=NodeRestriction,EventRateLimit,AlwaysPullImages,DenyServiceExternalIPs",
    "--profiling=false",
    "--audit-log-path=/var/log/kubernetes/audit.log",
    "--audit-log-maxage=30",
    "--audit-log-maxbackup=10",
    "--audit-log-maxsize=100",
    "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
    "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
    "--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
    "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
    "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
    "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
    "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
    "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
    "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
    "--client-ca-file=/etc/kubernetes/pki/ca.crt",
    "--encryption-provider-config=/etc/kubernetes/enc.yaml",
    "--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "--service-account-extend-token-expiration=false",
    "--request-timeout=300s",
)


def _ids(docs: list[dict], families: tuple[str, ...] = ("control-plane", "kubelet")) -> dict[str, list[str]]:  # type: ignore[type-arg]
    out: dict[str, list[str]] = {}
    for f in assess([Resource(obj=d, source="m.yaml", line=1) for d in docs], _controls(*families)):
        out.setdefault(f.detail.control_id, []).append(f.detail.path)
    return out


def test_ids_and_titles_follow_kube_bench() -> None:
    bench = _benchmark()
    controls = _controls("control-plane", "kubelet")
    refs = [(c, ref) for c in controls for ref in c.frameworks["cis-kubernetes"]]
    # etcd's section 2 is not in the master/node data files; every other reference must exist there.
    missing = sorted({ref for _, ref in refs if ref not in bench and not ref.startswith("2.")})
    assert missing == []
    assert len({ref for _, ref in refs}) >= 60
    # The flag a control-plane control reads is the one the benchmark's title names.
    for c, ref in refs:
        if c.family != "control-plane":
            continue  # kubelet controls read KubeletConfiguration fields, not flags
        title = bench.get(ref, "")
        named = re.findall(r"--([a-z-]+)", title)
        checks = " ".join(t for chk in c.checks for t, _ in chk.fails)
        for flag in named:
            assert flag in checks or flag == "DenyServiceExternalIPs", (ref, flag)


def test_hardened_control_plane_passes_and_defaults_fail() -> None:
    assert _ids([GOOD_APISERVER]) == {}
    bare = _ids(
        [
            _manifest(
                "kube-apiserver",
                "--authorization-mode=AlwaysAllow",
                "--token-auth-file=/t.csv",
                "--enable-admission-plugins=AlwaysAdmit",
            )
        ]
    )
    by_ref = {c.id: c.frameworks["cis-kubernetes"][0] for c in _controls("control-plane")}
    refs = {by_ref[i] for i in bare}
    assert {"1.2.1", "1.2.2", "1.2.6", "1.2.7", "1.2.8", "1.2.10", "1.2.15", "1.2.16", "1.2.27"} <= refs
    # The finding points at the word of the command that sets the flag.
    assert bare[next(i for i in bare if by_ref[i] == "1.2.6")] == ["spec.containers[0].command[1]"]
    assert bare[next(i for i in bare if by_ref[i] == "1.2.2")] == ["spec.containers[0].command[2]"]


def test_other_components_and_flag_forms() -> None:
    cm = _manifest(
        "kube-controller-manager",
        "--profiling",
        "false",
        "--bind-address=0.0.0.0",
        "--use-service-account-credentials=true",
    )
    sched = _manifest("kube-scheduler", "--profiling=false", "--bind-address=127.0.0.1")
    etcd = _manifest("etcd", "--client-cert-auth=true", "--auto-tls=true", "--cert-file=/c", "--key-file=/k")
    by_ref = {c.id: c.frameworks["cis-kubernetes"][0] for c in _controls("control-plane")}
    refs = sorted(by_ref[i] for i in _ids([cm, sched, etcd]))
    assert refs == ["1.3.1", "1.3.4", "1.3.5", "1.3.7", "2.3", "2.4", "2.5"]
    assert nodefiles.parse_flags(["kube-scheduler", "--v", "2", "--profiling", "--a=b", "--a=c"]) == {
        "v": "2",
        "profiling": "true",
        "a": "c",
    }
    # A workload that runs none of the components is not a control-plane object.
    assert _ids([_manifest("nginx", "--profiling=true")]) == {}


def test_kubelet_configuration_defaults_and_bad_values() -> None:
    good = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {"x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"}, "anonymous": {"enabled": False}},
        "serverTLSBootstrap": True,
        "podPidsLimit": 4096,
        "seccompDefault": True,
    }
    assert _ids([good]) == {}
    bad = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {"anonymous": {"enabled": True}},
        "authorization": {"mode": "AlwaysAllow"},
        "readOnlyPort": 10255,
        "streamingConnectionIdleTimeout": "0s",
        "makeIPTablesUtilChains": False,
        "rotateCertificates": False,
        "featureGates": {"RotateKubeletServerCertificate": False},
        "tlsCipherSuites": ["TLS_RSA_WITH_RC4_128_SHA"],
    }
    by_ref = {c.id: c.frameworks["cis-kubernetes"][0] for c in _controls("kubelet")}
    refs = sorted(by_ref[i] for i in _ids([bad]))
    assert refs == sorted(
        [
            "4.2.1",
            "4.2.2",
            "4.2.3",
            "4.2.4",
            "4.2.5",
            "4.2.6",
            "4.2.9",
            "4.2.10",
            "4.2.11",
            "4.2.12",
            "4.2.13",
            "4.2.14",
        ]
    )


def test_manifest_folder_is_assessed_by_the_file_input(tmp_path: Path) -> None:
    (tmp_path / "kube-apiserver.yaml").write_text(yaml.safe_dump(_manifest("kube-apiserver")))
    loaded = load_path(tmp_path)
    found = assess(loaded.resources, _controls("control-plane"))
    assert {f.detail.object.source for f in found} == {str(tmp_path / "kube-apiserver.yaml")}
    assert len(found) >= 20


def test_node_root_modes_and_owners(tmp_path: Path) -> None:
    manifests = tmp_path / "etc/kubernetes/manifests"
    manifests.mkdir(parents=True)
    (manifests / "kube-apiserver.yaml").write_text(yaml.safe_dump(GOOD_APISERVER))
    os.chmod(manifests / "kube-apiserver.yaml", 0o644)  # 1.1.1 wants 600
    (manifests / "kube-scheduler.yaml").write_text(
        yaml.safe_dump(_manifest("kube-scheduler", "--profiling=false", "--bind-address=127.0.0.1"))
    )
    os.chmod(manifests / "kube-scheduler.yaml", 0o600)
    pki = tmp_path / "etc/kubernetes/pki"
    pki.mkdir()
    (pki / "ca.key").write_text("k")
    os.chmod(pki / "ca.key", 0o640)
    (pki / "ca.crt").write_text("c")
    os.chmod(pki / "ca.crt", 0o644)
    kubelet = tmp_path / "var/lib/kubelet"
    kubelet.mkdir(parents=True)
    (kubelet / "config.yaml").write_text(
        yaml.safe_dump(
            {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", "readOnlyPort": 10255}
        )
    )
    os.chmod(kubelet / "config.yaml", 0o600)
    if os.geteuid() == 0:
        os.chown(pki / "ca.crt", 1234, 0)
    loaded = load_source(f"node:{tmp_path}")
    kinds = sorted(r.kind for r in loaded.resources)
    # Five files, and ca.crt again as the kubelet's client CA (the configuration names none: kubeadm's default).
    assert kinds == ["KubeletConfiguration", *["NodeFile"] * 6, "Pod", "Pod"]
    found = assess(loaded.resources, _controls("control-plane", "kubelet"))
    by_ref = {c.id: c.frameworks["cis-kubernetes"][0] for c in _controls("control-plane", "kubelet")}
    got = sorted(
        (by_ref[f.detail.control_id], f.detail.object.name, f.detail.actual)
        for f in found
        if f.detail.object.kind == "NodeFile"
    )
    expected = [
        ("1.1.1", "/etc/kubernetes/manifests/kube-apiserver.yaml", '"0644"'),
        ("1.1.21", "/etc/kubernetes/pki/ca.key", '"0640"'),
    ]
    if os.geteuid() == 0:
        expected.append(("1.1.19", "/etc/kubernetes/pki/ca.crt", '"1234:root"'))
        expected.append(("4.1.8", "/etc/kubernetes/pki/ca.crt", '"1234:root"'))
    assert got == sorted(expected)
    assert "4.2.4" in {by_ref[f.detail.control_id] for f in found if f.detail.object.kind == "KubeletConfiguration"}
    # The hardened static pods read from the node pass every flag control.
    assert [f for f in found if f.detail.object.kind == "Pod"] == []
    (manifests / "kube-scheduler.yaml").write_text(yaml.safe_dump(_manifest("kube-scheduler")))
    found = assess(load_source(f"node:{tmp_path}").resources, _controls("control-plane"))
    flags = sorted(
        (by_ref[f.detail.control_id], f.detail.object.source) for f in found if f.detail.object.kind == "Pod"
    )
    assert flags == [
        ("1.4.1", "/etc/kubernetes/manifests/kube-scheduler.yaml"),
        ("1.4.2", "/etc/kubernetes/manifests/kube-scheduler.yaml"),
    ]


# ------------------------------------------------------------------------------ one case per control

GOOD_CM = _manifest(
    "kube-controller-manager",
    "--terminated-pod-gc-threshold=10",
    "--profiling=false",
    "--use-service-account-credentials=true",
    "--service-account-private-key-file=/etc/kubernetes/pki/sa.key",
    "--root-ca-file=/etc/kubernetes/pki/ca.crt",
    "--bind-address=127.0.0.1",
)
GOOD_SCHED = _manifest("kube-scheduler", "--profiling=false", "--bind-address=127.0.0.1")
GOOD_ETCD = _manifest(
    "etcd",
    "--cert-file=/etc/kubernetes/pki/etcd/server.crt",
    "--key-file=/etc/kubernetes/pki/etcd/server.key",
    "--client-cert-auth=true",
    "--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt",
    "--peer-key-file=/etc/kubernetes/pki/etcd/peer.key",
    "--peer-client-cert-auth=true",
    "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
)
BAD_PODS = [
    _manifest(
        "kube-apiserver",
        "--authorization-mode=AlwaysAllow",
        "--token-auth-file=/etc/kubernetes/tokens.csv",
        "--enable-admission-plugins=AlwaysAdmit",
        "--disable-admission-plugins=ServiceAccount,NamespaceLifecycle",
        "--service-account-lookup=false",
        "--tls-cipher-suites=TLS_RSA_WITH_RC4_128_SHA",
        "--audit-log-maxage=7",
        "--request-timeout=1h",
    ),
    _manifest("kube-controller-manager", "--feature-gates=RotateKubeletServerCertificate=false"),
    _manifest("kube-scheduler"),
    _manifest("etcd", "--auto-tls=true", "--peer-auto-tls=true", "--trusted-ca-file=/etc/kubernetes/pki/ca.crt"),
]
GOOD_KUBELET = {
    "apiVersion": "kubelet.config.k8s.io/v1beta1",
    "kind": "KubeletConfiguration",
    "authentication": {"x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"}, "anonymous": {"enabled": False}},
    "serverTLSBootstrap": True,
    "podPidsLimit": 4096,
    "seccompDefault": True,
    "tlsCipherSuites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
}
BAD_KUBELET = {
    "apiVersion": "kubelet.config.k8s.io/v1beta1",
    "kind": "KubeletConfiguration",
    "authentication": {"anonymous": {"enabled": True}},
    "authorization": {"mode": "AlwaysAllow"},
    "readOnlyPort": 10255,
    "streamingConnectionIdleTimeout": "0",
    "makeIPTablesUtilChains": False,
    "rotateCertificates": False,
    "featureGates": {"RotateKubeletServerCertificate": False},
    "tlsCipherSuites": ["TLS_RSA_WITH_3DES_EDE_CBC_SHA"],
}
PROXY = {"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration"}


def _node_files(mode: str, owner: str, key_mode: str, cert_mode: str) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for rel, role in nodefiles.NODE_FILES.items():
        out.append(
            {
                "kind": "NodeFile",
                "metadata": {"name": "/" + rel},
                "role": role,
                "file": {"path": "/" + rel, "mode": mode, "owner": owner},
            }
        )
    good = mode == "0600"
    for path, role, m, own in (
        ("/etc/kubernetes/pki/ca.key", "PKIKey", key_mode, owner),
        ("/etc/kubernetes/pki/ca.crt", "PKICertificate", cert_mode, owner),
        ("/etc/kubernetes/pki/ca.crt", "KubeletClientCAFile", cert_mode, owner),
        ("/etc/cni/net.d/10-calico.conflist", "CNIFile", mode, owner),
        ("/etc/kubernetes/proxy.conf", "ProxyKubeconfigFile", mode, owner),
        # The benchmark wants the etcd data directory owned by etcd:etcd (not root).
        ("/var/lib/etcd", "EtcdDataDir", "0700" if good else "0755", "etcd:etcd" if good else owner),
    ):
        out.append(
            {
                "kind": "NodeFile",
                "metadata": {"name": path},
                "role": role,
                "file": {"path": path, "mode": m, "owner": own},
            }
        )
    return out


def _kubelet_flags(**flags: str) -> dict:  # type: ignore[type-arg]
    files = ["/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"]
    return {"kind": "KubeletFlags", "metadata": {"name": "kubelet"}, "flags": flags, "files": files}


def _encryption(*first: str) -> dict:  # type: ignore[type-arg]
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [
            {"resources": ["secrets"], "providers": [{p: {}} for p in first]},
            {"resources": ["configmaps"], "providers": [{"aescbc": {"keys": []}}, {"identity": {}}]},
        ],
    }


GOOD_NODE = [
    GOOD_APISERVER,
    GOOD_CM,
    GOOD_SCHED,
    GOOD_ETCD,
    GOOD_KUBELET,
    {**PROXY, "metricsBindAddress": "127.0.0.1:10249"},
    *_node_files("0600", "root:root", "0600", "0644"),
    _kubelet_flags(kubeconfig="/etc/kubernetes/kubelet.conf", **{"event-qps": "50"}),
    {**GOOD_KUBELET, "eventRecordQPS": 0},
    _encryption("aescbc", "identity"),
]
BAD_NODE = [
    *BAD_PODS,
    # A second API server (HA control plane) whose client CA etcd also trusts (2.7).
    _manifest("kube-apiserver", "--client-ca-file=/etc/kubernetes/pki/ca.crt"),
    BAD_KUBELET,
    {**PROXY, "metricsBindAddress": "0.0.0.0:10249"},
    *_node_files("0666", "kube:kube", "0644", "0666"),
    _kubelet_flags(**{"hostname-override": "node-7", "event-qps": "-1"}),
    {**BAD_KUBELET, "eventRecordQPS": -5},
    _encryption("identity", "aescbc"),
]


@pytest.mark.parametrize(
    "control_id", sorted(c.id for c in builtin_controls() if c.family in ("control-plane", "kubelet"))
)
def test_each_control_fails_the_bad_node_and_passes_the_hardened_one(control_id: str) -> None:
    assert control_id in _ids(BAD_NODE), f"{control_id}: no finding on the misconfigured node"
    assert control_id not in _ids(GOOD_NODE), f"{control_id}: a finding on the hardened node"


def test_findings_report_the_flag_word_or_the_missing_flag() -> None:
    pod = _manifest("kube-apiserver", "--anonymous-auth=true", "--enable-admission-plugins=NodeRestriction")
    by_ref = {c.id: c.frameworks["cis-kubernetes"][0] for c in _controls("control-plane")}
    got = {
        by_ref[f.detail.control_id]: (f.detail.path, f.detail.actual)
        for f in assess([Resource(obj=pod, source="m.yaml", line=1)], _controls("control-plane"))
    }
    assert got["1.2.1"] == ("spec.containers[0].command[1]", '"true"')
    assert got["1.2.11"] == ("spec.containers[0].command[2]", '"NodeRestriction"')
    assert got["1.2.16"] == ("flag(audit-log-path)", "null")


def test_node_root_files_named_by_other_files(tmp_path: Path) -> None:
    # CNI files, the etcd data directory from etcd's --data-dir, the encryption configuration from the
    # API server's flag, kube-proxy's kubeconfig, the kubelet's client CA from its configuration and
    # the kubelet's flags from its systemd unit and kubeadm-flags.env: all found on a real tree.
    manifests = tmp_path / "etc/kubernetes/manifests"
    manifests.mkdir(parents=True)
    api = _manifest("kube-apiserver", "--encryption-provider-config=/etc/kubernetes/enc.yaml")
    (manifests / "kube-apiserver.yaml").write_text(yaml.safe_dump(api))
    etcd = _manifest("etcd", "--data-dir=/var/lib/etcd-data")
    (manifests / "etcd.yaml").write_text(yaml.safe_dump(etcd))
    (tmp_path / "etc/kubernetes/enc.yaml").write_text(yaml.safe_dump(_encryption("identity", "aescbc")))
    (tmp_path / "var/lib/etcd-data").mkdir(parents=True)
    os.chmod(tmp_path / "var/lib/etcd-data", 0o755)
    cni = tmp_path / "etc/cni/net.d"
    cni.mkdir(parents=True)
    (cni / "10-flannel.conflist").write_text("{}")
    os.chmod(cni / "10-flannel.conflist", 0o644)
    (tmp_path / "etc/kubernetes/proxy.conf").write_text("apiVersion: v1\n")
    os.chmod(tmp_path / "etc/kubernetes/proxy.conf", 0o644)
    kubelet = tmp_path / "var/lib/kubelet"
    kubelet.mkdir(parents=True)
    config = {**GOOD_KUBELET, "authentication": {"x509": {"clientCAFile": "/etc/kubernetes/pki/kubelet-ca.crt"}}}
    (kubelet / "config.yaml").write_text(yaml.safe_dump(config))
    os.chmod(kubelet / "config.yaml", 0o600)
    (tmp_path / "etc/kubernetes/pki").mkdir()
    (tmp_path / "etc/kubernetes/pki/kubelet-ca.crt").write_text("c")
    os.chmod(tmp_path / "etc/kubernetes/pki/kubelet-ca.crt", 0o666)
    (kubelet / "kubeadm-flags.env").write_text(
        'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock '
        '--hostname-override=worker-7"\n'
    )
    dropin = tmp_path / "etc/systemd/system/kubelet.service.d"
    dropin.mkdir(parents=True)
    (dropin / "10-kubeadm.conf").write_text(
        "[Service]\n"
        'Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"\n'
        "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n"
        "ExecStart=\n"
        "ExecStart=/usr/bin/kubelet $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS --event-qps=-1"
        " --cni-conf-dir=/opt/cni/conf\n"
    )
    (tmp_path / "opt/cni/conf").mkdir(parents=True)
    (tmp_path / "opt/cni/conf/00-custom.conf").write_text("{}")
    os.chmod(tmp_path / "opt/cni/conf/00-custom.conf", 0o600)
    loaded = load_source(f"node:{tmp_path}")
    flags = next(r for r in loaded.resources if r.kind == "KubeletFlags")
    assert flags.obj["flags"]["hostname-override"] == "worker-7"
    assert flags.obj["flags"]["config"] == "/var/lib/kubelet/config.yaml"
    by_ref = {c.id: c.frameworks["cis-kubernetes"][0] for c in _controls("control-plane", "kubelet")}
    got = {
        (by_ref[f.detail.control_id], f.detail.object.name or f.detail.object.kind, f.detail.path)
        for f in assess(loaded.resources, _controls("control-plane", "kubelet"))
    }
    assert ("1.1.9", "/etc/cni/net.d/10-flannel.conflist", "file.mode") in got
    # The kubelet's own --cni-conf-dir is read too (a 0600 file there: no 1.1.9 finding, but assessed).
    assert any(r.obj.get("role") == "CNIFile" and r.name == "/opt/cni/conf/00-custom.conf" for r in loaded.resources)
    assert ("1.1.11", "/var/lib/etcd-data", "file.mode") in got
    assert ("1.2.28", "EncryptionConfiguration", "resources[0].providers[0].identity") in got
    assert ("4.1.3", "/etc/kubernetes/proxy.conf", "file.mode") in got
    assert ("4.1.7", "/etc/kubernetes/pki/kubelet-ca.crt", "file.mode") in got
    assert ("4.2.7", "kubelet", 'flags["hostname-override"]') in got
    assert ("4.2.8", "kubelet", 'flags["event-qps"]') in got
    # Only the resource that is wrong: the configmaps entry starts with aescbc.
    assert not any(r == "1.2.28" and "resources[1]" in p for r, _, p in got)


def test_node_root_refuses_paths_outside_the_root(tmp_path: Path) -> None:
    manifests = tmp_path / "etc/kubernetes/manifests"
    manifests.mkdir(parents=True)
    (manifests / "etcd.yaml").write_text(yaml.safe_dump(_manifest("etcd", "--data-dir=/../../etc")))
    loaded = load_source(f"node:{tmp_path}")
    assert any("not a path under the node's root" in w for w in loaded.warnings)
    assert not any(r.obj.get("role") == "EtcdDataDir" for r in loaded.resources)


def test_go_durations() -> None:
    d = nodefiles.duration_seconds
    assert (d("300s"), d("1m30s"), d("1.5h"), d("0"), d("250ms")) == (300.0, 90.0, 5400.0, 0.0, 0.25)
    assert d("5") is None and d("1x") is None and d("") is None
