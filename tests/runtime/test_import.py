"""Falco JSON alerts and Tetragon JSON events into node events: garrison's node rules on what those sensors
saw. The lines are written after the formats' documentation (Falco ``json_output: true``; Tetragon
``tetra getevents -o json`` / the JSON export): field names, nesting and value types as the sensors emit them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from garrison.runtime.engine import RuleSet, load_rules
from garrison.runtime.importers import ImportStats, falco_alert_of, parse_time, read_falco, read_tetragon

NODE_RULES = Path(__file__).resolve().parents[2] / "src/garrison/rules/runtime/node.yaml"


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules([NODE_RULES])


def _names(rules: RuleSet, ev: object) -> list[str]:
    return [m.rule.name for m in rules.evaluate(ev)]  # type: ignore[arg-type]


FALCO_MINER = {
    "hostname": "worker-1",
    "output": "10:00:00.123456789: Critical Cryptominer process executed (proc.name=xmrig ...)",
    "output_fields": {
        "container.id": "4f1d2c3b5a69",
        "container.image.repository": "docker.io/library/alpine",
        "container.name": "web",
        "evt.time": 1714557600123456789,
        "evt.type": "execve",
        "k8s.ns.name": "shop",
        "k8s.pod.name": "web-7d9c",
        "proc.cmdline": "xmrig -o stratum+tcp://pool.supportxmr.com:443 -u 44Ab --donate-level 1",
        "proc.exepath": "/tmp/xmrig",
        "proc.name": "xmrig",
        "proc.pid": 4242,
        "proc.pname": "sh",
        "user.name": "root",
        "user.uid": 0,
    },
    "priority": "Critical",
    "rule": "Known Cryptominer Process Executed",
    "source": "syscall",
    "tags": ["maturity_sandbox", "host", "container", "process", "mitre_impact", "T1496"],
    "time": "2024-05-01T10:00:00.123456789Z",
}

FALCO_CLEAR_LOG = {
    "hostname": "worker-1",
    "output": "10:01:00.000000001: Warning Log files were tampered (file=/var/log/auth.log ...)",
    "output_fields": {
        "container.id": "host",
        "evt.arg.flags": "O_TRUNC|O_CREAT|O_WRONLY|O_CLOEXEC",
        "evt.is_open_write": True,
        "evt.time": 1714557660000000001,
        "evt.type": "openat",
        "fd.name": "/var/log/auth.log",
        "proc.cmdline": "bash",
        "proc.name": "bash",
        "proc.pname": "sshd",
        "user.name": "root",
    },
    "priority": "Warning",
    "rule": "Clear Log Activities",
    "source": "syscall",
    "tags": ["maturity_stable", "host", "container", "filesystem", "mitre_defense_evasion", "T1070"],
    "time": "2024-05-01T10:01:00.000000001Z",
}

FALCO_PRIV_MOUNT = {
    "hostname": "worker-2",
    "output": "Mount was executed inside a privileged container",
    "output_fields": {
        "container.id": "9a8b7c6d5e4f",
        "container.image.repository": "busybox",
        "container.privileged": True,
        "evt.type": "execve",
        "evt.time": 1714557700000000000,
        "proc.cmdline": "mount /dev/sda1 /mnt",
        "proc.name": "mount",
        "proc.pname": "sh",
        "user.name": "root",
    },
    "priority": "Warning",
    "rule": "Mount Launched in Privileged Container",
    "source": "syscall",
    "tags": ["maturity_incubating", "container", "cis", "filesystem", "mitre_privilege_escalation", "T1611"],
    "time": "2024-05-01T10:01:40Z",
}

FALCO_SHELL = {  # a look-alike for every garrison rule: an interactive shell in a container
    "hostname": "worker-1",
    "output": "A shell was spawned in a container with an attached terminal",
    "output_fields": {
        "container.id": "4f1d2c3b5a69",
        "evt.type": "execve",
        "evt.time": 1714557800000000000,
        "proc.cmdline": "bash",
        "proc.name": "bash",
        "proc.pname": "runc",
        "proc.tty": 34816,
        "user.name": "root",
    },
    "priority": "Notice",
    "rule": "Terminal shell in container",
    "source": "syscall",
    "tags": ["maturity_stable", "container", "shell", "mitre_execution", "T1059"],
    "time": "2024-05-01T10:03:20Z",
}

FALCO_K8S = {
    "output": "x",
    "output_fields": {"ka.verb": "create"},
    "priority": "Warning",
    "rule": "r",
    "source": "k8saudit",
}


def test_falco_alerts_become_events_garrison_rules_evaluate(rules: RuleSet) -> None:
    lines = [json.dumps(d) for d in (FALCO_MINER, FALCO_CLEAR_LOG, FALCO_PRIV_MOUNT, FALCO_SHELL, FALCO_K8S)]
    lines += ["not json", "[1, 2]", json.dumps({"rule": "no fields"}), ""]
    stats = ImportStats()
    pairs = list(read_falco(lines, stats))
    assert [a.rule for _, a in pairs] == [
        "Known Cryptominer Process Executed",
        "Clear Log Activities",
        "Mount Launched in Privileged Container",
        "Terminal shell in container",
    ]
    assert (stats.events, stats.malformed, stats.unsupported) == (4, 3, 1)
    assert stats.unsupported_types == {"falco:k8saudit": 1}
    (miner, _), (log, _), (mount, _), (shell, _) = pairs
    assert _names(rules, miner) == ["Crypto miner executed"]
    assert miner.field("container.id") == "4f1d2c3b5a69" and miner.field("k8s.ns.name") == "shop"
    assert miner.field("proc.pid") == 4242 and miner.time_ns == 1714557600123456789
    assert miner.field("proc.aname", "2") is None  # Falco did not print it: absent, not guessed
    assert _names(rules, log) == ["System log removed"]
    assert log.field("evt.arg", "flags") == "O_TRUNC|O_CREAT|O_WRONLY|O_CLOEXEC"
    assert _names(rules, mount) == ["Privileged command in a container"]
    assert _names(rules, shell) == []


def test_falco_alert_kept_for_triage() -> None:
    ((ev, alert),) = read_falco([json.dumps(FALCO_MINER)])
    a = falco_alert_of(ev, alert)
    assert (a.rule, a.priority, a.severity.name, a.count) == (
        "Known Cryptominer Process Executed",
        "Critical",
        "CRITICAL",
        1,
    )
    assert (a.mitre_tactic, a.mitre_technique) == ("mitre_impact", "T1496")
    assert a.entities.container == "4f1d2c3b5a69" and a.entities.user == "root" and a.entities.namespace == "shop"
    assert a.time.startswith("2024-05-01T10:00:00.12345")


POD = {
    "namespace": "shop",
    "name": "web-7d9c",
    "container": {
        "id": "containerd://551e161c47d8ff0eb665438a7bcd5b4e3ef5a297282b40a92b7c77d6bd168eb3",
        "name": "web",
        "image": {
            "id": "docker.io/library/nginx@sha256:9b0fa6c3a3b1cd1e6b0d6b2a6f1c02e36a9d2b6ffb0a5b7d1e2f3a4b5c6d7e8f",
            "name": "docker.io/library/nginx:1.25",
        },
        "start_time": "2024-05-01T09:00:00Z",
        "pid": 1,
    },
    "pod_labels": {"app": "web"},
    "workload": "web",
    "workload_kind": "Deployment",
}


def _proc(pid: int, binary: str, arguments: str, *, pod: bool = True, **extra: object) -> dict[str, object]:
    p: dict[str, object] = {
        "exec_id": f"d29ya2VyLTE6{pid}",
        "pid": pid,
        "uid": 0,
        "cwd": "/",
        "binary": binary,
        "arguments": arguments,
        "flags": "execve clone",
        "start_time": "2024-05-01T10:00:00.000000000Z",
        "auid": 4294967295,
        "parent_exec_id": "d29ya2VyLTE6MQ==",
        "tid": pid,
        **extra,
    }
    if pod:
        p["pod"] = POD
        p["docker"] = "551e161c47d8ff0eb665438a7bcd5b4"
    return p


def _line(kind: str, body: dict[str, object], t: str = "2024-05-01T10:00:01.500000000Z") -> str:
    return json.dumps({kind: body, "node_name": "worker-1", "time": t})


TETRAGON = [
    _line(
        "process_exec",
        {
            "process": _proc(101, "/tmp/xmrig", "-o stratum+tcp://pool.minexmr.com:4444 --donate-level 1"),
            "parent": _proc(100, "/bin/sh", "-c /tmp/xmrig"),
        },
    ),
    _line(
        "process_exec",
        {
            "process": _proc(201, "/bin/bash", '-c "id; cat /etc/passwd"'),
            "parent": _proc(200, "/usr/sbin/nginx", '-g "daemon off;"'),
            "ancestors": [_proc(1, "/usr/bin/containerd-shim-runc-v2", "-namespace k8s.io")],
        },
    ),
    _line(
        "process_kprobe",
        {
            "process": _proc(
                301, "/usr/bin/curl", "-s http://169.254.169.254/latest/meta-data/iam/security-credentials/"
            ),
            "parent": _proc(300, "/bin/sh", ""),
            "function_name": "tcp_connect",
            "args": [
                {
                    "sock_arg": {
                        "family": "AF_INET",
                        "type": "SOCK_STREAM",
                        "protocol": "IPPROTO_TCP",
                        "mark": 0,
                        "priority": 0,
                        "saddr": "10.244.0.12",
                        "daddr": "169.254.169.254",
                        "sport": 41822,
                        "dport": 80,
                        "cookie": 18446616340829371392,
                        "state": "TCP_SYN_SENT",
                    }
                }
            ],
            "action": "KPROBE_ACTION_POST",
            "policy_name": "connect",
        },
    ),
    _line(
        "process_kprobe",
        {
            "process": _proc(401, "/usr/bin/cat", "/etc/shadow", pod=False),
            "parent": _proc(400, "/bin/bash", "", pod=False),
            "function_name": "security_file_permission",
            "args": [{"file_arg": {"path": "/etc/shadow", "permission": "-rw-r-----"}}, {"int_arg": 4}],
            "return": {"int_arg": 0},
            "action": "KPROBE_ACTION_POST",
            "policy_name": "file-monitoring",
        },
    ),
    _line(
        "process_kprobe",
        {  # look-alike: the history appended to
            "process": _proc(501, "/bin/bash", "", pod=False),
            "function_name": "security_file_permission",
            "args": [{"file_arg": {"path": "/root/.bash_history", "permission": "-rw-------"}}, {"int_arg": 2}],
            "action": "KPROBE_ACTION_POST",
        },
    ),
    _line(
        "process_kprobe",
        {
            "process": _proc(502, "/usr/bin/truncate", "-s 0 /root/.bash_history", pod=False),
            "function_name": "security_path_truncate",
            "args": [{"path_arg": {"path": "/root/.bash_history", "permission": "-rw-------"}}],
            "action": "KPROBE_ACTION_POST",
        },
    ),
    _line(
        "process_exit",
        {
            "process": _proc(101, "/tmp/xmrig", ""),
            "parent": _proc(100, "/bin/sh", ""),
            "signal": "SIGKILL",
            "time": "2024-05-01T10:00:09Z",
        },
    ),
    _line("process_tracepoint", {"process": _proc(600, "/bin/ls", ""), "subsys": "raw_syscalls", "event": "sys_enter"}),
    _line(
        "process_kprobe",
        {"process": _proc(700, "/bin/ls", ""), "function_name": "sys_ptrace", "args": [{"int_arg": 16}]},
    ),
    "{broken",
]


def test_tetragon_events_evaluate_with_garrison_rules(rules: RuleSet) -> None:
    stats = ImportStats()
    events = list(read_tetragon(TETRAGON, stats))
    assert [e.kind for e in events] == ["execve", "execve", "connect", "openat", "openat", "openat", "procexit"]
    assert (stats.events, stats.malformed, stats.unsupported) == (7, 1, 2)
    assert stats.unsupported_types == {"process_tracepoint": 1, "process_kprobe:sys_ptrace": 1}
    miner, shell, meta, shadow, append, trunc, exit_ = events

    assert _names(rules, miner) == ["Crypto miner executed"]
    assert miner.field("proc.name") == "xmrig" and miner.field("proc.pname") == "sh"
    assert miner.field("proc.cmdline") == "xmrig -o stratum+tcp://pool.minexmr.com:4444 --donate-level 1"
    assert miner.field("container.id") == "551e161c47d8"
    assert miner.field("container.image") == "docker.io/library/nginx:1.25"
    assert miner.field("container.image.tag") == "1.25"
    assert (
        miner.field("container.image.digest", None)
        == "sha256:9b0fa6c3a3b1cd1e6b0d6b2a6f1c02e36a9d2b6ffb0a5b7d1e2f3a4b5c6d7e8f"
    )
    assert miner.field("k8s.ns.name") == "shop" and miner.field("k8s.pod.name") == "web-7d9c"
    assert miner.field("evt.hostname") == "worker-1"
    assert miner.time_ns == parse_time("2024-05-01T10:00:01.5Z")

    assert _names(rules, shell) == ["Web shell"]
    assert shell.field("proc.aname", "2") == "containerd-shim-runc-v2"
    assert shell.field("proc.args") == "-c id; cat /etc/passwd"

    assert "Cloud metadata service access" in _names(rules, meta)
    assert (meta.field("fd.sip"), meta.field("fd.sport"), meta.field("fd.l4proto")) == ("169.254.169.254", 80, "tcp")

    assert _names(rules, shadow) == ["Shadow file read"]
    assert shadow.field("container.id") == "host"
    assert _names(rules, append) == []
    assert append.field("evt.arg", "flags") == "O_WRONLY"
    assert _names(rules, trunc) == ["Shell history cleared"]
    assert _names(rules, exit_) == []


def test_parse_time() -> None:
    assert parse_time("2024-05-01T10:00:00Z") == 1714557600 * 10**9
    assert parse_time("2024-05-01T10:00:00.123456789Z") == 1714557600 * 10**9 + 123456789
    assert parse_time("2024-05-01T12:00:00.5+02:00") == 1714557600 * 10**9 + 500_000_000
    assert parse_time("yesterday") == 0


def test_oversized_line_counted() -> None:
    stats = ImportStats()
    big = json.dumps({**FALCO_MINER, "output": "x" * (2 << 20)})
    assert list(read_falco([big], stats)) == []
    assert stats.oversized == 1


def test_cli_import_tetragon_and_falco(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from garrison.cli.main import main

    tet = tmp_path / "tetragon.jsonl"
    tet.write_text("\n".join(TETRAGON) + "\n")
    assert (
        main(["runtime", "import", "--from", "tetragon", str(tet), "--no-default-rules", "--rules", str(NODE_RULES)])
        == 0
    )
    out, err = capsys.readouterr()
    rules = sorted(json.loads(x)["rule"] for x in out.splitlines())
    assert rules == [
        "Cloud metadata service access",
        "Crypto miner executed",
        "Shadow file read",
        "Shell history cleared",
        "Web shell",
    ]
    assert "7 event(s) from 10 line(s), 5 alert(s)" in err
    assert "1 malformed" in err and "process_tracepoint 1" in err

    fal = tmp_path / "falco.jsonl"
    fal.write_text(json.dumps(FALCO_MINER) + "\n" + json.dumps(FALCO_SHELL) + "\n")
    assert main(["runtime", "import", "--from", "falco", str(fal)]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(x) for x in out.splitlines()]
    # garrison's alert on the miner, then Falco's own two alerts (kept for triage).
    assert [a["rule"] for a in lines] == [
        "Crypto miner executed",
        "Known Cryptominer Process Executed",
        "Terminal shell in container",
    ]
    assert lines[1]["entities"]["container"] == "4f1d2c3b5a69"
