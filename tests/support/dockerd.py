"""A private, loopback-only Docker daemon for tests (Debian ``docker.io``).

Why private: tests must never touch the host's docker state, bridge or iptables. The daemon gets its own
``data-root``, ``exec-root``, pidfile and unix socket under a short temporary directory (unix socket paths
are limited to 108 bytes), ``"bridge": "none"`` and no iptables/forwarding/masquerading. It is stopped by
its own PID (from the pidfile), never by name.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.cache import remove_tree
from tests.support.procs import die_with_parent


class DockerUnavailable(RuntimeError):
    """dockerd is missing or did not come up; the message carries its last log lines."""


@dataclass
class Dockerd:
    """A running daemon. ``socket`` is the unix socket path; ``host`` the ``DOCKER_HOST`` value."""

    root: Path
    socket: Path
    pid: int
    log_file: Path
    process: subprocess.Popen[bytes] | None = None

    def __fspath__(self) -> str:
        """The daemon can stand in for its socket path (``os.fspath(dockerd)``)."""
        return str(self.socket)

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for the ``docker`` CLI aimed at this daemon only."""
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_CONFIG": str(self.root / "cli-config")}

    def cli(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``docker ARGS…`` against this daemon."""
        proc = subprocess.run(["docker", *args], capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def load(self, archive: Path | str) -> list[str]:
        """``docker load -i archive``; returns the loaded image names (``Loaded image: …`` lines)."""
        out = self.cli("load", "-i", str(archive)).stdout
        return [line.split(": ", 1)[1].strip() for line in out.splitlines() if line.startswith("Loaded image")]

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM our daemon by PID, wait, then remove its directories (after it unmounted them)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        remove_tree(self.root)


def daemon_config(root: Path) -> dict[str, object]:
    """The loopback-only configuration (see ENVIRONMENT.md)."""
    return {
        "bridge": "none",
        "iptables": False,
        "ip6tables": False,
        "ip-forward": False,
        "ip-masq": False,
        "data-root": str(root / "data"),
        "exec-root": str(root / "exec"),
        "pidfile": str(root / "docker.pid"),
        "hosts": [f"unix://{root / 'docker.sock'}"],
    }


def start_dockerd(timeout: float = 60.0) -> Dockerd:
    """Start a private dockerd and wait until it answers ``docker version``."""
    binary = shutil.which("dockerd")
    if binary is None or shutil.which("docker") is None:
        raise DockerUnavailable("dockerd/docker not installed (scripts/install-system-deps.sh installs docker.io)")
    if os.geteuid() != 0:
        raise DockerUnavailable("dockerd needs root")
    root = Path(tempfile.mkdtemp(prefix="gdk.", dir="/tmp"))
    (root / "daemon.json").write_text(json.dumps(daemon_config(root), indent=1))
    log_file = root / "dockerd.log"
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            [binary, "--config-file", str(root / "daemon.json")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    daemon = Dockerd(root, root / "docker.sock", proc.pid, log_file, proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = daemon.log_tail()
            daemon.stop()
            raise DockerUnavailable(f"dockerd exited with {proc.returncode}; last log lines:\n{tail}")
        if daemon.socket.exists():
            try:
                if daemon.cli("version", timeout=10, check=False).returncode == 0:
                    return daemon
            except subprocess.TimeoutExpired:
                pass  # the socket is there but the API not yet answering: ask again until the deadline
        time.sleep(0.2)
    tail = daemon.log_tail()
    daemon.stop()
    raise DockerUnavailable(f"dockerd not ready after {timeout}s; last log lines:\n{tail}")
