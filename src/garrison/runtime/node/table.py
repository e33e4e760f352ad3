"""The process table: pid → :class:`ProcInfo`, kept from fork, exec and exit records, and the users.

What the connector misses (processes started before the sensor, parents of processes seen first) is read
from ``/proc`` when asked for. Exited processes stay :data:`EXITED_TTL_NS` for the lineage of their
children and for file events that arrive after them.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass, field, replace
from typing import Any

from garrison.runtime.node.containers import ContainerInfo
from garrison.runtime.node.event import UserInfo
from garrison.runtime.node.procfs import ProcInfo, all_pids, parse_raw, snapshot

#: Exited processes are kept this long for the lineage of their children and late file events.
EXITED_TTL_NS = 30_000_000_000


@dataclass
class ProcessTable:
    """pid → :class:`ProcInfo`, fed by fork/exec/exit records and, for what it missed, by ``/proc``."""

    procs: dict[int, ProcInfo] = field(default_factory=dict)
    exited: dict[int, int] = field(default_factory=dict)

    def load_all(self) -> None:
        for pid in all_pids():
            if pid not in self.procs:
                info = snapshot(pid)
                if info is not None:
                    self.procs[pid] = info

    def get(self, pid: int) -> ProcInfo | None:
        info = self.procs.get(pid)
        if info is None and pid > 0:
            info = snapshot(pid)
            if info is not None:
                self.procs[pid] = info
        return info

    def current(self, pid: int) -> ProcInfo | None:
        """:meth:`get`, re-read from ``/proc`` when the process has exec'd something else since its entry
        was made: the sock_diag poll can see a process (a shell whose stdio is a socket) before its exec
        record has reached the table, and a connection is reported only once."""
        info = self.get(pid)
        if info is None or info.partial:
            return info
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            return info
        if exe != info.exepath:
            fresh = snapshot(pid)
            if fresh is not None:
                self.procs[pid] = fresh
                return fresh
        return info

    def fork(self, pid: int, ppid: int) -> None:
        parent = self.get(ppid)
        if parent is not None:
            self.procs[pid] = ProcInfo(
                pid=pid,
                ppid=ppid,
                name=parent.name,
                exepath=parent.exepath,
                args=parent.args,
                cwd=parent.cwd,
                uid=parent.uid,
                gid=parent.gid,
                euid=parent.euid,
                loginuid=parent.loginuid,
                cgroup=parent.cgroup,
                tty=parent.tty,
                sid=parent.sid,
                pgid=parent.pgid,
            )
        else:
            self.procs[pid] = ProcInfo(pid=pid, ppid=ppid, name="", partial=True)
        self.exited.pop(pid, None)

    def exec(self, pid: int, raw: Any) -> ProcInfo:
        before = self.procs.get(pid)
        info = parse_raw(pid, raw, ppid_hint=before.ppid if before else 0)
        if info.partial and before is not None:
            # /proc was gone: keep what the fork and the parent chain tell (cgroup, cwd, user, tty).
            info = ProcInfo(
                pid=pid,
                ppid=info.ppid or before.ppid,
                name=info.name,
                exepath=info.exepath,
                args=info.args,
                cwd=info.cwd or before.cwd,
                uid=info.uid if info.uid >= 0 else before.uid,
                gid=info.gid if info.gid >= 0 else before.gid,
                euid=info.euid if info.euid >= 0 else before.euid,
                loginuid=info.loginuid if info.loginuid >= 0 else before.loginuid,
                cgroup=info.cgroup or before.cgroup,
                tty=info.tty or before.tty,
                sid=info.sid or before.sid,
                pgid=info.pgid or before.pgid,
                vpid=info.vpid,
                partial=True,
            )
        self.procs[pid] = info
        return info

    def exit(self, pid: int, now_ns: int) -> None:
        if pid in self.procs:
            self.exited[pid] = now_ns

    def setuid(self, pid: int, real: int, effective: int) -> None:
        info = self.procs.get(pid)
        if info is not None:
            self.procs[pid] = replace(info, uid=real, euid=effective)

    def expire(self, now_ns: int) -> None:
        old = [pid for pid, t in self.exited.items() if now_ns - t > EXITED_TTL_NS]
        for pid in old:
            self.exited.pop(pid, None)
            self.procs.pop(pid, None)

    def lineage(self, proc: ProcInfo, depth: int = 16) -> tuple[ProcInfo, ...]:
        out: list[ProcInfo] = []
        ppid = proc.ppid
        seen = {proc.pid}
        while ppid > 0 and ppid not in seen and len(out) < depth:
            parent = self.get(ppid)
            if parent is None:
                break
            out.append(parent)
            seen.add(ppid)
            ppid = parent.ppid
        return tuple(out)


@dataclass
class Users:
    """uid → user, from the host's passwd, or for a container from the passwd in its root."""

    cache: dict[tuple[str, int], UserInfo] = field(default_factory=dict)
    files: dict[str, dict[int, UserInfo]] = field(default_factory=dict)

    def get(self, uid: int, container: ContainerInfo, pid: int) -> UserInfo:
        if uid < 0:
            return UserInfo()
        key = (container.full_id, uid)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        if container.full_id == "host":
            try:
                pw = pwd.getpwuid(uid)
                user = UserInfo(pw.pw_name, pw.pw_dir, pw.pw_shell)
            except KeyError:
                user = UserInfo(str(uid))
        else:
            table = self.files.get(container.full_id)
            if table is None:
                table = _read_passwd(f"/proc/{pid}/root/etc/passwd")
                self.files[container.full_id] = table
            user = table.get(uid, UserInfo(str(uid)))
        self.cache[key] = user
        return user


def _read_passwd(path: str) -> dict[int, UserInfo]:
    out: dict[int, UserInfo] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 7 and parts[2].isdigit():
                    out.setdefault(int(parts[2]), UserInfo(parts[0], parts[5], parts[6]))
    except OSError:
        pass
    return out
