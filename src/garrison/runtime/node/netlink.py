"""The kernel's process-events connector (netlink ``NETLINK_CONNECTOR``, ``CN_IDX_PROC``), from pure Python.

The kernel multicasts one ``proc_event`` per fork, exec, exit (and uid/gid/sid/comm change) to every
listener of the ``CN_IDX_PROC`` group. Each message carries a per-CPU sequence number, so a gap in it is
an exact count of the events the socket dropped (receive buffer overrun, ``ENOBUFS``): lost events are
counted, never silent.

Layout (``linux/netlink.h``, ``linux/connector.h``, ``linux/cn_proc.h``)::

    nlmsghdr  len u32, type u16, flags u16, seq u32, pid u32                  16 bytes
    cn_msg    idx u32, val u32, seq u32, ack u32, len u16, flags u16         20 bytes
    proc_event what u32, cpu u32, timestamp_ns u64, then the union below     16 bytes + union
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from dataclasses import dataclass, field

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
NLMSG_DONE = 3
SO_RCVBUFFORCE = 33

PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_UID = 0x00000004
PROC_EVENT_GID = 0x00000040
PROC_EVENT_SID = 0x00000080
PROC_EVENT_PTRACE = 0x00000100
PROC_EVENT_COMM = 0x00000200
PROC_EVENT_EXIT = 0x80000000

_NLMSGHDR = struct.Struct("=IHHII")
_CN_MSG = struct.Struct("=IIIIHH")
_HEAD = struct.Struct("=IIQ")
_HEAD_OFF = _NLMSGHDR.size + _CN_MSG.size
_BODY_OFF = _HEAD_OFF + _HEAD.size
_FORK = struct.Struct("=IIII")
_EXEC = struct.Struct("=II")
_ID = struct.Struct("=IIII")
_EXIT = struct.Struct("=IIII")
_COMM = struct.Struct("=II16s")

#: Receive buffer asked for with ``SO_RCVBUFFORCE``: with the default 208 KiB a Python listener loses
#: about 6% of a 10,000-process burst; with 16 MiB none (ENVIRONMENT.md, "Node events").
RCVBUF = 16 << 20


class ConnectorError(OSError):
    """The connector socket could not be opened or subscribed (not root, no ``CONFIG_PROC_EVENTS``)."""


#: A decoded event: ``(kind, timestamp_ns, pid, a, b)`` where ``kind`` is one of the names below and
#: ``a``/``b`` depend on it: fork (parent tgid, unused), exec (0, 0), exit (exit code, signal),
#: uid/gid (real, effective), comm (the new name as bytes, 0).
RawEvent = tuple[str, int, int, object, int]


@dataclass
class SeqTracker:
    """Counts events lost from the per-CPU sequence numbers and from ``ENOBUFS`` overruns."""

    last: dict[int, int] = field(default_factory=dict)
    lost: int = 0
    overruns: int = 0

    def see(self, cpu: int, seq: int) -> None:
        prev = self.last.get(cpu)
        if prev is not None and seq > prev + 1:
            self.lost += seq - prev - 1
        self.last[cpu] = seq


def open_connector(rcvbuf: int = RCVBUF) -> socket.socket:
    """A subscribed, non-blocking connector socket (root only)."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
    except OSError as exc:
        raise ConnectorError(exc.errno, f"netlink connector socket: {exc.strerror}") from None
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((0, CN_IDX_PROC))
        _control(sock, PROC_CN_MCAST_LISTEN)
    except OSError as exc:
        sock.close()
        raise ConnectorError(exc.errno or errno.EPERM, f"process-events connector: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def _control(sock: socket.socket, op: int) -> None:
    payload = struct.pack("=I", op)
    cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0)
    body = cn + payload
    hdr = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), NLMSG_DONE, 0, 0, os.getpid())
    sock.send(hdr + body)


def close_connector(sock: socket.socket) -> None:
    try:
        sock.setblocking(True)
        _control(sock, PROC_CN_MCAST_IGNORE)
    except OSError:
        pass
    sock.close()


def parse(buf: bytes, seqs: SeqTracker) -> list[RawEvent]:
    """Decode every proc_event in one datagram (normally one; several when the kernel batches)."""
    out: list[RawEvent] = []
    off = 0
    n = len(buf)
    while off + _BODY_OFF <= n:
        length = _NLMSGHDR.unpack_from(buf, off)[0]
        if length < _BODY_OFF or off + length > n:
            break
        seq = _CN_MSG.unpack_from(buf, off + _NLMSGHDR.size)[2]
        what, cpu, ts = _HEAD.unpack_from(buf, off + _HEAD_OFF)
        seqs.see(cpu, seq)
        body = off + _BODY_OFF
        if what == PROC_EVENT_EXEC:
            pid, tgid = _EXEC.unpack_from(buf, body)
            if pid == tgid:
                out.append(("exec", ts, tgid, 0, 0))
        elif what == PROC_EVENT_FORK:
            _ppid, ptgid, cpid, ctgid = _FORK.unpack_from(buf, body)
            if cpid == ctgid:
                out.append(("fork", ts, ctgid, ptgid, 0))
        elif what == PROC_EVENT_EXIT:
            pid, tgid, code, sig = _EXIT.unpack_from(buf, body)
            if pid == tgid:
                out.append(("exit", ts, tgid, code, sig))
        elif what in (PROC_EVENT_UID, PROC_EVENT_GID):
            pid, tgid, real, eff = _ID.unpack_from(buf, body)
            if pid == tgid:
                out.append(("uid" if what == PROC_EVENT_UID else "gid", ts, tgid, real, eff))
        elif what == PROC_EVENT_COMM:
            pid, tgid, comm = _COMM.unpack_from(buf, body)
            if pid == tgid:
                out.append(("comm", ts, tgid, comm.split(b"\0", 1)[0], 0))
        off += (length + 3) & ~3
    return out
