"""Control-plane and kubelet files as posture resources (the CIS Kubernetes Benchmark checks a file can show).

What a file can show, and how the controls read it:

* A **static-pod manifest** of a control-plane component (kubeadm writes them to
  ``/etc/kubernetes/manifests``) is a ``Pod`` whose container runs ``kube-apiserver``,
  ``kube-controller-manager``, ``kube-scheduler`` or ``etcd``. It stays a Pod (the workload controls
  assess it like any other); the control-plane controls (``rules/posture/control-plane.yaml``) select it
  with the predicate ``component()`` and read its command-line flags with ``flag(NAME)`` and
  ``flag_list(NAME)``, parsed the way the binaries' pflag parses them: ``--name=value``, ``--name value``,
  a bare ``--name`` is ``"true"``, the last of a repeated flag wins, ``command`` and ``args`` together.
  A finding points at the word that sets the flag (``spec.containers[0].command[7]``).
* A **kubelet configuration** (``KubeletConfiguration``, ``kubelet.config.k8s.io/v1beta1``) and a
  **kube-proxy configuration** (``KubeProxyConfiguration``) are resources of their own kind as they are;
  ``rules/posture/kubelet.yaml`` fails a field only when it is set to an unsafe value or when the
  kubelet's default for an absent field is unsafe, so no defaults are filled in here.
* ``node[:ROOT]`` (:func:`load`) reads the well-known files of a kubeadm node under ROOT (default ``/``):
  those documents, and a ``NodeFile`` per file (path, mode ``"0600"``, owner ``root:root``) for the
  benchmark's permission and ownership checks (1.1.x, 4.1.x).
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from garrison.errors import NotFoundError
from garrison.posture.expr import Ctx, Fn, Nodes, plain
from garrison.posture.resources import Resource

if TYPE_CHECKING:
    from garrison.posture.inputs import Loaded

#: The control-plane programs a static pod may run.
COMPONENTS = frozenset({"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"})
#: Well-known node files (kubeadm layout, relative to the node's root) → their role. Documents of
#: roles ``StaticPod`` and ``KubeletConfiguration`` are also read as resources.
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
#: kube-proxy kubeconfig files (kube-bench's ``proxy.kubeconfig`` list and default, relative to the root).
PROXY_KUBECONFIGS = (
    "etc/kubernetes/proxy.conf",
    "etc/kubernetes/kubelet-kubeconfig",
    "etc/kubernetes/ssl/kubecfg-kube-proxy.yaml",
    "var/lib/kube-proxy/kubeconfig.conf",
    "var/lib/kube-proxy/kubeconfig",
)
#: Where the kubelet's CNI configuration lives (its ``--cni-conf-dir`` default) and CNI plugins keep state.
CNI_DIRS = ("etc/cni/net.d", "var/lib/cni/networks")
#: Files that give the kubelet its command-line flags on a kubeadm node (systemd drop-in, then the
#: environment files it names).
KUBELET_FLAG_FILES = (
    "etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
    "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
    "var/lib/kubelet/kubeadm-flags.env",
    "etc/default/kubelet",
    "etc/sysconfig/kubelet",
)
#: Most files read below a CNI directory (bounds the walk on a wrong root).
MAX_CNI_FILES = 1000


def flag_words(container_path: str, container: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Flag name → (JSON path of the word that sets it, value), from the container's ``command`` and
    ``args`` as pflag reads them (positional words are skipped; the last occurrence wins)."""
    words: list[tuple[str, str]] = []
    for list_name in ("command", "args"):
        for i, w in enumerate(container.get(list_name) or []):
            words.append((f"{container_path}.{list_name}[{i}]", str(w)))
    out: dict[str, tuple[str, str]] = {}
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


def parse_flags(argv: list[str]) -> dict[str, str]:
    """``argv``'s flags as pflag reads them (see :func:`flag_words`)."""
    return {k: v for k, (_, v) in flag_words("", {"command": argv}).items()}


def program(container: Mapping[str, Any]) -> str:
    """The control-plane program a container runs (its command's or args' first word), or ``""``."""
    argv = [str(c) for c in (container.get("command") or []) + (container.get("args") or [])]
    for word in argv[:2]:
        prog = word.rsplit("/", 1)[-1]
        if prog in COMPONENTS:
            return prog
    return ""


# ------------------------------------------------------------------------------------- predicates


def _component_flags(ctx: Ctx) -> tuple[str, dict[str, tuple[str, str]]]:
    def build() -> tuple[str, dict[str, tuple[str, str]]]:
        for c in ctx.resource.containers():
            prog = program(c.spec)
            if prog:
                return prog, flag_words(c.path, c.spec)
        return "", {}

    # Once per resource and assessment, however many controls ask.
    found: tuple[str, dict[str, tuple[str, str]]] = ctx.index.memo(f"nodefiles.flags.{id(ctx.resource)}", build)
    return found


def p_component(ctx: Ctx, args: list[Fn]) -> str:
    """``component()``: the control-plane program a (static) Pod runs — ``kube-apiserver``,
    ``kube-controller-manager``, ``kube-scheduler``, ``etcd`` — or ``""``."""
    return _component_flags(ctx)[0]


def _read(ctx: Ctx, name: str, what: str) -> tuple[str, str] | None:
    """The flag's (path, value), noted as the first thing the check read (as a path read is), so a
    check that fails through ``not`` reports the word that sets the flag and its whole value, or
    ``flag(NAME)`` with null when it is absent."""
    found = _component_flags(ctx)[1].get(name)
    if ctx.first is None:
        ctx.first = found if found else (f"{what}({name})", None)
    return found


def p_flag(ctx: Ctx, args: list[Fn]) -> Nodes:
    """``flag("anonymous-auth")``: the value of the component's command-line flag, at the path of the
    word that sets it; nothing when the flag is absent, so ``not (flag("x") == "false")`` reads "must be
    set to false" and ``missing(flag("x"))`` "must be set"."""
    name = str(plain(args[0](ctx)))
    found = _read(ctx, name, "flag")
    return Nodes([found] if found else [], f"flag({name})")


def p_flag_list(ctx: Ctx, args: list[Fn]) -> Nodes:
    """``flag_list("enable-admission-plugins")``: the comma-separated values of a flag, one node each."""
    name = str(plain(args[0](ctx)))
    found = _read(ctx, name, "flag_list")
    if not found:
        return Nodes([], f"flag_list({name})")
    return Nodes([(found[0], v) for v in found[1].split(",") if v], f"flag_list({name})")


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float | None:
    """A Go duration (``300s``, ``1m30s``, ``1h``, ``0``) in seconds; None when it is not one."""
    import re

    t = text.strip()
    if t in ("0", "+0", "-0"):
        return 0.0
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", t)
    sign = -1.0 if t.startswith("-") else 1.0
    body = t.lstrip("+-")
    if not parts or "".join(n + u for n, u in parts) != body:
        return None
    return sign * sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def p_duration_seconds(ctx: Ctx, args: list[Fn]) -> Nodes:
    """``duration_seconds(p)``: each Go duration value of ``p`` (a flag such as ``--request-timeout``)
    in seconds, at its own path; values that are not durations yield nothing."""
    got = args[0](ctx)
    items = got.items if isinstance(got, Nodes) else [("", got)]
    out = []
    for path, value in items:
        secs = duration_seconds(value) if isinstance(value, str) else None
        if secs is not None:
            out.append((path, secs))
    return Nodes(out, got.where() if isinstance(got, Nodes) else "")


def p_component_flag(ctx: Ctx, args: list[Fn]) -> Nodes:
    """``component_flag("kube-apiserver", "client-ca-file")``: a flag of *other* control-plane static
    pods in the same assessment, one value per pod of that component (an HA control plane has several
    API servers; 2.7 compares etcd's CA with theirs); nothing when none sets it."""
    component, name = str(plain(args[0](ctx))), str(plain(args[1](ctx)))

    def build() -> dict[str, list[tuple[str, dict[str, tuple[str, str]]]]]:
        out: dict[str, list[tuple[str, dict[str, tuple[str, str]]]]] = {}
        for r in ctx.index.of_kind("Pod"):
            for c in r.containers():
                prog = program(c.spec)
                if prog:
                    out.setdefault(prog, []).append((r.source or r.name, flag_words(c.path, c.spec)))
                    break
        return out

    table: dict[str, list[tuple[str, dict[str, tuple[str, str]]]]] = ctx.index.memo("nodefiles.component_flags", build)
    nodes = [
        (f"{where}:{flags[name][0]}", flags[name][1]) for where, flags in table.get(component, []) if name in flags
    ]
    return Nodes(nodes, f"component_flag({component}, {name})")


# ------------------------------------------------------------------------------------- node:ROOT


def file_info(path: Path, name: str = "") -> dict[str, Any]:
    """``path``, ``mode`` (four octal digits), ``owner`` (``user:group``, numbers when unnamed)."""
    st = os.stat(path)
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return {"path": name or str(path), "mode": f"{stat.S_IMODE(st.st_mode):04o}", "owner": f"{user}:{group}"}


def _node_file(name: str, role: str, info: dict[str, Any]) -> Resource:
    doc = {"apiVersion": "garrison.dev/v1", "kind": "NodeFile", "metadata": {"name": name}, "role": role, "file": info}
    return Resource(obj=doc, source=name)


def scan_node(root: Path = Path("/")) -> tuple[list[Resource], list[str]]:
    """The resources of a kubeadm node's well-known files under ``root`` (missing files are skipped),
    and a warning per file whose document could not be read (its ``NodeFile`` is still assessed)."""
    resources: list[Resource] = []
    warnings: list[str] = []
    for rel, role in NODE_FILES.items():
        path = root / rel
        if not path.is_file():
            continue
        name = "/" + rel
        resources.append(_node_file(name, role, file_info(path, name)))
        if role not in ("StaticPod", "KubeletConfiguration"):
            continue
        import yaml  # here, not at the top: predicates import this module on every assessment

        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_BYTES + 1)
            doc = yaml.safe_load(data) if len(data) <= MAX_BYTES else None
        except (OSError, yaml.YAMLError) as exc:
            warnings.append(f"{name}: not read ({' '.join(str(exc).split())[:120]})")
            continue
        if isinstance(doc, dict) and doc.get("kind"):
            resources.append(Resource(obj=doc, source=name, line=1))
        else:
            warnings.append(f"{name}: not a Kubernetes object, only its mode and owner are assessed")
    pki = root / "etc/kubernetes/pki"
    if pki.is_dir():
        for path in sorted(pki.rglob("*")):
            if path.is_file() and path.suffix in (".crt", ".key"):
                name = "/" + str(path.relative_to(root))
                role = "PKIKey" if path.suffix == ".key" else "PKICertificate"
                resources.append(_node_file(name, role, file_info(path, name)))
    scan_more(root, resources, warnings)
    return resources, warnings


def _text(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError:
        return None
    return data.decode("utf-8", "replace") if len(data) <= MAX_BYTES else None


def _env_words(text: str) -> list[str]:
    """The flag words of a systemd unit (``Environment="NAME=--a=b --c"`` values and ``ExecStart=``
    words) or of an environment file (``NAME="--a=b"`` lines); ``$VAR`` references are dropped."""
    import shlex

    words: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[", "EnvironmentFile=")):
            continue
        exec_start = line.startswith("ExecStart=")
        if exec_start or line.startswith("Environment="):
            line = line.partition("=")[2]
        try:
            parts = shlex.split(line)
        except ValueError:
            continue
        for part in parts:
            if exec_start:
                if part.startswith("-"):
                    words.append(part)
                continue
            _name, eq, value = part.partition("=")
            if eq:
                words.extend(value.split())
    return words


def kubelet_flags(root: Path) -> tuple[dict[str, Any], list[str]] | None:
    """The kubelet's command-line flags as its kubeadm systemd unit gives them (drop-in
    ``Environment=`` and ``ExecStart=``, ``kubeadm-flags.env``, ``/etc/default/kubelet``), and the
    files read; None when there is none of them."""
    words: list[str] = []
    read: list[str] = []
    for rel in KUBELET_FLAG_FILES:
        text = _text(root / rel)
        if text is None:
            continue
        read.append("/" + rel)
        words.extend(_env_words(text))
    if not read:
        return None
    return dict(parse_flags(["kubelet", *words])), read


def _kubelet_client_ca(root: Path, resources: list[Resource], flags: Mapping[str, Any]) -> str:
    """The kubelet's client CA file: its ``--client-ca-file`` flag, else the configuration's
    ``authentication.x509.clientCAFile``, else kubeadm's (kube-bench's) default."""
    if flags.get("client-ca-file"):
        return str(flags["client-ca-file"])
    for r in resources:
        if r.kind == "KubeletConfiguration":
            auth = r.obj.get("authentication")
            x509 = auth.get("x509") if isinstance(auth, dict) else None
            if isinstance(x509, dict) and x509.get("clientCAFile"):
                return str(x509["clientCAFile"])
    return "/etc/kubernetes/pki/ca.crt"


def _static_flag(resources: list[Resource], component: str, name: str) -> str:
    for r in resources:
        if r.kind != "Pod":
            continue
        for c in r.containers():
            if program(c.spec) == component:
                found = flag_words(c.path, c.spec).get(name)
                return found[1] if found else ""
    return ""


def _under(root: Path, path: str) -> Path:
    """``path`` (absolute on the node) below ``root``, refusing ``..`` that would leave it."""
    rel = Path(path.lstrip("/"))
    if ".." in rel.parts:
        raise ValueError(path)
    return root / rel


def scan_more(root: Path, resources: list[Resource], warnings: list[str]) -> None:
    """The files the benchmark names through other files' contents: CNI configuration (1.1.9,
    1.1.10), the etcd data directory from etcd's ``--data-dir`` (1.1.11, 1.1.12), the API server's
    encryption configuration (1.2.28), the kube-proxy kubeconfig (4.1.3, 4.1.4), the kubelet's client
    CA file (4.1.7, 4.1.8) and the kubelet's own command-line flags (4.2.7, 4.2.8)."""
    found = kubelet_flags(root)
    flags: Mapping[str, Any] = found[0] if found else {}
    cni_dirs = list(CNI_DIRS)
    if flags.get("cni-conf-dir"):  # kube-bench reads the kubelet's flag first (older kubelets)
        custom = str(flags["cni-conf-dir"]).strip("/")
        if ".." not in Path(custom).parts and custom not in cni_dirs:
            cni_dirs.insert(0, custom)
    for rel in cni_dirs:
        base = root / rel
        if not base.is_dir():
            continue
        for n, path in enumerate(sorted(p for p in base.rglob("*") if p.is_file() and not p.is_symlink())):
            if n >= MAX_CNI_FILES:
                warnings.append(f"/{rel}: more than {MAX_CNI_FILES} files, the rest not assessed")
                break
            name = "/" + str(path.relative_to(root))
            resources.append(_node_file(name, "CNIFile", file_info(path, name)))
    etcd_dir = _static_flag(resources, "etcd", "data-dir") or "/var/lib/etcd"
    try:
        data_dir = _under(root, etcd_dir)
        if data_dir.is_dir():
            resources.append(_node_file(etcd_dir, "EtcdDataDir", file_info(data_dir, etcd_dir)))
    except ValueError:
        warnings.append(f"etcd --data-dir {etcd_dir!r}: not a path under the node's root, not assessed")
    enc = _static_flag(resources, "kube-apiserver", "encryption-provider-config")
    if enc:
        import yaml

        try:
            text = _text(_under(root, enc))
            doc = yaml.safe_load(text) if text is not None else None
        except (ValueError, yaml.YAMLError):
            doc = None
        if isinstance(doc, dict) and doc.get("kind"):
            resources.append(Resource(obj=doc, source=enc, line=1))
        elif text is not None:
            warnings.append(f"{enc}: not an encryption configuration, not assessed")
    for rel in PROXY_KUBECONFIGS:
        if (root / rel).is_file():
            name = "/" + rel
            resources.append(_node_file(name, "ProxyKubeconfigFile", file_info(root / rel, name)))
    if found:
        doc = {
            "apiVersion": "garrison.dev/v1",
            "kind": "KubeletFlags",
            "metadata": {"name": "kubelet"},
            "flags": found[0],
            "files": found[1],
        }
        resources.append(Resource(obj=doc, source=found[1][0]))
    ca = _kubelet_client_ca(root, resources, flags)
    try:
        ca_path = _under(root, ca)
        if ca_path.is_file():
            resources.append(_node_file(ca, "KubeletClientCAFile", file_info(ca_path, ca)))
    except ValueError:
        warnings.append(f"kubelet client CA {ca!r}: not a path under the node's root, not assessed")


def load(rest: str, options: Mapping[str, Any]) -> Loaded:
    """The posture input's entry point for ``node[:ROOT]`` (``inputs.LIVE_SOURCES``)."""
    from garrison.posture.inputs import Loaded

    root = Path(rest or "/")
    if not root.is_dir():
        raise NotFoundError(f"node:{rest}: no such folder")
    resources, warnings = scan_node(root)
    files = sum(1 for r in resources if r.kind == "NodeFile")
    return Loaded(resources=resources, warnings=warnings, documents=len(resources) - files, files=files)
