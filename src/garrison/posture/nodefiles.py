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
    return resources, warnings


def load(rest: str, options: Mapping[str, Any]) -> Loaded:
    """The posture input's entry point for ``node[:ROOT]`` (``inputs.LIVE_SOURCES``)."""
    from garrison.posture.inputs import Loaded

    root = Path(rest or "/")
    if not root.is_dir():
        raise NotFoundError(f"node:{rest}: no such folder")
    resources, warnings = scan_node(root)
    files = sum(1 for r in resources if r.kind == "NodeFile")
    return Loaded(resources=resources, warnings=warnings, documents=len(resources) - files, files=files)
