"""``docker[:HOST]``: a Docker host as posture resources, read through the Engine API and the host's files.

What is read, all with ``GET`` only (the client is :mod:`garrison.sources.docker_daemon`'s):

* ``/info`` and ``/version`` (``docker info`` / ``docker version``);
* the daemon's configuration: the ``daemon.json`` it was started with and its command-line flags. The
  flags come from ``/proc/<pid>/cmdline`` of the local ``dockerd`` that serves the socket (found by its
  ``--host``/``hosts`` or the default socket); ``--config-file`` names the ``daemon.json`` (default
  ``/etc/docker/daemon.json``, or the path given). ``settings`` is the two merged the way dockerd merges
  them, keyed by ``daemon.json`` names (``icc``, ``log-level``, ``insecure-registries``…);
* the ownership and mode of the daemon's files (``docker.service``, ``docker.socket``, ``/etc/docker``,
  ``daemon.json``, ``/etc/default/docker``, the TLS files ``daemon.json`` names, registry certificates);
* every container's inspect document (``/containers/json?all=1`` then ``/containers/{id}/json``) and
  each of its exec sessions (``/exec/{id}/json``);
* every image's inspect document (``/images/json`` then ``/images/{id}/json``).

Resources: one ``DockerDaemon`` (info, version, config, commandLine, settings, files), a
``DockerContainer`` per container (the inspect document as Docker returns it, plus derived fields with
lower-case names: ``securityOpt`` parsed into a map, ``publishedPorts`` with numeric host ports, ``execs``,
``running``) and a ``DockerImage`` per image (its inspect document). Controls name Docker's own fields
(``HostConfig.Privileged``, ``Config.User``), the ones users see in ``docker inspect``.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from garrison.config import Settings
from garrison.errors import SourceError
from garrison.posture.resources import Resource
from garrison.sources.docker_daemon import _API, _client, socket_path

if TYPE_CHECKING:
    from garrison.posture.inputs import Loaded

DEFAULT_CONFIG = "/etc/docker/daemon.json"
DEFAULT_SOCKET = "/var/run/docker.sock"
#: A daemon.json larger than this is not one (bounds memory).
MAX_CONFIG_BYTES = 1024 * 1024
#: dockerd flags whose daemon.json key differs from the flag name (``daemon/config``'s json tags).
FLAG_KEYS: Mapping[str, str] = {
    "insecure-registry": "insecure-registries",
    "authorization-plugin": "authorization-plugins",
    "default-ulimit": "default-ulimits",
    "storage-opt": "storage-opts",
    "log-opt": "log-opts",
    "host": "hosts",
    "H": "hosts",
    "registry-mirror": "registry-mirrors",
    "dns": "dns",
    "label": "labels",
    "exec-opt": "exec-opts",
    "D": "debug",
    "l": "log-level",
    "add-runtime": "runtimes",
}
#: daemon.json keys that are lists (a repeated flag appends).
LIST_KEYS = frozenset(
    {
        "insecure-registries",
        "authorization-plugins",
        "hosts",
        "registry-mirrors",
        "dns",
        "labels",
        "exec-opts",
        "storage-opts",
    }
)
#: dockerd's defaults for the settings the benchmark asks about (what an absent key means).
DAEMON_DEFAULTS: Mapping[str, Any] = {
    "icc": True,
    "log-level": "info",
    "iptables": True,
    "insecure-registries": [],
    "tlsverify": False,
    "userns-remap": "",
    "default-ulimits": {},
    "cgroup-parent": "",
    "storage-opts": [],
    "authorization-plugins": [],
    "log-driver": "json-file",
    "no-new-privileges": False,
    "live-restore": False,
    "userland-proxy": True,
    "seccomp-profile": "",
    "experimental": False,
    "selinux-enabled": False,
}
#: Host files of the benchmark's section 3 (role → path); TLS and certificate files are added from settings.
HOST_FILES: Mapping[str, Sequence[str]] = {
    "docker.service": (
        "/usr/lib/systemd/system/docker.service",
        "/lib/systemd/system/docker.service",
        "/etc/systemd/system/docker.service",
    ),
    "docker.socket": (
        "/usr/lib/systemd/system/docker.socket",
        "/lib/systemd/system/docker.socket",
        "/etc/systemd/system/docker.socket",
    ),
    "etc-docker": ("/etc/docker",),
    "etc-default-docker": ("/etc/default/docker",),
    "etc-sysconfig-docker": ("/etc/sysconfig/docker",),
    "containerd.sock": ("/run/containerd/containerd.sock",),
}


@dataclass
class DockerHost:
    """What was read: the resources, and a warning per part that could not be read."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The daemon's host name (``docker info``'s ``Name``), the ``host`` of every resource.
    name: str = ""

    def as_resources(self, source: str = "") -> list[Resource]:
        """The documents as engine resources, each tagged with the host (and ``source``, e.g. ``docker:``)."""
        return [Resource(obj=doc, source=source, host=self.name) for doc in self.resources]


def _stat(path: str) -> dict[str, Any]:
    try:
        st = os.stat(path)
    except OSError:
        return {"path": path, "exists": False}
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return {"path": path, "exists": True, "mode": f"{stat.S_IMODE(st.st_mode):04o}", "owner": f"{user}:{group}"}


def parse_dockerd_args(argv: Sequence[str]) -> dict[str, Any]:
    """dockerd's command-line flags as daemon.json keys: ``--icc=false`` → ``{"icc": False}``, repeated
    list flags append, a bare boolean flag is ``True``, ``"false"``/``"true"`` become booleans."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if not word.startswith("-") or word in ("-", "--"):
            continue
        name, eq, value = word.lstrip("-").partition("=")
        if not eq:
            nxt = argv[i] if i < len(argv) else ""
            # Boolean flags never take a separate value; other flags do ("--log-level debug").
            if nxt and not nxt.startswith("-") and name not in _BOOL_FLAGS:
                value = nxt
                i += 1
            else:
                value = "true"
        key = FLAG_KEYS.get(name, name)
        parsed: Any = (
            {"true": True, "false": False}.get(value, value)
            if name in _BOOL_FLAGS or value in ("true", "false")
            else value
        )
        if key in LIST_KEYS:
            out.setdefault(key, []).append(parsed)
        else:
            out[key] = parsed
    return out


_BOOL_FLAGS = frozenset(
    {
        "icc",
        "iptables",
        "ip6tables",
        "ip-forward",
        "ip-masq",
        "tls",
        "tlsverify",
        "live-restore",
        "userland-proxy",
        "no-new-privileges",
        "experimental",
        "selinux-enabled",
        "debug",
        "D",
        "raw-logs",
        "init",
    }
)


def _dockerd_processes() -> list[list[str]]:
    """argv of every local process whose program is ``dockerd``."""
    found = []
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        if argv and argv[0].rsplit("/", 1)[-1] == "dockerd":
            found.append(argv)
    return found


def _read_config(path: str) -> tuple[dict[str, Any], str]:
    """A daemon.json: (document, warning)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return {}, ""
    except OSError as exc:
        return {}, f"{path}: cannot read the daemon configuration: {exc.strerror}"
    if len(data) > MAX_CONFIG_BYTES:
        return {}, f"{path}: larger than {MAX_CONFIG_BYTES} bytes, not read"
    try:
        doc = json.loads(data or b"{}")
    except ValueError as exc:
        return {}, f"{path}: not JSON ({exc}); the daemon settings are assessed from its flags only"
    if not isinstance(doc, dict):
        return {}, f"{path}: not a JSON object"
    return doc, ""


def daemon_configuration(sock: str, config_path: str = "") -> tuple[dict[str, Any], str, dict[str, Any], list[str]]:
    """The daemon serving ``sock``: (command-line flags, daemon.json path, daemon.json, warnings).

    Without ``config_path`` the ``--config-file`` of the local dockerd serving ``sock`` is used (the one
    whose ``hosts`` name it; with none, the one on the default socket), else ``/etc/docker/daemon.json``."""
    warnings: list[str] = []
    chosen: dict[str, Any] | None = None
    for argv in _dockerd_processes():
        flags = parse_dockerd_args(argv[1:])
        path = str(flags.get("config-file") or DEFAULT_CONFIG)
        doc, _ = _read_config(path)
        hosts = [*flags.get("hosts", []), *doc.get("hosts", [])] or [f"unix://{DEFAULT_SOCKET}"]
        if any(h in (sock, f"unix://{sock}") for h in hosts):
            chosen = flags
            break
    if chosen is None:
        warnings.append(f"no local dockerd process serves {sock}: command-line flags not read")
        chosen = {}
    path = config_path or str(chosen.get("config-file") or DEFAULT_CONFIG)
    doc, warning = _read_config(path)
    if warning:
        warnings.append(warning)
    return chosen, path, doc, warnings


def effective_settings(flags: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults, then daemon.json, then flags (dockerd refuses a setting given in both; a flag wins here)."""
    out: dict[str, Any] = dict(DAEMON_DEFAULTS)
    out.update(config)
    out.update({k: v for k, v in flags.items() if k != "config-file"})
    return out


def _security_opt(opts: Sequence[str]) -> dict[str, Any]:
    """``HostConfig.SecurityOpt`` (``seccomp=unconfined``, ``apparmor:x``, ``no-new-privileges``,
    ``label=type:…``) as a map; ``label`` collects every label option."""
    out: dict[str, Any] = {"label": []}
    for opt in opts or ():
        sep = "=" if "=" in opt else ":" if ":" in opt else ""
        key, _, value = opt.partition(sep) if sep else (opt, "", "")
        if key == "label":
            out["label"].append(value)
        elif key == "no-new-privileges":
            out[key] = value.lower() not in ("false", "0") if value else True
        else:
            out[key] = value
    return out


def _daemon_security_options(opts: Sequence[str]) -> dict[str, dict[str, str]]:
    """``docker info``'s ``SecurityOptions`` (``name=seccomp,profile=builtin``, ``name=userns``) as
    ``{"seccomp": {"profile": "builtin"}, "userns": {}}``."""
    out: dict[str, dict[str, str]] = {}
    for opt in opts:
        props = dict(p.partition("=")[::2] for p in str(opt).split(","))
        name = props.pop("name", "")
        if name:
            out[name] = props
    return out


def _published(host_config: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for spec, bindings in (host_config.get("PortBindings") or {}).items():
        port, _, proto = str(spec).partition("/")
        for b in bindings or [{}]:
            host_port = str((b or {}).get("HostPort") or "")
            low = host_port.split("-", 1)[0]
            out.append(
                {
                    "containerPort": int(port) if port.isdigit() else 0,
                    "protocol": proto or "tcp",
                    "hostIp": str((b or {}).get("HostIp") or ""),
                    # An empty HostPort is an ephemeral port chosen by the daemon (never privileged).
                    "hostPort": int(low) if low.isdigit() else 0,
                }
            )
    return out


def container_resource(inspect: Mapping[str, Any], execs: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A ``DockerContainer`` resource from ``docker inspect`` of a container."""
    host_config = inspect.get("HostConfig") or {}
    doc = dict(inspect)
    doc.update(
        {
            "apiVersion": "garrison.dev/v1",
            "kind": "DockerContainer",
            "metadata": {
                "name": str(inspect.get("Name", "")).lstrip("/") or str(inspect.get("Id", ""))[:12],
                "uid": str(inspect.get("Id", "")),
            },
            "securityOpt": _security_opt(host_config.get("SecurityOpt") or []),
            "publishedPorts": _published(host_config),
            "execs": list(execs),
            "running": bool((inspect.get("State") or {}).get("Running")),
        }
    )
    return doc


def _env_vars(env: Any) -> list[dict[str, str]]:
    """``Config.Env`` (``NAME=value`` strings) as ``{name, value}`` records, so that a check can test
    the name and report it without echoing the value (a secret)."""
    out = []
    for item in env if isinstance(env, list) else []:
        name, _, value = str(item).partition("=")
        out.append({"name": name, "value": value})
    return out


def _build_args(created_by: str) -> list[dict[str, str]]:
    """The build arguments a ``RUN`` step saw, from history's ``|2 A=b C=d /bin/sh -c …`` prefix
    (``RUN |2 …`` from BuildKit)."""
    created_by = created_by.removeprefix("RUN ")
    if not created_by.startswith("|"):
        return []
    head, _, rest = created_by[1:].partition(" ")
    if not head.isdigit():
        return []
    out = []
    for word in rest.split(" ")[: int(head)]:
        name, eq, value = word.partition("=")
        if eq:
            out.append({"name": name, "value": value})
    return out


def history_records(history: Any) -> list[dict[str, Any]]:
    """``GET /images/{id}/history`` (newest first) as the image's build steps, oldest first, each
    with its ``index`` (0 = the base image's first step), ``CreatedBy`` and the build arguments it saw."""
    steps = [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []
    out = []
    for i, h in enumerate(reversed(steps)):
        created_by = str(h.get("CreatedBy") or "")
        out.append(
            {
                "index": i,
                "CreatedBy": created_by,
                "Created": h.get("Created"),
                "Size": h.get("Size"),
                "buildArgs": _build_args(created_by),
            }
        )
    return out


def image_resource(inspect: Mapping[str, Any], history: Any = None) -> dict[str, Any]:
    """A ``DockerImage`` resource from ``docker image inspect`` (and ``docker history``: ``History``,
    oldest step first; ``EnvVars``: ``Config.Env`` split into names and values)."""
    tags = inspect.get("RepoTags") or []
    doc = dict(inspect)
    config = inspect.get("Config")
    doc["EnvVars"] = _env_vars(config.get("Env") if isinstance(config, dict) else None)
    doc["History"] = history_records(history)
    doc.update(
        {
            "apiVersion": "garrison.dev/v1",
            "kind": "DockerImage",
            "metadata": {
                "name": str(tags[0]) if tags else str(inspect.get("Id", "")),
                "uid": str(inspect.get("Id", "")),
            },
        }
    )
    return doc


def _get(client: httpx.Client, path: str, what: str) -> Any:
    try:
        resp = client.get(f"/{_API}{path}")
    except httpx.HTTPError as exc:
        raise SourceError(f"{what}: talking to the Docker daemon: {exc}") from None
    if resp.status_code != 200:
        raise SourceError(f"{what}: GET {path} answered {resp.status_code}: {resp.text[:200]}")
    try:
        return resp.json()
    except ValueError:
        raise SourceError(f"{what}: GET {path} answered non-JSON") from None


def read_host(settings: Settings, host: str = "", config_path: str = "") -> DockerHost:
    """Read the Docker host at ``host`` (a unix socket path or ``unix://`` URL; default
    ``settings.docker_host``). A container or image that vanishes while being read is a warning."""
    sock = socket_path(host or settings.docker_host)
    what = f"docker:{host}" if host else "docker"
    if not os.path.exists(sock):
        raise SourceError(f"{what}: no Docker daemon socket at {sock} (give docker:SOCKET or set --docker-host)")
    out = DockerHost()
    with _client(sock, settings) as client:
        info = _get(client, "/info", what)
        version = _get(client, "/version", what)
        flags, config_file, config, warnings = daemon_configuration(sock, config_path)
        out.warnings.extend(warnings)
        out.name = str(info.get("Name") or sock)
        merged = effective_settings(flags, config)
        files = {
            role: next((_stat(p) for p in paths if os.path.exists(p)), _stat(paths[0]))
            for role, paths in HOST_FILES.items()
        }
        files["daemon.json"] = _stat(config_file)
        files["docker-socket"] = _stat(sock)
        for key in ("tlscacert", "tlscert", "tlskey"):
            if merged.get(key):
                files[key] = _stat(str(merged[key]))
        certs = Path("/etc/docker/certs.d")
        registry_certs = [_stat(str(p)) for p in sorted(certs.rglob("*")) if p.is_file()] if certs.is_dir() else []
        out.resources.append(
            {
                "apiVersion": "garrison.dev/v1",
                "kind": "DockerDaemon",
                "metadata": {"name": str(info.get("Name") or sock)},
                "socket": sock,
                "info": info,
                "version": version,
                "configFile": config_file,
                "config": config,
                "commandLine": flags,
                "settings": merged,
                "securityOptions": _daemon_security_options(info.get("SecurityOptions") or []),
                "files": files,
                "registryCertificates": registry_certs,
            }
        )
        for summary in _get(client, "/containers/json?all=1", what):
            cid = str(summary.get("Id", ""))
            try:
                inspect = _get(client, f"/containers/{quote(cid)}/json", what)
                execs = [_get(client, f"/exec/{quote(str(e))}/json", what) for e in inspect.get("ExecIDs") or []]
            except SourceError as exc:
                out.warnings.append(f"container {cid[:12]}: {exc}")
                continue
            out.resources.append(container_resource(inspect, execs))
        for summary in _get(client, "/images/json", what):
            iid = str(summary.get("Id", ""))
            try:
                inspect = _get(client, f"/images/{quote(iid, safe='')}/json", what)
            except SourceError as exc:
                out.warnings.append(f"image {iid[:19]}: {exc}")
                continue
            try:
                history = _get(client, f"/images/{quote(iid, safe='')}/history", what)
            except SourceError as exc:  # the image is still assessed, without its build steps
                out.warnings.append(f"image {iid[:19]}: history: {exc}")
                history = []
            out.resources.append(image_resource(inspect, history))
    return out


def load(rest: str, options: Mapping[str, Any]) -> Loaded:
    """The posture input's entry point for ``docker[:HOST]`` (``inputs.LIVE_SOURCES``). Options:
    ``settings`` (a :class:`Settings`; its ``docker_host`` is the default socket) and ``daemon_config``
    (the daemon.json path, default: the one the daemon was started with)."""
    from garrison.posture.inputs import Loaded

    settings = options.get("settings") or Settings()
    host = read_host(settings, rest, str(options.get("daemon_config") or ""))
    resources = host.as_resources(f"docker:{rest}" if rest else "docker")
    return Loaded(resources=resources, warnings=host.warnings, documents=len(resources))
