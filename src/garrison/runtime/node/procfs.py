"""What ``/proc`` tells about a process, read in one go at exec time and parsed later.

:func:`read_raw` is on the hot path (it runs for every exec, before a short-lived process exits): it only
reads bytes. :func:`parse_raw` turns them into a :class:`ProcInfo` off the hot path. A process that has
already exited leaves an empty command line (its memory is gone) and, once reaped, nothing at all; the
sensor then keeps what the connector, the parent chain and the cgroup tell (``ProcInfo.partial``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

_O = os.O_RDONLY | os.O_CLOEXEC

#: ``(exe, cmdline, status, cwd, cgroup, stat, loginuid)`` raw bytes/strings; empty when unreadable.
RawProc = tuple[str, bytes, bytes, str, bytes, bytes, bytes]


def _read(path: str, size: int = 65536) -> bytes:
    try:
        fd = os.open(path, _O)
    except OSError:
        return b""
    try:
        return os.read(fd, size)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def read_first(pid: int, proc: str = "/proc") -> tuple[bytes, str, bytes, bytes]:
    """What vanishes first when a process exits (cmdline with its memory, then exe and status) and what
    says which container it is in (cgroup): read in the first pass over a batch of execs."""
    base = f"{proc}/{pid}/"
    return _read(base + "cmdline"), _link(base + "exe"), _read(base + "status", 1024), _read(base + "cgroup", 4096)


def read_rest(pid: int, proc: str = "/proc") -> tuple[str, bytes, bytes]:
    """cwd, stat and loginuid: readable until the process is reaped, and mostly the parent's."""
    base = f"{proc}/{pid}/"
    return _link(base + "cwd"), _read(base + "stat", 1024), _read(base + "loginuid", 32)


def read_raw(pid: int, proc: str = "/proc") -> RawProc:
    """Read exe, cmdline, status (its head: Name…Gid), cwd, cgroup, stat and loginuid of ``pid`` now."""
    cmdline, exe, status, cgroup = read_first(pid, proc)
    cwd, stat, loginuid = read_rest(pid, proc)
    return (exe, cmdline, status, cwd, cgroup, stat, loginuid)


@dataclass(frozen=True, slots=True)
class ProcInfo:
    """One process as the sensor knows it. ``partial``: /proc was gone before it could be read in full."""

    pid: int
    ppid: int
    name: str
    exepath: str = ""
    args: tuple[str, ...] = ()
    cwd: str = ""
    uid: int = -1
    gid: int = -1
    euid: int = -1
    loginuid: int = -1
    cgroup: str = ""
    tty: int = 0
    sid: int = 0
    pgid: int = 0
    start_ns: int = 0
    vpid: int = 0
    partial: bool = False

    @property
    def exe(self) -> str:
        """Falco's ``proc.exe``: the first command-line argument (the path the process was started as)."""
        return self.args[0] if self.args else self.exepath or self.name

    @property
    def cmdline(self) -> str:
        """Falco's ``proc.cmdline``: the name, then the arguments."""
        return " ".join((self.name, *self.args[1:]))


def _split_args(raw: bytes) -> tuple[str, ...]:
    if not raw:
        return ()
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    return tuple(a.decode("utf-8", "replace") for a in raw.split(b"\0"))


def _cgroup_path(raw: bytes) -> str:
    """The unified (v2, ``0::``) path, else the first v1 path with a container-looking name."""
    best = ""
    for line in raw.decode("utf-8", "replace").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            return parts[2]
        if not best or "docker" in parts[2] or "kubepods" in parts[2]:
            best = parts[2]
    return best


def parse_raw(pid: int, raw: RawProc, ppid_hint: int = 0, name_hint: str = "") -> ProcInfo:
    exe, cmdline, status, cwd, cgroup, stat, loginuid_raw = raw
    try:
        loginuid = int(loginuid_raw or b"-1")
    except ValueError:
        loginuid = -1
    if loginuid == 4294967295:  # (uid_t)-1: never logged in
        loginuid = -1
    name = name_hint
    ppid = ppid_hint
    uid = gid = euid = -1
    vpid = pid
    for line in status.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(":\t")
        if key == "Name":
            name = value.replace("\\n", "\n").replace("\\\\", "\\")
        elif key == "PPid":
            ppid = int(value)
        elif key == "Uid":
            ids = value.split()
            uid, euid = int(ids[0]), int(ids[1])
        elif key == "Gid":
            gid = int(value.split()[0])
        elif key == "NSpid":
            vpid = int(value.split()[-1])
    tty = sid = pgid = start = 0
    if stat:
        # pid (comm) state ppid pgrp session tty_nr …  the comm may hold spaces and parentheses.
        tail = stat[stat.rfind(b")") + 2 :].split()
        if len(tail) > 19:
            pgid, sid, tty = int(tail[2]), int(tail[3]), int(tail[4])
            start = int(tail[19])
    args = _split_args(cmdline)
    if exe.endswith(" (deleted)"):
        exe = exe[: -len(" (deleted)")]
    if exe and (not name or (len(name) == 15 and os.path.basename(exe).startswith(name))):
        name = os.path.basename(exe)
    return ProcInfo(
        pid=pid,
        ppid=ppid,
        name=name,
        exepath=exe,
        args=args,
        cwd=cwd,
        uid=uid,
        gid=gid,
        euid=euid,
        loginuid=loginuid,
        cgroup=_cgroup_path(cgroup),
        tty=tty,
        sid=sid,
        pgid=pgid,
        start_ns=start,
        vpid=vpid,
        partial=not args or not exe,
    )


def snapshot(pid: int, proc: str = "/proc") -> ProcInfo | None:
    """Read and parse now; None when the process is gone."""
    raw = read_raw(pid, proc)
    if not raw[2]:
        return None
    return parse_raw(pid, raw)


def all_pids(proc: str = "/proc") -> list[int]:
    return [int(d) for d in os.listdir(proc) if d.isdigit()]
