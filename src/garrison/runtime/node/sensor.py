"""The node sensor: kernel events in, :class:`~garrison.runtime.node.event.NodeEvent` out.

::

    capture processes, one per CPU (connector + /proc at once;  ──frames──► Sensor.events()
      the first also fanotify, fork/exit, marks asked on stdin)            ├─ process table (table.py)
    sock_diag poll (every poll_s), one socket per network namespace ───────┤
                                                                           ├─ containers (cgroup → id → Docker API;
                                                                           │   their files marked, their netns polled)
                                                                           └─► NodeEvent (execve, openat, connect,
                                                                                          accept, dup2)

The sensor never evaluates rules: :class:`garrison.runtime.node.run.SensorRun` wires it to the engine.
Its counters (:class:`SensorStats`) say how many events were seen and lost (connector sequence gaps and
overruns, fanotify queue overflows), and how many execs kept only a partial picture of the process.
"""

from __future__ import annotations

import glob
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from garrison.errors import GarrisonError
from garrison.runtime.node import fanotify
from garrison.runtime.node.containers import HOST, ContainerResolver
from garrison.runtime.node.event import FdInfo, NodeEvent
from garrison.runtime.node.procfs import ProcInfo
from garrison.runtime.node.sockdiag import Conn, ConnTracker, socket_owners
from garrison.runtime.node.table import ProcessTable, Users


class SensorError(GarrisonError):
    """The sensor cannot run: not root, no process-events connector, the capture process failed."""


#: What attackers touch, marked with fanotify: (glob, mode). ``w``: writes (directories: their direct
#: children); ``r``: reads; ``rw``: both. Globs that match nothing are skipped.
DEFAULT_WATCHES: tuple[tuple[str, str], ...] = (
    ("/etc", "w"),  # passwd, shadow, group, sudoers, ld.so.preload, crontab rewritten in place or by rename
    ("/etc/shadow", "r"),
    ("/etc/gshadow", "r"),
    ("/etc/sudoers", "r"),
    ("/etc/sudoers.d", "rw"),
    ("/root", "w"),  # shell history and profile files
    ("/home/*", "w"),
    ("/root/.ssh", "rw"),
    ("/home/*/.ssh", "rw"),
    ("/var/log", "w"),
    ("/var/log/*/", "w"),
    ("/etc/kubernetes", "rw"),
    ("/var/lib/kubelet", "rw"),
    ("/etc/systemd/system", "w"),
    ("/etc/systemd/system/timers.target.wants", "w"),
    ("/lib/systemd/system", "w"),
    ("/etc/cron.d", "w"),
    ("/var/spool/cron/crontabs", "w"),
)


@dataclass
class SensorConfig:
    """How the sensor runs. ``watches``: fanotify marks as (glob, mode); ``extra_watches`` are added to
    them (a test's temporary home). ``poll_s``: the sock_diag period (0: no connection events)."""

    watches: Sequence[tuple[str, str]] = DEFAULT_WATCHES
    extra_watches: Sequence[tuple[str, str]] = ()
    poll_s: float = 1.0
    docker_host: str = "unix:///var/run/docker.sock"
    realtime: bool = True
    files: bool = True
    rcvbuf: int = 16 << 20
    #: One capture per CPU (see capture.py): what makes short-lived processes keep their command line.
    per_cpu: bool = True
    max_helpers: int = 7


@dataclass
class SensorStats:
    """What the sensor saw. ``lost`` = connector sequence gaps (exact); ``overruns`` = ENOBUFS reads;
    ``file_lost`` = fanotify queue overflows; ``partial`` = execs whose /proc was gone in part."""

    kernel_events: int = 0
    execs: int = 0
    partial: int = 0
    files: int = 0
    connections: int = 0
    unattributed: int = 0
    lost: int = 0
    overruns: int = 0
    file_lost: int = 0
    #: Execs whose command line came from a per-CPU helper capture (the main one read too late).
    recovered: int = 0
    marked: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.kernel_events} kernel events, {self.execs} execs ({self.partial} partial, "
            f"{self.recovered} read by a per-CPU capture), "
            f"{self.files} file events, "
            f"{self.connections} connections; lost {self.lost} (+{self.overruns} overruns, "
            f"{self.file_lost} file queue overflows)"
        )


#: What is marked in each container, through /proc/PID/root: its accounts, history, keys and logs.
CONTAINER_WATCHES: tuple[tuple[str, str], ...] = (
    ("/etc", "w"),
    ("/etc/shadow", "r"),
    ("/root", "w"),
    ("/root/.ssh", "rw"),
    ("/home/*", "w"),
    ("/home/*/.ssh", "rw"),
    ("/var/log", "w"),
)


def expand_watches(watches: Sequence[tuple[str, str]], *, existing: bool = False) -> list[tuple[str, str]]:
    """Globs → paths (only those that exist with ``existing``; the capture skips and reports the others)."""
    out: list[tuple[str, str]] = []
    for pattern, mode in watches:
        if mode not in fanotify.MODES:
            raise SensorError(f"watch {pattern}: mode must be r, w or rw, not {mode!r}")
        if any(c in pattern for c in "*?["):
            matches = sorted(glob.glob(pattern))
        else:
            matches = [pattern] if not existing or os.path.exists(pattern) else []
        out.extend((m.rstrip("/") or "/", mode) for m in matches)
    return out


#: Commands that tell an intruder where they are; ``garrison.recon_burst`` counts the distinct ones one
#: parent started within :data:`RECON_WINDOW_NS`.
RECON_COMMANDS = frozenset(
    {
        "whoami",
        "id",
        "uname",
        "hostname",
        "hostnamectl",
        "ifconfig",
        "ip",
        "netstat",
        "ss",
        "ps",
        "w",
        "who",
        "last",
        "lastlog",
        "lsb_release",
        "env",
        "printenv",
        "groups",
        "lscpu",
        "lsblk",
        "df",
        "mount",
        "route",
        "arp",
        "getent",
        "crontab",
        "nproc",
        "free",
        "uptime",
        "lsmod",
        "dmidecode",
        "systemd-detect-virt",
    }
)
RECON_WINDOW_NS = 60_000_000_000

#: How long a late exec record waits for a per-CPU helper's read of the same exec.
HELPER_WAIT_S = 0.05

_FRAME = struct.Struct("=I")


def require_root() -> None:
    if os.geteuid() != 0:
        raise SensorError(
            "the node sensor needs root (the process-events connector, fanotify and /proc/PID/fd of every "
            "process); run it with sudo or as a privileged DaemonSet"
        )


class Sensor:
    """Start with :meth:`start` (or use as a context manager), iterate :meth:`events`, end with :meth:`stop`."""

    def __init__(self, config: SensorConfig | None = None) -> None:
        self.config = config or SensorConfig()
        self.stats = SensorStats()
        self.table = ProcessTable()
        self.containers = ContainerResolver(self.config.docker_host)
        self.users = Users()
        self.hostname = socket.gethostname()
        self._proc: subprocess.Popen[bytes] | None = None
        self._buf = bytearray()
        #: netns inode → its connection tracker; the sensor's own namespace first.
        self._own_netns = _netns_inode("/proc/self/ns/net")
        self._netns: dict[int, ConnTracker] = {self._own_netns: ConnTracker()}
        self._owners: dict[int, list[tuple[int, int]]] = {}
        self._own = {os.getpid()}
        self._clock = time.time_ns() - time.monotonic_ns()
        self._stopping = False
        self._pending: list[Any] = []
        self._recon_seen: dict[int, dict[str, int]] = {}
        self._helpers: list[subprocess.Popen[bytes]] = []
        self._containers_seen: set[str] = set()
        self._container_roots: list[str] = []
        self._helper_execs: dict[tuple[int, int], Any] = {}
        self._num = 0

    def __enter__(self) -> Sensor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        require_root()
        cfg: dict[str, Any] = {"realtime": self.config.realtime, "rcvbuf": self.config.rcvbuf}
        if self.config.files:
            cfg["files"] = expand_watches([*self.config.watches, *self.config.extra_watches])
        cpus = sorted(os.sched_getaffinity(0)) if self.config.per_cpu else []
        if len(cpus) > 1:
            cfg["cpu"] = cpus[0]
            for cpu in cpus[1 : self.config.max_helpers + 1]:
                helper = subprocess.Popen(
                    [sys.executable, "-m", "garrison.runtime.node.capture", _json({**cfg, "role": "exec", "cpu": cpu})],
                    stdout=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent,
                )
                self._helpers.append(helper)
                self._own.add(helper.pid)
                threading.Thread(target=self._read_helper, args=(helper,), name="garrison-capture", daemon=True).start()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "garrison.runtime.node.capture", _json(cfg)],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE if self.config.files else subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        self._own.add(self._proc.pid)
        first = self._read_batch(timeout=30.0)
        if not first:
            self.stop()
            raise SensorError("the capture process did not start (no answer in 30 s)")
        rec = first[0]
        if rec[0] == "error":
            self.stop()
            raise SensorError(f"node sensor: {rec[1]}")
        self.stats.marked = list(rec[1])
        self._pending = first[1:]
        self.table.load_all()
        if self.config.poll_s > 0:
            self._netns[self._own_netns].poll()

    def _read_helper(self, helper: subprocess.Popen[bytes]) -> None:
        """Keep the exec records of a per-CPU helper capture, by (pid, kernel time), for a while."""
        from garrison.runtime.node.capture import read_frames

        assert helper.stdout is not None
        found = self._helper_execs
        for batch in read_frames(helper.stdout.fileno()):
            for rec in batch:
                if rec[0] == "exec" and rec[4]:
                    found[(rec[2], rec[1])] = rec
            if len(found) > 20_000:
                for key in list(found)[:10_000]:
                    found.pop(key, None)

    def _better_exec(self, rec: Any) -> Any:
        """The main capture read this exec too late (no command line): a helper's read of it, if any
        arrives within HELPER_WAIT_S."""
        if not self._helpers:
            return rec
        key = (rec[2], rec[1])
        deadline = time.monotonic() + HELPER_WAIT_S
        while True:
            better = self._helper_execs.pop(key, None)
            if better is not None:
                self.stats.recovered += 1
                return better
            if time.monotonic() >= deadline:
                return rec
            time.sleep(0.002)

    def stop(self) -> None:
        """Stop the capture processes (by their pids) and read the main one's last counters."""
        for helper in self._helpers:
            if helper.poll() is None:
                helper.send_signal(signal.SIGTERM)
        for helper in self._helpers:
            try:
                helper.wait(timeout=5)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()
        self._helpers = []
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            if proc.stdout is not None:
                self._buf.clear()
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    batch = self._read_batch(timeout=0.5, proc=proc)
                    if batch is None:
                        break
                    for rec in batch:
                        if rec[0] == "stats":
                            self._take_stats(rec)
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
            for tracker in self._netns.values():
                tracker.close()
            self.containers.close()

    def capture_pids(self) -> list[int]:
        """The capture processes' pids (the main one first)."""
        return [p.pid for p in ([self._proc] if self._proc else []) + self._helpers]

    def interrupt(self) -> None:
        """Make :meth:`events` return at its next wake-up (from a signal handler or another thread)."""
        self._stopping = True

    def _read_batch(self, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> list[Any] | None:
        """One frame of records; [] on timeout; None when the capture process has closed its output."""
        import marshal

        proc = proc or self._proc
        if proc is None or proc.stdout is None:
            return None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            if len(self._buf) >= _FRAME.size:
                (size,) = _FRAME.unpack_from(self._buf)
                if len(self._buf) >= _FRAME.size + size:
                    data = bytes(self._buf[_FRAME.size : _FRAME.size + size])
                    del self._buf[: _FRAME.size + size]
                    return list(marshal.loads(data))  # noqa: S302 - our own capture child's frames
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return []
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self._buf += chunk

    def events(self) -> Iterator[NodeEvent]:
        """Node events until :meth:`interrupt` or the capture process ends."""
        pending, self._pending = self._pending, []
        next_poll = time.monotonic() + self.config.poll_s if self.config.poll_s > 0 else float("inf")
        next_expire = time.monotonic() + 5.0
        while not self._stopping:
            if pending:
                yield from self._handle(pending)
                pending = []
            now = time.monotonic()
            if now >= next_poll:
                yield from self._poll_connections()
                next_poll = now + self.config.poll_s
            if now >= next_expire:
                self.table.expire(time.monotonic_ns())
                next_expire = now + 5.0
            batch = self._read_batch(timeout=max(0.0, min(next_poll, next_expire) - time.monotonic()))
            if batch is None:
                return
            pending = batch

    def _take_stats(self, rec: Any) -> None:
        self.stats.kernel_events, self.stats.lost, self.stats.overruns, self.stats.file_lost = (
            rec[1],
            rec[2],
            rec[3],
            rec[4],
        )

    def _handle(self, records: list[Any]) -> Iterator[NodeEvent]:
        table = self.table
        for rec in records:
            kind = rec[0]
            if kind == "exec":
                if not rec[4]:
                    rec = self._better_exec(rec)
                info = table.exec(rec[2], tuple(rec[3:10]))
                self.stats.execs += 1
                if info.partial:
                    self.stats.partial += 1
                if info.pid in self._own:
                    continue
                ev = self._event("execve", rec[1] + self._clock, info)
                if info.name in RECON_COMMANDS:
                    ev.given["garrison.recon_burst"] = self._recon(info, rec[1])
                yield ev
            elif kind == "fork":
                table.fork(rec[2], rec[3])
            elif kind == "exit":
                table.exit(rec[2], rec[1])
            elif kind == "uid":
                table.setuid(rec[2], rec[3], rec[4])
            elif kind == "file":
                _ts, pid, mask, path, size = rec[1:6]
                if pid in self._own:
                    continue
                fp = table.get(pid) or ProcInfo(pid=pid, ppid=0, name="", partial=True)
                for prefix in self._container_roots:
                    if path.startswith(prefix + "/"):
                        path = path[len(prefix) :]
                        break
                self.stats.files += 1
                writing = bool(mask & fanotify.FAN_CLOSE_WRITE)
                flags = ("O_WRONLY|O_TRUNC" if size == 0 else "O_WRONLY") if writing else "O_RDONLY"
                fd = FdInfo(num=-1, type="file", name=path)
                yield self._event("openat", rec[1], fp, fd=fd, args={"name": path, "flags": flags})
            elif kind == "stats":
                self._take_stats(rec)
            elif kind == "marked":
                self.stats.marked.extend(rec[1])

    def _recon(self, info: ProcInfo, ts: int) -> int:
        """Distinct recon commands ``info``'s parent started within the window, this one included."""
        seen = self._recon_seen.setdefault(info.ppid, {})
        seen[info.name] = ts
        for name in [n for n, t in seen.items() if ts - t > RECON_WINDOW_NS]:
            del seen[name]
        if len(self._recon_seen) > 4096:
            self._recon_seen = {info.ppid: seen}
        return len(seen)

    def _event(
        self,
        kind: str,
        ts: int,
        info: ProcInfo,
        *,
        fd: FdInfo | None = None,
        args: dict[str, str] | None = None,
        res: int = 0,
    ) -> NodeEvent:
        container = self.containers.resolve(info.cgroup) if info.cgroup else HOST
        if container is not HOST and container.full_id not in self._containers_seen:
            # Its files and its network namespace, through a process that lasts: the container's first
            # (lowest) pid in its cgroup, usually its init; the event's own process may be gone already.
            pid = self._container_pid(info)
            if self._mark_container(pid) and (self.config.poll_s <= 0 or self._track_netns(pid, container.full_id)):
                self._containers_seen.add(container.full_id)
        self._num += 1
        return NodeEvent(
            kind=kind,
            time_ns=ts,
            proc=info,
            container=container,
            fd=fd,
            args=args or {},
            user=self.users.get(info.uid, container, info.pid),
            hostname=self.hostname,
            lineage=self.table.lineage,
            res=res,
            num=self._num,
        )

    def _container_pid(self, info: ProcInfo) -> int:
        """A process of ``info``'s container that lasts: the lowest pid of its cgroup (cgroup v2's
        ``cgroup.procs``, else the lowest live pid the process table knows in that cgroup)."""
        pid = _cgroup_first_pid(info.cgroup)
        if pid:
            return pid
        same = sorted(p.pid for p in self.table.procs.values() if p.cgroup == info.cgroup)
        return next((p for p in same if os.path.exists(f"/proc/{p}")), info.pid)

    def _mark_container(self, pid: int) -> bool:
        """A container's own files (its overlay is not the host's /etc) are marked through
        ``/proc/PID/root`` at its first event; fanotify reports them by their path in the container.
        False when the process is gone (tried again at the container's next event)."""
        if not self.config.files or self._proc is None or self._proc.stdin is None:
            return True
        root = f"/proc/{pid}/root"
        marks = expand_watches([(root + g, m) for g, m in CONTAINER_WATCHES], existing=True)
        if not marks:
            return False
        # Where the container's root is, seen from here: "/" when its mounts are its own (fanotify then
        # reports container paths), the overlay's merged folder when they are visible here (stripped).
        try:
            fd = os.open(root + "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                seen_as = os.readlink(f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)
        except OSError:
            seen_as = "/"
        if seen_as not in ("/", "") and seen_as not in self._container_roots:
            self._container_roots.append(seen_as.rstrip("/"))
        try:
            self._proc.stdin.write((json.dumps({"mark": marks}) + "\n").encode())
            self._proc.stdin.flush()
        except OSError:
            return False
        return True

    def _track_netns(self, pid: int, container_id: str = "") -> bool:
        """Containers have network namespaces of their own: sock_diag answers per namespace, so each one
        seen gets its own tracker (created on the container's first event, dropped when it is gone)."""
        path = f"/proc/{pid}/ns/net"
        try:
            ino = os.stat(path).st_ino
        except OSError:
            return False
        if ino == self._own_netns or ino in self._netns:
            return True
        # seen=set(): a namespace met for the first time has no baseline, its open connections are news.
        self._netns[ino] = ConnTracker(netns=path, netns_ino=ino, seen=set(), container_id=container_id)
        return True

    def _poll_connections(self) -> Iterator[NodeEvent]:
        new: list[tuple[ConnTracker, Conn]] = []
        for ino, tracker in list(self._netns.items()):
            if tracker.netns:
                try:
                    alive = os.stat(tracker.netns).st_ino == ino
                except OSError:
                    alive = False
                if not alive:  # its process is gone: stop holding the namespace open
                    tracker.close()
                    del self._netns[ino]
                    self._containers_seen.discard(tracker.container_id)  # found again at its next event
                    continue
            try:
                new.extend((tracker, c) for c in tracker.poll())
            except OSError:
                continue
        if not new:
            return
        missing = {c.inode for _t, c in new if c.inode and c.inode not in self._owners}
        if missing:
            self._owners.update(socket_owners(missing))
            if len(self._owners) > 4096:
                self._owners = {i: self._owners[i] for i in missing if i in self._owners}
        now = time.time_ns()
        for tracker, c in new:
            yield from self._conn_events(tracker, c, now)

    def _conn_events(self, tracker: ConnTracker, c: Conn, now: int) -> Iterator[NodeEvent]:
        owners = sorted(self._owners.get(c.inode, ()))
        if not owners:
            self.stats.unattributed += 1
            return
        self.stats.connections += 1
        accept = tracker.is_accept(c)
        fd_type = "ipv4" if c.family == 4 else "ipv6"
        pid, num = owners[0]
        info = self.table.current(pid)
        if info is None or pid in self._own:
            return
        name = f"{c.lip}:{c.lport}->{c.rip}:{c.rport}" if not accept else f"{c.rip}:{c.rport}->{c.lip}:{c.lport}"
        fd = FdInfo(num, fd_type, name, c.proto, c.lip, c.lport, c.rip, c.rport, local_is_server=accept)
        yield self._event("accept" if accept else "connect", now, info, fd=fd)
        for opid, onum in owners:
            if onum in (0, 1, 2) and opid not in self._own:
                oinfo = self.table.current(opid)
                if oinfo is not None:
                    ofd = FdInfo(onum, fd_type, name, c.proto, c.lip, c.lport, c.rip, c.rport, local_is_server=accept)
                    yield self._event("dup2", now, oinfo, fd=ofd, res=onum)


def _cgroup_first_pid(cgroup: str) -> int:
    """The lowest pid in a cgroup (v2: ``/sys/fs/cgroup<path>/cgroup.procs``), 0 when unknown."""
    for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        try:
            with open(f"{root}{cgroup}/cgroup.procs", "rb") as f:
                pids = [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            continue
        if pids:
            return min(pids)
    return 0


def _netns_inode(path: str) -> int:
    try:
        return os.stat(path).st_ino
    except OSError:
        return 0


def _json(cfg: dict[str, Any]) -> str:
    return json.dumps(cfg)


def _die_with_parent() -> None:
    import ctypes

    ctypes.CDLL(None).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
