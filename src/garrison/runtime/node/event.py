"""A node event with Falco's field names: what the rule engine evaluates (``garrison.runtime.events.Event``).

One class for every node event the sensor and the importers produce: a process (exec, exit), a file
(open for read or write), a connection (connect, accept) or a standard stream redirected to a socket
(``dup2``). Each field is computed on first use and remembered.

Falco's meaning is kept: ``proc.name`` is the command name, ``proc.exe`` argv[0], ``proc.exepath`` the
binary, ``proc.cmdline`` name plus arguments, ``proc.aname[1]`` the parent's name (``[0]`` the process
itself; no index: every ancestor), ``container.id`` twelve hex characters or ``host``, ``fd.sip`` the
server's address (for a connect the remote end, for an accept the local one).
"""

from __future__ import annotations

import functools
import os
import pwd
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from garrison.runtime.events import SYSCALL, FieldValue
from garrison.runtime.node.containers import HOST, ContainerInfo
from garrison.runtime.node.procfs import ProcInfo


@dataclass(frozen=True, slots=True)
class FdInfo:
    """The file or socket an event is about."""

    num: int = -1
    #: ``file``, ``directory``, ``ipv4``, ``ipv6``.
    type: str = "file"
    name: str = ""
    l4proto: str = ""
    lip: str = ""
    lport: int = 0
    rip: str = ""
    rport: int = 0
    #: True when the local end is the server (an accepted connection).
    local_is_server: bool = False

    @property
    def typechar(self) -> str:
        return {"file": "f", "directory": "d", "ipv4": "4", "ipv6": "6", "unix": "u"}.get(self.type, "?")

    @property
    def is_socket(self) -> bool:
        return self.type in ("ipv4", "ipv6")


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str = ""
    homedir: str = ""
    shell: str = ""


#: Looks up the ancestors of a process (parent first) and the session leader.
Lineage = Callable[[ProcInfo], tuple[ProcInfo, ...]]


def _no_lineage(_p: ProcInfo) -> tuple[ProcInfo, ...]:
    return ()


@dataclass(slots=True)
class NodeEvent:
    """One node event. ``kind`` is Falco's ``evt.type`` (``execve``, ``procexit``, ``openat``,
    ``connect``, ``accept``, ``dup2``, ``clone``)."""

    kind: str
    time_ns: int
    proc: ProcInfo
    container: ContainerInfo = HOST
    fd: FdInfo | None = None
    args: dict[str, str] = field(default_factory=dict)
    user: UserInfo = field(default_factory=UserInfo)
    hostname: str = ""
    lineage: Lineage = _no_lineage
    res: int = 0
    num: int = 0
    #: What produced it: ``sensor``, ``falco``, ``tetragon``.
    origin: str = "sensor"
    #: Fields given outright (importers): Falco name → value; they win over computed ones.
    given: dict[str, FieldValue] = field(default_factory=dict)
    _cache: dict[tuple[str, str | None], FieldValue] = field(default_factory=dict)
    _chain: tuple[ProcInfo, ...] | None = None

    @property
    def source(self) -> str:
        return SYSCALL

    @property
    def type(self) -> str:
        return self.kind

    def ancestors(self) -> tuple[ProcInfo, ...]:
        if self._chain is None:
            self._chain = self.lineage(self.proc)
        return self._chain

    def field(self, name: str, arg: str | None = None) -> FieldValue:
        key = (name, arg)
        try:
            return self._cache[key]
        except KeyError:
            pass
        if arg is None and name in self.given:
            value = self.given[name]
        else:
            getter = _GETTERS.get(name)
            value = getter(self, arg) if getter is not None else None
            if value == () or (value == "" and name not in _EMPTY_OK):
                value = None
        self._cache[key] = value
        return value

    def fields(self) -> dict[str, FieldValue]:
        """Every field this event carries (no arguments), for JSON output and tests."""
        out: dict[str, FieldValue] = {}
        for name in _GETTERS:
            v = self.field(name)
            if v is not None:
                out[name] = v
        return out


#: Fields whose empty string is a value (an empty argument list), not "absent".
_EMPTY_OK = frozenset({"proc.args"})


@functools.lru_cache(maxsize=256)
def _login_name(uid: int) -> str | None:
    """The login user's name (the audit login uid is the host's, so the host's passwd names it)."""
    if uid < 0:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _time_text(ns: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}"


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"


def _index(arg: str | None) -> int | None:
    if arg is None:
        return None
    try:
        return int(arg)
    except ValueError:
        return -1


def _ancestor(e: NodeEvent, arg: str | None, pick: Callable[[ProcInfo], Any]) -> FieldValue:
    n = _index(arg)
    if n is None:
        return tuple(pick(p) for p in e.ancestors())
    if n == 0:
        return pick(e.proc)  # type: ignore[no-any-return]
    chain = e.ancestors()
    return pick(chain[n - 1]) if 0 < n <= len(chain) else None  # type: ignore[no-any-return]


def _parent(e: NodeEvent) -> ProcInfo | None:
    chain = e.ancestors()
    return chain[0] if chain else None


def _pattr(e: NodeEvent, pick: Callable[[ProcInfo], Any]) -> FieldValue:
    p = _parent(e)
    return pick(p) if p is not None else None  # type: ignore[no-any-return]


def _session(e: NodeEvent) -> FieldValue:
    sid = e.proc.sid
    if not sid:
        return None
    if sid == e.proc.pid:
        return e.proc.name
    return next((p.name for p in e.ancestors() if p.pid == sid), None)


def _fd(pick: Callable[[FdInfo], Any]) -> Callable[[NodeEvent, str | None], FieldValue]:
    def get(e: NodeEvent, _arg: str | None) -> FieldValue:
        return pick(e.fd) if e.fd is not None else None  # type: ignore[no-any-return]

    return get


def _sock(pick: Callable[[FdInfo], Any]) -> Callable[[NodeEvent, str | None], FieldValue]:
    def get(e: NodeEvent, _arg: str | None) -> FieldValue:
        return pick(e.fd) if e.fd is not None and e.fd.is_socket else None  # type: ignore[no-any-return]

    return get


def _server_ip(f: FdInfo) -> str:
    return f.lip if f.local_is_server else f.rip


def _client_ip(f: FdInfo) -> str:
    return f.rip if f.local_is_server else f.lip


def _server_port(f: FdInfo) -> int:
    return f.lport if f.local_is_server else f.rport


def _client_port(f: FdInfo) -> int:
    return f.rport if f.local_is_server else f.lport


def _dirname(f: FdInfo) -> str:
    return os.path.dirname(f.name) if f.type in ("file", "directory") else ""


def _basename(f: FdInfo) -> str:
    return os.path.basename(f.name) if f.type in ("file", "directory") else ""


def _arg(e: NodeEvent, arg: str | None) -> FieldValue:
    return e.args.get(arg) if arg is not None else None


def _open_flag(flag: str) -> Callable[[NodeEvent, str | None], FieldValue]:
    def get(e: NodeEvent, _arg: str | None) -> FieldValue:
        if e.kind not in ("open", "openat", "openat2"):
            return None
        return flag in e.args.get("flags", "")

    return get


def _cont(pick: Callable[[ContainerInfo], Any]) -> Callable[[NodeEvent, str | None], FieldValue]:
    def get(e: NodeEvent, _arg: str | None) -> FieldValue:
        return pick(e.container)  # type: ignore[no-any-return]

    return get


_Getter = Callable[[NodeEvent, str | None], FieldValue]

_GETTERS: dict[str, _Getter] = {
    "evt.type": lambda e, a: e.kind,
    "evt.dir": lambda e, a: "<",
    "evt.time": lambda e, a: _time_text(e.time_ns),
    "evt.time.iso8601": lambda e, a: _iso(e.time_ns),
    "evt.rawtime": lambda e, a: e.time_ns,
    "evt.num": lambda e, a: e.num,
    "evt.hostname": lambda e, a: e.hostname,
    "evt.res": lambda e, a: "SUCCESS" if e.res >= 0 else str(e.res),
    "evt.rawres": lambda e, a: e.res,
    "evt.failed": lambda e, a: e.res < 0,
    "evt.args": lambda e, a: " ".join(f"{k}={v}" for k, v in e.args.items()),
    "evt.arg": _arg,
    "evt.is_open_read": _open_flag("O_RDONLY"),
    "evt.is_open_write": _open_flag("O_WRONLY"),
    "evt.is_open_exec": lambda e, a: False if e.kind in ("open", "openat", "openat2") else None,
    "proc.pid": lambda e, a: e.proc.pid,
    "proc.ppid": lambda e, a: e.proc.ppid,
    "proc.vpid": lambda e, a: e.proc.vpid,
    "proc.name": lambda e, a: e.proc.name,
    "proc.exe": lambda e, a: e.proc.exe,
    "proc.exepath": lambda e, a: e.proc.exepath,
    "proc.args": lambda e, a: " ".join(e.proc.args[1:]),
    "proc.cmdline": lambda e, a: e.proc.cmdline,
    "proc.cmdnargs": lambda e, a: max(len(e.proc.args) - 1, 0),
    "proc.cwd": lambda e, a: e.proc.cwd and (e.proc.cwd.rstrip("/") + "/"),
    "proc.tty": lambda e, a: e.proc.tty,
    "proc.sid": lambda e, a: e.proc.sid,
    "proc.vpgid": lambda e, a: e.proc.pgid,
    "proc.is_vpgid_leader": lambda e, a: e.proc.pgid == e.proc.pid,
    "proc.sname": lambda e, a: _session(e),
    "proc.pname": lambda e, a: _pattr(e, lambda p: p.name),
    "proc.pexe": lambda e, a: _pattr(e, lambda p: p.exe),
    "proc.pexepath": lambda e, a: _pattr(e, lambda p: p.exepath),
    "proc.pcmdline": lambda e, a: _pattr(e, lambda p: p.cmdline),
    "proc.aname": lambda e, a: _ancestor(e, a, lambda p: p.name),
    "proc.aexe": lambda e, a: _ancestor(e, a, lambda p: p.exe),
    "proc.aexepath": lambda e, a: _ancestor(e, a, lambda p: p.exepath),
    "proc.apid": lambda e, a: _ancestor(e, a, lambda p: p.pid),
    "proc.is_container_healthcheck": lambda e, a: False,
    "proc.is_container_liveness_probe": lambda e, a: False,
    "proc.is_container_readiness_probe": lambda e, a: False,
    "thread.tid": lambda e, a: e.proc.pid,
    "user.uid": lambda e, a: e.proc.uid if e.proc.uid >= 0 else None,
    "user.name": lambda e, a: e.user.name,
    "user.loginuid": lambda e, a: e.proc.loginuid,
    "user.loginname": lambda e, a: _login_name(e.proc.loginuid),
    "user.homedir": lambda e, a: e.user.homedir,
    "user.shell": lambda e, a: e.user.shell,
    "group.gid": lambda e, a: e.proc.gid if e.proc.gid >= 0 else None,
    "container.id": _cont(lambda c: c.id),
    "container.full_id": _cont(lambda c: c.full_id),
    "container.name": _cont(lambda c: c.name or (c.id if c.full_id == "host" else "")),
    "container.image": _cont(lambda c: c.image),
    "container.image.repository": _cont(lambda c: c.image_repository),
    "container.image.tag": _cont(lambda c: c.image_tag),
    "container.image.digest": _cont(lambda c: c.image_digest),
    "container.privileged": _cont(lambda c: c.privileged),
    "container.type": _cont(lambda c: c.type),
    "k8s.ns.name": _cont(lambda c: c.label("io.kubernetes.pod.namespace")),
    "k8s.pod.name": _cont(lambda c: c.label("io.kubernetes.pod.name")),
    "fd.num": _fd(lambda f: f.num if f.num >= 0 else None),
    "fd.type": _fd(lambda f: f.type),
    "fd.typechar": _fd(lambda f: f.typechar),
    "fd.name": _fd(lambda f: f.name),
    "fd.directory": _fd(_dirname),
    "fd.filename": _fd(_basename),
    "fd.l4proto": _sock(lambda f: f.l4proto),
    "fd.sockfamily": _sock(lambda f: "ip"),
    "fd.cip": _sock(_client_ip),
    "fd.sip": _sock(_server_ip),
    "fd.lip": _sock(lambda f: f.lip),
    "fd.rip": _sock(lambda f: f.rip),
    "fd.cport": _sock(_client_port),
    "fd.sport": _sock(_server_port),
    "fd.lport": _sock(lambda f: f.lport),
    "fd.rport": _sock(lambda f: f.rport),
    "fd.connected": _sock(lambda f: True),
}
