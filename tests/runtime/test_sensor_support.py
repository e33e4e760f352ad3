"""A real node sensor running in a thread for the sensor tests, with garrison's node rules (no tests here).

The tests do each attack harmlessly with real processes, then wait for the sensor to have *seen* the event
they caused (never for a time): an attack must have raised its rule's match, a look-alike must have been
seen with no match of that rule. Every command carries a unique marker so that the machine's other
processes (other test runs, other users) never mix in.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import stat
import struct
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from garrison.runtime.engine import Match, RuleSet, load_rules
from garrison.runtime.node.event import NodeEvent
from garrison.runtime.node.sensor import Sensor, SensorConfig

NODE_RULES = Path(__file__).resolve().parents[2] / "src/garrison/rules/runtime/node.yaml"
#: How long a test waits for the sensor to report what it caused (generous: CI machines are busy).
WAIT_S = 20.0


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("the node sensor needs root (netlink process-events connector, fanotify, /proc/PID/fd)")


@dataclass
class RunningSensor:
    """The sensor in a background thread; every event is evaluated against ``ruleset`` as it arrives."""

    sensor: Sensor
    ruleset: RuleSet
    events: deque[NodeEvent] = field(default_factory=lambda: deque(maxlen=200_000))
    matches: deque[Match] = field(default_factory=lambda: deque(maxlen=50_000))
    error: list[BaseException] = field(default_factory=list)
    thread: threading.Thread | None = None
    cond: threading.Condition = field(default_factory=threading.Condition)

    def _loop(self) -> None:
        try:
            for ev in self.sensor.events():
                found = self.ruleset.evaluate(ev)
                with self.cond:
                    self.matches.extend(found)
                    self.events.append(ev)
                    self.cond.notify_all()
        except BaseException as exc:  # surfaced by wait_*
            self.error.append(exc)

    def wait_event(self, pred: Callable[[NodeEvent], bool], what: str, timeout: float = WAIT_S) -> NodeEvent:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if self.error:
                    raise AssertionError(f"sensor failed: {self.error[0]!r}")
                for ev in reversed(self.events):
                    if pred(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the sensor never reported {what} ({self.sensor.stats.summary()})")
                self.cond.wait(min(left, 0.5))

    def matches_of(self, ev: NodeEvent) -> list[str]:
        with self.cond:
            return [m.rule.name for m in self.matches if m.event is ev]

    def wait_match(self, rule: str, pred: Callable[[NodeEvent], bool], timeout: float = WAIT_S) -> Match:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if self.error:
                    raise AssertionError(f"sensor failed: {self.error[0]!r}")
                for m in reversed(self.matches):
                    if m.rule.name == rule and pred(m.event):  # type: ignore[arg-type]
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [
                        (e.kind, e.field("proc.cmdline"), e.field("fd.name"), self.matches_of(e))
                        for e in list(self.events)[-4000:]
                        if pred(e)
                    ]
                    raise AssertionError(f"no {rule!r} match; matching events seen: {seen[:10]}")
                self.cond.wait(min(left, 0.5))

    def stop(self) -> None:
        self.sensor.interrupt()
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.sensor.stop()


def start_sensor(extra_watches: list[tuple[str, str]], docker_host: str = "") -> RunningSensor:
    need_root()
    config = SensorConfig(poll_s=0.2, extra_watches=extra_watches)
    if docker_host:
        config.docker_host = docker_host
    sensor = Sensor(config)
    sensor.start()
    running = RunningSensor(sensor, load_rules([NODE_RULES]))
    running.thread = threading.Thread(target=running._loop, name="sensor", daemon=True)
    running.thread.start()
    return running


def marker() -> str:
    return "gtest" + uuid.uuid4().hex[:10]


def cmd_has(text: str) -> Callable[[NodeEvent], bool]:
    def pred(ev: NodeEvent) -> bool:
        return ev.kind == "execve" and text in str(ev.field("proc.cmdline") or "")

    return pred


def _sleeper_elf(nanos: int) -> bytes:
    """A 152-byte static x86-64 executable that sleeps ``nanos`` and exits 0, whatever its arguments.

    Why not a script: a script's command line starts with its interpreter (``/bin/sh /path/xmrig …``), and
    ``/bin/true`` exits before anyone can read its /proc entry; a real tool is one binary that lives a while.
    """
    base = 0x400000
    code = (
        b"\xb8\x23\x00\x00\x00"  # mov eax, 35 (nanosleep)
        b"\x48\x8d\x3d\x0d\x00\x00\x00"  # lea rdi, [rip + 13] (the timespec below)
        b"\x31\xf6"  # xor esi, esi
        b"\x0f\x05"  # syscall
        b"\xb8\xe7\x00\x00\x00"  # mov eax, 231 (exit_group)
        b"\x31\xff"  # xor edi, edi
        b"\x0f\x05"  # syscall
    ) + struct.pack("<qq", nanos // 1_000_000_000, nanos % 1_000_000_000)
    size = 64 + 56 + len(code)
    ehdr = (
        b"\x7fELF\x02\x01\x01"
        + b"\0" * 9
        + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, base + 120, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    )
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return ehdr + phdr + code


def fake_tool(bin_dir: Path, name: str, body: str | None = None, sleep_s: float = 0.5) -> Path:
    """A harmless stand-in named like a tool. Without ``body``: a tiny executable that only sleeps
    (``proc.name``, ``proc.exepath`` and the arguments are exactly a real tool's); with ``body``: a shell
    script running it."""
    path = bin_dir / name
    if body is None:
        if platform.machine() != "x86_64":
            pytest.skip("the stand-in executable is x86-64 machine code")
        path.write_bytes(_sleeper_elf(int(sleep_s * 1e9)))
    else:
        path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def run(*argv: str | os.PathLike[str], env: dict[str, str] | None = None, timeout: float = 30) -> None:
    subprocess.run(
        [os.fspath(a) for a in argv],
        check=False,
        env=env,
        timeout=timeout,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass
class Listener:
    """A loopback TCP listener that accepts one connection, holds it ``hold_s`` and sends ``say``."""

    port: int
    thread: threading.Thread
    received: list[bytes]


def listen_once(say: bytes = b"exit\n", hold_s: float = 2.0) -> Listener:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(30)
    received: list[bytes] = []

    def serve() -> None:
        try:
            conn, _ = srv.accept()
        except OSError:
            srv.close()
            return
        with conn:
            time.sleep(hold_s)
            try:
                conn.sendall(say)
                conn.settimeout(2)
                received.append(conn.recv(4096))
            except OSError:
                pass
        srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return Listener(srv.getsockname()[1], t, received)


def copy_etc(dest: Path) -> Path:
    """A throwaway copy of the account files (useradd/chpasswd -P work on it, never on the host's /etc)."""
    etc = dest / "etc"
    etc.mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow", "login.defs"):
        src = Path("/etc") / name
        if src.exists():
            shutil.copy2(src, etc / name)
    (etc / "default").mkdir()
    return etc


def sensor_fixture(tmp_root: Path) -> Iterator[RunningSensor]:
    running = start_sensor([(str(tmp_root), "w")])
    try:
        yield running
    finally:
        running.stop()
