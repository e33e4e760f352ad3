"""The capture loop: a small process that only reads kernel events and ``/proc``, as fast as it can.

Why a process of its own: a short-lived process's command line is gone within a millisecond of its exec,
so whatever reads ``/proc`` must run the moment the connector's message arrives. Rule evaluation, Docker
look-ups and output in the same interpreter would hold the GIL at those moments. The parent
(:mod:`garrison.runtime.node.sensor`) starts ``python -m garrison.runtime.node.capture``; this loop reads
the connector (and fanotify when asked), takes the ``/proc`` snapshot at once and writes batches of
records to stdout as length-prefixed ``marshal`` frames. It raises its own scheduling priority when it may
(``SCHED_FIFO`` 1, bounded by the kernel's real-time throttling, else nice -10).

One capture runs per CPU, each pinned to its CPU (``cpu``): a real-time task preempts ordinary ones, so a
freshly exec'd process cannot run on a CPU until that CPU's capture has read what it was woken for; a
short-lived process therefore cannot exit before one of them has read its command line, whichever CPU it
runs on. The first capture (``role`` ``full``) sends everything; the others (``role`` ``exec``) only exec
records, which the sensor uses when the first one's read came too late.

Records (tuples; the first item names the kind)::

    ("exec", ts_ns, pid, exe, cmdline, status, cwd, cgroup, stat, loginuid)
    ("fork", ts_ns, pid, parent_tgid)
    ("exit", ts_ns, pid, exit_code, signal)
    ("uid" | "gid", ts_ns, pid, real, effective)
    ("file", ts_ns, pid, mask, path, size)
    ("stats", events, lost, overruns, file_lost)   every second and at the end
    ("ready", marked, skipped)                  once the connector (and fanotify) are set up
    ("marked", paths)                           after marks asked for on stdin ({"mark": [[path, mode]…]})
    ("error", message)                         fatal: the loop ends after it
"""

from __future__ import annotations

import contextlib
import gc
import json
import marshal
import os
import select
import signal
import struct
import sys
import time
from typing import Any

from garrison.runtime.node import netlink
from garrison.runtime.node.procfs import read_first, read_rest

_FRAME = struct.Struct("=I")
F_SETPIPE_SZ = 1031
#: A batch of records is written when the kernel has been quiet for FLUSH_MS, or when it holds
#: FLUSH_RECORDS records, or FLUSH_MS after its first record.
FLUSH_MS = 5
FLUSH_RECORDS = 512


def _raise_priority() -> None:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (OSError, AttributeError):
        with contextlib.suppress(OSError):
            os.nice(-10)


def _finish_execs(pending: list[Any], execs: list[tuple[int, int, bytes]]) -> None:
    """Complete exec records with cwd and stat (read after a batch's command lines)."""
    for index, pid, cgroup in execs:
        cwd, stat, loginuid = read_rest(pid)
        pending[index] = (*pending[index], cwd, cgroup, stat, loginuid)
    execs.clear()


def _write(out: int, records: list[Any]) -> None:
    data = marshal.dumps(records)
    buf = memoryview(_FRAME.pack(len(data)) + data)
    while buf:
        buf = buf[os.write(out, buf) :]


def run(config: dict[str, Any], out: int) -> int:
    """Capture until SIGTERM/SIGINT or stdout closes. ``config``: ``files`` (fanotify marks, see
    :mod:`garrison.runtime.node.fanotify`), ``rcvbuf``, ``realtime``."""
    stop = False

    def _stop(_sig: int, _frm: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        import fcntl

        fcntl.fcntl(out, F_SETPIPE_SZ, 1 << 20)
    except OSError:
        pass
    seqs = netlink.SeqTracker()
    exec_only = config.get("role") == "exec"
    if "cpu" in config:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {int(config["cpu"])})
    try:
        sock = netlink.open_connector(int(config.get("rcvbuf", netlink.RCVBUF)))
    except netlink.ConnectorError as exc:
        _write(out, [("error", str(exc))])
        return 1
    fan = None
    if config.get("files") and not exec_only:
        from garrison.runtime.node import fanotify

        try:
            fan = fanotify.FileWatch(config["files"])
        except OSError as exc:
            _write(out, [("error", f"fanotify: {exc}")])
            netlink.close_connector(sock)
            return 1
    if config.get("realtime", True):
        _raise_priority()
    gc.disable()  # no cycles are made here; a collection pause would let short-lived processes escape
    _write(out, [("ready", fan.marked if fan else [], fan.skipped if fan else [])])
    nfd = sock.fileno()
    poller = select.poll()
    poller.register(nfd, select.POLLIN)
    if fan is not None:
        poller.register(fan.fd, select.POLLIN)
        # Marks added later (a container's files, met at its first event): JSON lines on stdin.
        control = sys.stdin.fileno()
        os.set_blocking(control, False)
        poller.register(control, select.POLLIN)
        control_buf = b""
    buf = bytearray(1 << 16)
    view = memoryview(buf)
    count = 0
    next_stats = time.monotonic() + 1.0
    pending: list[Any] = []
    execs: list[tuple[int, int, bytes]] = []
    try:
        first = 0.0
        while not stop:
            try:
                # With records waiting, wait at most FLUSH_MS for more: one frame per quiet moment, not one
                # per event, so that the consumer is not woken (and does not compete) for every exec.
                ready = poller.poll(FLUSH_MS if pending else 200)
            except InterruptedError:
                continue
            for fd, _ev in ready:
                if fd == nfd:
                    while True:
                        try:
                            n = sock.recv_into(buf)
                        except BlockingIOError:
                            break
                        except OSError as exc:
                            if exc.errno == 105:  # ENOBUFS: the buffer overran; the seq gap counts the loss
                                seqs.overruns += 1
                                continue
                            raise
                        for ev in netlink.parse(bytes(view[:n]), seqs):
                            count += 1
                            if ev[0] == "exec":
                                cmdline, exe, status, cgroup = read_first(ev[2])
                                execs.append((len(pending), ev[2], cgroup))
                                pending.append(("exec", ev[1], ev[2], exe, cmdline, status))
                            elif not exec_only:
                                pending.append(ev)
                        if len(execs) >= 64:
                            _finish_execs(pending, execs)
                    _finish_execs(pending, execs)
                elif fan is not None and fd == fan.fd:
                    for fev in fan.read():
                        count += 1
                        pending.append(("file", *fev))
                elif fan is not None:
                    try:
                        chunk = os.read(control, 65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        poller.unregister(control)
                        continue
                    control_buf += chunk
                    *lines, control_buf = control_buf.split(b"\n")
                    for line in lines:
                        added = [p for p, m in json.loads(line).get("mark", ()) if fan.add(p, m)]
                        pending.append(("marked", added))
            now = time.monotonic()
            if now >= next_stats:
                pending.append(("stats", count, seqs.lost, seqs.overruns, fan.lost if fan else 0))
                next_stats = now + 1.0
            if pending:
                if not first:
                    first = now
                if not ready or len(pending) >= FLUSH_RECORDS or now - first >= FLUSH_MS / 1000:
                    _write(out, pending)
                    pending = []
                    first = 0.0
    except BrokenPipeError:
        return 0
    finally:
        netlink.close_connector(sock)
        if fan is not None:
            fan.close()
    with contextlib.suppress(OSError):
        _write(out, [("stats", count, seqs.lost, seqs.overruns, fan.lost if fan else 0)])
    return 0


def read_frames(fd: int) -> Any:
    """Yield record batches from a capture's stdout until it closes."""
    with os.fdopen(fd, "rb", buffering=1 << 20, closefd=False) as f:
        while True:
            head = f.read(_FRAME.size)
            if len(head) < _FRAME.size:
                return
            (size,) = _FRAME.unpack(head)
            data = f.read(size)
            if len(data) < size:
                return
            yield marshal.loads(data)  # noqa: S302 - our own child's output, never another's


def main() -> int:
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    out = sys.stdout.fileno()
    return run(config, out)


if __name__ == "__main__":
    raise SystemExit(main())
