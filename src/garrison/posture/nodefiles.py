"""Control-plane and kubelet files as posture resources (the CIS Kubernetes Benchmark checks a file can show).

Two shapes of input:

* A **static-pod manifest** of a control-plane component (kubeadm writes them to
  ``/etc/kubernetes/manifests``): a ``Pod`` whose container runs ``kube-apiserver``,
  ``kube-controller-manager``, ``kube-scheduler`` or ``etcd``. Besides the Pod itself (which the workload
  controls assess like any other) it yields a resource of kind ``KubeAPIServer``,
  ``KubeControllerManager``, ``KubeScheduler`` or ``Etcd`` whose ``flags`` map holds the component's
  command-line flags exactly as the binary reads them (``--name=value``, ``--name value``, a bare
  ``--name`` is ``"true"``; a repeated flag keeps the last value, as pflag does; ``listFlags`` splits the
  comma-separated ones), so a control says ``flags.anonymous-auth == "false"``.
* A **kubelet configuration file** (``KubeletConfiguration``, ``kubelet.config.k8s.io/v1beta1``) and a
  **kube-proxy configuration** (``KubeProxyConfiguration``): already resources of their own kind; the
  kubelet's defaults (what an absent field means) are written into ``effective`` so a control can
  compare one value whether or not the file sets it.

Each resource read from a real file also carries ``file``: its path, mode (``"0600"``) and owner
(``root:root``), so the benchmark's permission and ownership checks (1.1.x, 4.1.x) are controls too.
:func:`scan_node` reads the well-known paths of a kubeadm node under a root folder.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from garrison.errors import NotFoundError
from garrison.posture.expr import Ctx, Fn, Nodes, plain
from garrison.posture.resources import Resource

if TYPE_CHECKING:
    from garrison.posture.inputs import Loaded

#: The component a static pod runs, by the program name in its container's command → resource kind.
COMPONENTS: Mapping[str, str] = {
    "kube-apiserver": "KubeAPIServer",
    "kube-controller-manager": "KubeControllerManager",
    "kube-scheduler": "KubeScheduler",
    "etcd": "Etcd",
}
#: Flags whose value is a comma-separated list (split into ``listFlags``).
LIST_FLAGS = frozenset(
    {
        "authorization-mode",
        "enable-admission-plugins",
        "disable-admission-plugins",
        "feature-gates",
        "tls-cipher-suites",
    }
)
#: What the kubelet does when its config file leaves a field out (kubelet v1.32 defaults,
#: ``pkg/kubelet/apis/config/v1beta1/defaults.go``), as the path in the file → value.
KUBELET_DEFAULTS: Mapping[str, Any] = {
    "authentication.anonymous.enabled": False,
    "authentication.webhook.enabled": True,
    "authorization.mode": "Webhook",
    "readOnlyPort": 0,
    "streamingConnectionIdleTimeout": "4h0m0s",
    "makeIPTablesUtilChains": True,
    "eventRecordQPS": 50,
    "rotateCertificates": False,
    "serverTLSBootstrap": False,
    "protectKernelDefaults": False,
    "podPidsLimit": -1,
    "seccompDefault": False,
    "featureGates.RotateKubeletServerCertificate": True,
}
#: Well-known node files (kubeadm layout) → the resource kind they are read as.
NODE_FILES: Mapping[str, str] = {
    "etc/kubernetes/manifests/kube-apiserver.yaml": "StaticPod",
    "etc/kubernetes/manifests/kube-controller-manager.yaml": "StaticPod",
    "etc/kubernetes/manifests/kube-scheduler.yaml": "StaticPod",
    "etc/kubernetes/manifests/etcd.yaml": "StaticPod",
    "var/lib/kubelet/config.yaml": "KubeletConfiguration",
    "etc/kubernetes/admin.conf": "KubeconfigFile",
    "etc/kubernetes/super-admin.conf": "KubeconfigFile",
    "etc/kubernetes/scheduler.conf": "KubeconfigFile",
    "etc/kubernetes/controller-manager.conf": "KubeconfigFile",
    "etc/kubernetes/kubelet.conf": "KubeconfigFile",
    "etc/systemd/system/kubelet.service.d/10-kubeadm.conf": "KubeletServiceFile",
    "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf": "KubeletServiceFile",
}
#: The most a node file may hold (bounds memory on a wrong path).
MAX_BYTES = 2 * 1024 * 1024


def parse_flags(argv: list[str]) -> dict[str, str]:
    """Command-line flags as pflag reads them: ``--a=b``, ``--a b``, a bare ``--a`` (``"true"``); the last
    of a repeated flag wins; positional words are ignored."""
    flags: dict[str, str] = {}
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if not word.startswith("-") or word in ("-", "--"):
            continue
        name, eq, value = word.lstrip("-").partition("=")
        if not eq:
            if i < len(argv) and not argv[i].startswith("-"):
                value = argv[i]
                i += 1
            else:
                value = "true"
        flags[name] = value
    return flags


def _program(container: Mapping[str, Any]) -> tuple[str, list[str]]:
    command = [str(c) for c in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    argv = command + args
    for word in argv[:2]:
        prog = word.rsplit("/", 1)[-1]
        if prog in COMPONENTS:
            return prog, argv
    return "", argv


def component_resources(pod: Mapping[str, Any], file_info: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The control-plane component resources a (static) Pod runs: one per container whose program is one
    of :data:`COMPONENTS`. A Pod that runs none of them gives an empty list."""
    if pod.get("kind") != "Pod":
        return []
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    out: list[dict[str, Any]] = []
    for index, container in enumerate(spec.get("containers") or []):
        if not isinstance(container, Mapping):
            continue
        prog, argv = _program(container)
        if not prog:
            continue
        flags = parse_flags(argv)
        doc: dict[str, Any] = {
            "apiVersion": "garrison.dev/v1",
            "kind": COMPONENTS[prog],
            "metadata": {"name": str(meta.get("name") or prog), "namespace": str(meta.get("namespace") or "")},
            "component": prog,
            "container": str(container.get("name", "")),
            "containerIndex": index,
            "flags": flags,
            "listFlags": {k: [v for v in flags[k].split(",") if v] for k in LIST_FLAGS if k in flags},
        }
        if file_info is not None:
            doc["file"] = dict(file_info)
        out.append(doc)
    return out


def _get(doc: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    cur: Any = doc
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = doc
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


def kubelet_resource(doc: Mapping[str, Any], file_info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A ``KubeletConfiguration`` with ``effective``: the file's values over the kubelet's defaults."""
    out = dict(doc)
    effective: dict[str, Any] = {}
    for dotted, default in KUBELET_DEFAULTS.items():
        found, value = _get(doc, dotted)
        _set(effective, dotted, value if found else default)
    for key in ("tlsCertFile", "tlsPrivateKeyFile", "tlsCipherSuites", "hostnameOverride", "staticPodPath"):
        if key in doc:
            effective[key] = doc[key]
    found, ca = _get(doc, "authentication.x509.clientCAFile")
    _set(effective, "authentication.x509.clientCAFile", ca if found else "")
    out["effective"] = effective
    out.setdefault("metadata", {"name": str((file_info or {}).get("path", "kubelet"))})
    if file_info is not None:
        out["file"] = dict(file_info)
    return out


def file_info(path: Path, name: str = "") -> dict[str, Any]:
    """``path``, ``mode`` (four octal digits), ``owner`` (``user:group``, numbers when unnamed)."""
    st = os.stat(path)

    def user(uid: int) -> str:
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return str(uid)

    def group(gid: int) -> str:
        try:
            return grp.getgrgid(gid).gr_name
        except KeyError:
            return str(gid)

    return {
        "path": name or str(path),
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
        "owner": f"{user(st.st_uid)}:{group(st.st_gid)}",
        "directory": stat.S_ISDIR(st.st_mode),
    }


def node_resources(doc: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The node-file resources derived from one loaded document: control-plane components of a static
    Pod, or the kubelet/kube-proxy configuration with its effective values. Others give ``[]``."""
    kind = doc.get("kind")
    if kind == "Pod":
        return component_resources(doc, info)
    if kind == "KubeletConfiguration":
        return [kubelet_resource(doc, info)]
    if kind == "KubeProxyConfiguration":
        out = dict(doc)
        out.setdefault("metadata", {"name": str((info or {}).get("path", "kube-proxy"))})
        out["effective"] = {"metricsBindAddress": doc.get("metricsBindAddress") or "127.0.0.1:10249"}
        if info is not None:
            out["file"] = dict(info)
        return [out]
    return []


def scan_node(root: Path = Path("/")) -> Iterator[dict[str, Any]]:
    """The resources of a kubeadm node's well-known files under ``root`` (missing files are skipped):
    static pods and their components, the kubelet config, and a ``NodeFile`` per file (path, mode, owner)
    for the permission and ownership controls. Unreadable YAML yields only its ``NodeFile``."""
    for rel, role in NODE_FILES.items():
        path = root / rel
        if not path.is_file():
            continue
        name = "/" + rel
        info = file_info(path, name)
        yield {
            "apiVersion": "garrison.dev/v1",
            "kind": "NodeFile",
            "metadata": {"name": name},
            "role": role,
            "file": info,
        }
        if role not in ("StaticPod", "KubeletConfiguration"):
            continue
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_BYTES)
            doc = yaml.safe_load(data)
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(doc, Mapping):
            yield from node_resources(doc, info)
    pki = root / "etc/kubernetes/pki"
    if pki.is_dir():
        for path in sorted(pki.rglob("*")):
            if path.is_file() and path.suffix in (".crt", ".key"):
                name = "/" + str(path.relative_to(root))
                role = "PKIKey" if path.suffix == ".key" else "PKICertificate"
                info = file_info(path, name)
                yield {
                    "apiVersion": "garrison.dev/v1",
                    "kind": "NodeFile",
                    "metadata": {"name": name},
                    "role": role,
                    "file": info,
                }


# ------------------------------------------------------------------------------------- predicates


def _flag_nodes(container_path: str, container: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Flag name → (JSON path of the word that sets it, value), for the container's command and args
    (the last occurrence wins, as pflag does)."""
    out: dict[str, tuple[str, str]] = {}
    words: list[tuple[str, str]] = []
    for list_name in ("command", "args"):
        for i, w in enumerate(container.get(list_name) or []):
            words.append((f"{container_path}.{list_name}[{i}]", str(w)))
    i = 0
    while i < len(words):
        path, word = words[i]
        i += 1
        if not word.startswith("-") or word in ("-", "--"):
            continue
        name, eq, value = word.lstrip("-").partition("=")
        if not eq:
            if i < len(words) and not words[i][1].startswith("-"):
                path, value = words[i]
                i += 1
            else:
                value = "true"
        out[name] = (path, value)
    return out


def _component_flags(ctx: Ctx) -> tuple[str, dict[str, tuple[str, str]]]:
    for c in ctx.resource.containers():
        prog, _ = _program(c.spec)
        if prog:
            return prog, _flag_nodes(c.path, c.spec)
    return "", {}


def p_component(ctx: Ctx, args: list[Fn]) -> str:
    """``component()``: the control-plane program a (static) Pod runs — ``kube-apiserver``,
    ``kube-controller-manager``, ``kube-scheduler``, ``etcd`` — or ``""``."""
    return _component_flags(ctx)[0]


def p_flag(ctx: Ctx, args: list[Fn]) -> Nodes:
    """``flag("anonymous-auth")``: the value of a control-plane component's command-line flag, at the
    path of the word that sets it (``spec.containers[0].command[3]``); nothing when the flag is absent,
    so ``not (flag("x") == "false")`` reads "must be set to false"."""
    name = str(plain(args[0](ctx)))
    _, flags = _component_flags(ctx)
    found = flags.get(name)
    return Nodes([found] if found else [], f"flag({name})")


def p_flag_list(ctx: Ctx, args: list[Fn]) -> Nodes:
    """``flag_list("enable-admission-plugins")``: the comma-separated values of a flag, one node each."""
    name = str(plain(args[0](ctx)))
    _, flags = _component_flags(ctx)
    found = flags.get(name)
    if not found:
        return Nodes([], f"flag_list({name})")
    return Nodes([(found[0], v) for v in found[1].split(",") if v], f"flag_list({name})")


def load(rest: str, options: Mapping[str, Any]) -> Loaded:
    """The posture input's entry point for ``node[:ROOT]``: the well-known files of a kubeadm node under
    ROOT (default ``/``), with their modes and owners, static pods and the kubelet configuration."""
    from garrison.posture.inputs import Loaded

    root = Path(rest or "/")
    if not root.is_dir():
        raise NotFoundError(f"node:{rest}: no such folder")
    resources = [
        Resource(
            obj=doc, source=str((doc.get("file") or {}).get("path", "")), line=1 if doc.get("kind") != "NodeFile" else 0
        )
        for doc in scan_node(root)
    ]
    return Loaded(
        resources=resources, documents=len(resources), files=sum(1 for r in resources if r.kind == "NodeFile")
    )
