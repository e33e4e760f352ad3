"""Network connections from sock_diag (netlink ``NETLINK_SOCK_DIAG``, inet_diag), polled and diffed.

Each poll dumps TCP and UDP sockets of IPv4 and IPv6 (``SOCK_DIAG_BY_FAMILY`` with ``inet_diag_req_v2``)
and keeps connected ones: TCP in ``ESTABLISHED``/``SYN_SENT``/``SYN_RECV``, UDP with a remote port. A
connection not seen at the previous poll is new; it is a connect when its local port is not a listening
port, else an accept. Its socket inode is attributed to processes through ``/proc/PID/fd`` links
(``socket:[INODE]``), scanned only when new inodes appear. A connection opened and closed between two polls
is not seen: this is a poll, not a syscall hook (the limit is stated in docs/runtime.md).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_DONE = 3
NLMSG_ERROR = 2

TCP_ESTABLISHED = 1
TCP_SYN_SENT = 2
TCP_SYN_RECV = 3
TCP_CLOSE = 7
TCP_LISTEN = 10

_NLMSGHDR = struct.Struct("=IHHII")
# inet_diag_req_v2: family, protocol, ext, pad, states; inet_diag_sockid: sport, dport (big endian),
# src[4], dst[4], if, cookie[2].
_REQ = struct.Struct("=BBBBI")
_SOCKID = struct.Struct("!HH16s16s")
_MSG = struct.Struct("=BBBB")
_MSG_TAIL = struct.Struct("=IIIIII")  # if, cookie0, cookie1 … then expires, rqueue, wqueue, uid, inode


@dataclass(frozen=True, slots=True)
class Conn:
    """One socket: ``proto`` tcp/udp, ``family`` 4/6, local and remote address and port, inode, uid."""

    proto: str
    family: int
    lip: str
    lport: int
    rip: str
    rport: int
    state: int
    inode: int
    uid: int


def _addr(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    ip = ipaddress.IPv6Address(raw)
    return str(ip.ipv4_mapped) if ip.ipv4_mapped else str(ip)


def dump(sock: socket.socket, family: int, proto: int, states: int) -> list[Conn]:
    """One inet_diag dump."""
    req = _REQ.pack(family, proto, 0, 0, states) + b"\0" * 48
    hdr = _NLMSGHDR.pack(_NLMSGHDR.size + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
    sock.send(hdr + req)
    name = "tcp" if proto == socket.IPPROTO_TCP else "udp"
    fam = 4 if family == socket.AF_INET else 6
    out: list[Conn] = []
    while True:
        data = sock.recv(1 << 20)
        off = 0
        while off + _NLMSGHDR.size <= len(data):
            length, mtype, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, off)
            if length < _NLMSGHDR.size:
                return out
            if mtype == NLMSG_DONE:
                return out
            if mtype == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, off + _NLMSGHDR.size)
                if code:
                    raise OSError(-code, f"sock_diag: {os.strerror(-code)}")
                return out
            body = off + _NLMSGHDR.size
            _fam, state, _timer, _retrans = _MSG.unpack_from(data, body)
            sport, dport, src, dst = _SOCKID.unpack_from(data, body + 4)
            # after the sockid (48 bytes): expires, rqueue, wqueue, uid, inode
            tail = body + 4 + 48
            _exp, _rq, _wq, uid, inode = struct.unpack_from("=IIIII", data, tail)
            out.append(Conn(name, fam, _addr(family, src), sport, _addr(family, dst), dport, state, inode, uid))
            off += (length + 3) & ~3


def open_diag() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)


CLONE_NEWNET = 0x40000000


def open_diag_in(netns_path: str) -> socket.socket:
    """A sock_diag socket inside another network namespace (a container's: ``/proc/PID/ns/net``).

    A netlink socket answers for the namespace it was created in, so it is created by a short-lived thread
    that first joins that namespace (``setns`` moves only the calling thread); the socket stays there.
    """
    import ctypes
    import threading

    result: list[socket.socket | BaseException] = []

    def make() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns_path}: {os.strerror(err)}")
            finally:
                os.close(fd)
            result.append(open_diag())
        except BaseException as exc:
            result.append(exc)

    t = threading.Thread(target=make, name="garrison-netns")
    t.start()
    t.join()
    got = result[0]
    if isinstance(got, BaseException):
        raise got
    return got


TCP_STATES = (1 << TCP_ESTABLISHED) | (1 << TCP_SYN_SENT) | (1 << TCP_SYN_RECV) | (1 << TCP_LISTEN)
UDP_STATES = 0xFFFFFFFF


def snapshot(sock: socket.socket) -> tuple[list[Conn], set[tuple[str, int, int]]]:
    """Connected sockets, and the listening (proto, family, port) set."""
    conns: list[Conn] = []
    listening: set[tuple[str, int, int]] = set()
    for family in (socket.AF_INET, socket.AF_INET6):
        for proto, states in ((socket.IPPROTO_TCP, TCP_STATES), (socket.IPPROTO_UDP, UDP_STATES)):
            for c in dump(sock, family, proto, states):
                if (c.proto == "tcp" and c.state == TCP_LISTEN) or (c.proto == "udp" and c.rport == 0):
                    listening.add((c.proto, c.family, c.lport))
                elif c.rport:
                    conns.append(c)
    return conns, listening


def socket_owners(inodes: set[int], proc: str = "/proc") -> dict[int, list[tuple[int, int]]]:
    """inode → [(pid, fd number)…] for the given socket inodes, from ``/proc/*/fd``."""
    want = {f"socket:[{i}]": i for i in inodes}
    found: dict[int, list[tuple[int, int]]] = {}
    for d in os.listdir(proc):
        if not d.isdigit():
            continue
        base = f"{proc}/{d}/fd"
        try:
            fds = os.listdir(base)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{base}/{fd}")
            except OSError:
                continue
            inode = want.get(target)
            if inode is not None:
                found.setdefault(inode, []).append((int(d), int(fd)))
    return found


@dataclass
class ConnTracker:
    """Diffs successive snapshots; :meth:`poll` returns the connections that are new since the last one."""

    sock: socket.socket | None = None
    seen: set[tuple[str, int, str, int, str, int, int]] | None = None
    listening: set[tuple[str, int, int]] | None = None
    #: The network namespace (``/proc/PID/ns/net`` of a process in it); "" = the sensor's own.
    netns: str = ""
    #: That namespace's inode, to notice when the process (and maybe the namespace) is gone.
    netns_ino: int = 0
    #: The container it belongs to ("" for the sensor's own).
    container_id: str = ""

    def poll(self) -> list[Conn]:
        if self.sock is None:
            self.sock = open_diag_in(self.netns) if self.netns else open_diag()
        conns, listening = snapshot(self.sock)
        self.listening = listening
        keys = {(c.proto, c.family, c.lip, c.lport, c.rip, c.rport, c.inode): c for c in conns}
        first = self.seen is None
        new = [] if first else [c for k, c in keys.items() if k not in (self.seen or set())]
        self.seen = set(keys)
        return new

    def is_accept(self, c: Conn) -> bool:
        return (c.proto, c.family, c.lport) in (self.listening or set())

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
