"""The sensor's pure parts on crafted bytes: connector messages (and the lost-event count from sequence
gaps), /proc contents, cgroup paths → container ids, image references, Docker's inspect answer."""

from __future__ import annotations

import struct

import pytest

from garrison.runtime.node import netlink
from garrison.runtime.node.containers import container_id, info_from_inspect, split_image
from garrison.runtime.node.procfs import parse_raw

CID = "4f1d2c3b5a69" + "0" * 52


def _msg(what: int, cpu: int, seq: int, body: bytes) -> bytes:
    payload = struct.pack("=IIQ", what, cpu, 123_000) + body
    cn = struct.pack("=IIIIHH", netlink.CN_IDX_PROC, netlink.CN_VAL_PROC, seq, 0, len(payload), 0)
    total = 16 + len(cn) + len(payload)
    return struct.pack("=IHHII", total, 3, 0, 0, 0) + cn + payload


def test_connector_messages_and_lost_count() -> None:
    seqs = netlink.SeqTracker()
    fork = _msg(netlink.PROC_EVENT_FORK, 0, 10, struct.pack("=IIII", 100, 100, 200, 200))
    thread = _msg(netlink.PROC_EVENT_FORK, 0, 11, struct.pack("=IIII", 100, 100, 201, 200))  # a thread
    execv = _msg(netlink.PROC_EVENT_EXEC, 0, 12, struct.pack("=II", 200, 200))
    # cpu 0 jumps from 12 to 16: three events were dropped; cpu 1 starts its own sequence.
    exit_ = _msg(netlink.PROC_EVENT_EXIT, 0, 16, struct.pack("=IIIIII", 200, 200, 256, 17, 100, 100))
    other_cpu = _msg(netlink.PROC_EVENT_UID, 1, 500, struct.pack("=IIII", 300, 300, 1000, 0))
    events = netlink.parse(fork + thread + execv + exit_ + other_cpu, seqs)
    assert events == [
        ("fork", 123_000, 200, 100, 0),
        ("exec", 123_000, 200, 0, 0),
        ("exit", 123_000, 200, 256, 17),
        ("uid", 123_000, 300, 1000, 0),
    ]
    assert seqs.lost == 3
    assert netlink.parse(b"\x00" * 10, seqs) == []  # truncated: nothing, no crash


def test_proc_parse_full_and_gone() -> None:
    status = (
        b"Name:\tnginx\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t42\nNgid:\t0\nPid:\t42\nPPid:\t7\n"
        b"TracerPid:\t0\nUid:\t101\t101\t101\t101\nGid:\t102\t102\t102\t102\nNSpid:\t42\t1\n"
    )
    stat = b"42 (nginx: worker (x)) S 7 42 42 34816 42 4194560 " + b"0 " * 12 + b"9999 0"
    cgroup = f"12:pids:/docker/{CID}\n0::/system.slice/docker-{CID}.scope\n".encode()
    raw = ("/usr/sbin/nginx (deleted)", b"nginx: worker process\x00", status, "/var/www", cgroup, stat, b"1000")
    info = parse_raw(42, raw)
    assert (info.name, info.ppid, info.uid, info.gid, info.vpid) == ("nginx", 7, 101, 102, 1)
    assert info.exepath == "/usr/sbin/nginx" and info.args == ("nginx: worker process",)
    assert info.cgroup == f"/system.slice/docker-{CID}.scope"
    assert (info.pgid, info.sid, info.tty, info.start_ns) == (42, 42, 34816, 9999)
    assert info.cmdline == "nginx" and not info.partial and info.loginuid == 1000
    long = parse_raw(
        5, ("/opt/bin/kube-controller-manager", b"", b"Name:\tkube-controller\n", "", b"", b"", b"4294967295")
    )
    assert long.name == "kube-controller-manager"  # comm is cut at 15 characters; the exe names it in full
    assert long.partial  # no command line: the process was gone
    assert long.loginuid == -1  # (uid_t)-1, never logged in
    gone = parse_raw(6, ("", b"", b"", "", b"", b"", b""), ppid_hint=3)
    assert (gone.name, gone.ppid, gone.partial) == ("", 3, True)


@pytest.mark.parametrize(
    ("path", "want"),
    [
        (f"/docker/{CID}", (CID, "docker")),
        (f"/system.slice/docker-{CID}.scope", (CID, "docker")),
        (
            f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-{CID}.scope",
            (CID, "containerd"),
        ),
        (f"/kubepods/burstable/pod1234/{CID}", (CID, "cri")),
        (f"/machine.slice/libpod-{CID}.scope/container", (CID, "podman")),
        (f"/kubepods.slice/crio-{CID}.scope", (CID, "cri-o")),
        ("/user.slice/user-0.slice/session-3.scope", ("", "")),
        ("/", ("", "")),
    ],
)
def test_container_id_from_cgroup(path: str, want: tuple[str, str]) -> None:
    assert container_id(path) == want


def test_image_reference_and_inspect() -> None:
    assert split_image("registry:5000/team/app:1.2") == ("registry:5000/team/app", "1.2", "")
    assert split_image("alpine@sha256:abc") == ("alpine", "", "sha256:abc")
    assert split_image("registry:5000/app") == ("registry:5000/app", "", "")
    info = info_from_inspect(
        CID,
        "docker",
        {
            "Name": "/web",
            "Image": "sha256:feed",
            "Config": {"Image": "nginx:1.25", "Labels": {"io.kubernetes.pod.namespace": "shop"}},
            "HostConfig": {"Privileged": True},
        },
    )
    assert (info.id, info.name, info.image, info.image_tag, info.image_digest) == (
        CID[:12],
        "web",
        "nginx:1.25",
        "1.25",
        "sha256:feed",
    )
    assert info.privileged is True and info.label("io.kubernetes.pod.namespace") == "shop"
