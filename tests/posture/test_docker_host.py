"""``docker[:HOST]`` against a real, private, loopback-only dockerd with real containers in good and bad
configurations (``--privileged`` cannot run on these machines, so the privileged control is checked on
the inspect document alone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from garrison.config import Settings
from garrison.posture.controls import builtin_controls
from garrison.posture.docker_host import container_resource, parse_dockerd_args
from garrison.posture.engine import assess
from garrison.posture.inputs import load_source

BENCH = Path(__file__).resolve().parents[3] / "shared" / "reference" / "docker-bench" / "check_ids.tsv"


def _controls():  # type: ignore[no-untyped-def]
    return [c for c in builtin_controls() if c.family == "docker"]


def _by_cis() -> dict[str, str]:
    return {c.id: c.frameworks["cis-docker"][0] for c in _controls()}


def test_ids_and_count_follow_docker_bench() -> None:
    if not BENCH.is_file():
        pytest.skip(f"{BENCH} is absent (docker-bench's ids live in ../shared)")
    ids = {line.split("\t", 1)[0] for line in BENCH.read_text().splitlines() if "\t" in line}
    refs = set(_by_cis().values())
    assert refs <= ids
    assert len(refs) >= 30


def test_privileged_and_dockerd_flags_from_documents() -> None:
    doc = container_resource(
        {
            "Name": "/p",
            "Id": "x",
            "HostConfig": {"Privileged": True, "ReadonlyRootfs": True},
            "Config": {"User": "1000"},
        }
    )
    found = {_by_cis()[f.detail.control_id] for f in assess([_res(doc)], _controls())}
    assert "5.5" in found and "5.13" not in found and "4.1" not in found
    assert parse_dockerd_args(
        ["--icc=false", "--insecure-registry", "a:5000", "--insecure-registry=b", "-l", "debug", "--live-restore"]
    ) == {
        "icc": False,
        "insecure-registries": ["a:5000", "b"],
        "log-level": "debug",
        "live-restore": True,
    }


def _res(doc):  # type: ignore[no-untyped-def]
    from garrison.posture.resources import Resource

    return Resource(obj=doc)


@pytest.mark.slow
@pytest.mark.docker
def test_real_daemon_good_and_bad_containers(
    dockerd: Any, test_images: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [image] = dockerd.load(test_images.debian_archive)
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(f"FROM {image}\nUSER 10001:10001\nHEALTHCHECK CMD true\n")
    dockerd.cli("build", "-q", "-t", "garrison/good:1", str(tmp_path / "ctx"))
    # A build with the benchmark's section-4 mistakes, as its history shows them (4.7, 4.9, 4.10).
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "hello.txt").write_text("hello\n")
    (tmp_path / "bad" / "Dockerfile").write_text(
        f"FROM {image}\nARG API_TOKEN=s3cr3t\nENV DB_PASSWORD=changeme\nADD hello.txt /hello.txt\n"
        'RUN true || apt-get update\nRUN test -n "$API_TOKEN"\n'
    )
    dockerd.cli("build", "-q", "-t", "garrison/badbuild:1", str(tmp_path / "bad"))
    # Created, not started: port bindings are recorded but nothing listens on the host.
    dockerd.cli(
        "create", "--name", "bad", "--cap-add", "SYS_ADMIN", "--pid", "host", "--ipc", "host", "--uts", "host",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", "/etc:/host-etc:ro", "-p", "80:80",
        "--restart", "always", "--device", "/dev/null:/dev/xnull", "--userns", "host", image, "sleep", "300",
    )  # fmt: skip
    dockerd.cli(
        "run", "-d", "--name", "good", "--read-only", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "50",
        "--security-opt", "no-new-privileges", "--restart", "on-failure:3", "--cap-drop", "ALL",
        "--network", "none", "garrison/good:1", "sleep", "300",
    )  # fmt: skip
    dockerd.cli("exec", "-d", "-u", "root", "good", "sleep", "60")
    try:
        loaded = load_source(f"docker:{dockerd.host}", {"settings": Settings(docker_host=dockerd.host)})
        kinds = sorted({r.kind for r in loaded.resources})
        assert kinds == ["DockerContainer", "DockerDaemon", "DockerImage"]
        daemon = next(r for r in loaded.resources if r.kind == "DockerDaemon")
        # The daemon.json and flags of *this* dockerd were found through /proc.
        assert daemon.obj["configFile"] == str(dockerd.root / "daemon.json")
        assert daemon.obj["settings"]["iptables"] is False and daemon.obj["files"]["docker-socket"]["exists"]
        found: dict[str, set[str]] = {}
        for f in assess(loaded.resources, _controls()):
            found.setdefault(f.detail.object.name, set()).add(_by_cis()[f.detail.control_id])
        assert found["bad"] >= {
            "5.2", "5.3", "5.4", "5.6", "5.8", "5.11", "5.12", "5.13", "5.14", "5.15", "5.16", "5.17",
            "5.18", "5.21", "5.22", "5.26", "5.27", "5.29", "5.31", "5.32", "4.1",
        }  # fmt: skip
        # The hardened container passes everything but the root exec session (5.24).
        assert found["good"] == {"5.24"}
        assert found.get("garrison/good:1", set()) == set() and found[image] == {"4.1", "4.6"}
        assert found["garrison/badbuild:1"] == {"4.1", "4.6", "4.7", "4.9", "4.10"}
        bad_image = next(r for r in loaded.resources if r.name == "garrison/badbuild:1")
        assert bad_image.obj["History"][-1]["buildArgs"] == [{"name": "API_TOKEN", "value": "s3cr3t"}]
        # The loopback test daemon's own settings: iptables off (2.4) is a finding, as the benchmark says.
        assert {"2.4", "2.14", "2.15"} <= found[daemon.name]
        # The same through the CLI, the socket given by --docker-host.
        from garrison.cli.main import main

        capsys.readouterr()
        code = main(["posture", "docker", "--docker-host", dockerd.host, "--framework", "cis-docker", "-f", "json"])
        text = capsys.readouterr().out
        assert code == 0 and "GAR-DKR-068" in text and '"bad"' in text
    finally:
        dockerd.cli("rm", "-f", "bad", "good", check=False)


# ------------------------------------------------------------------------------ one case per control


def _daemon(settings: dict, info: dict, security: dict, mode: str, owner: str) -> dict:  # type: ignore[type-arg]
    from garrison.posture.docker_host import effective_settings

    modes = {
        "docker.service": "0644",
        "docker.socket": "0644",
        "etc-docker": "0755",
        "docker-socket": "0660",
        "daemon.json": "0644",
        "etc-default-docker": "0644",
        "tlscacert": "0444",
        "tlscert": "0444",
        "tlskey": "0400",
        "containerd.sock": "0660",
    }
    owners = {"docker-socket": "root:docker"}
    files = {
        role: {"path": f"/x/{role}", "exists": True, "mode": mode or m, "owner": owner or owners.get(role, "root:root")}
        for role, m in modes.items()
    }
    return {
        "kind": "DockerDaemon",
        "metadata": {"name": "host"},
        "info": info,
        "settings": effective_settings({}, settings),
        "securityOptions": security,
        "files": files,
        "registryCertificates": [
            {"path": "/etc/docker/certs.d/r/ca.crt", "mode": mode or "0444", "owner": owner or "root:root"}
        ],
    }


BAD_DAEMON = _daemon(
    {
        "log-level": "debug",
        "iptables": False,
        "insecure-registries": ["reg:5000"],
        "hosts": ["tcp://0.0.0.0:2375"],
        "cgroup-parent": "/custom",
        "storage-opts": ["dm.basesize=20G"],
        "seccomp-profile": "unconfined",
        "bridge": "docker0",
    },
    {
        "Driver": "aufs",
        "LoggingDriver": "json-file",
        "LiveRestoreEnabled": False,
        "ExperimentalBuild": True,
        "Swarm": {"LocalNodeState": "active"},
        "Plugins": {"Authorization": None},
    },
    {"seccomp": {"profile": "unconfined"}},
    "0666",
    "nobody:nogroup",
)
GOOD_DAEMON = _daemon(
    {
        "icc": False,
        "userns-remap": "default",
        "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}},
        "authorization-plugins": ["authz"],
        "log-driver": "syslog",
        "no-new-privileges": True,
        "live-restore": True,
        "userland-proxy": False,
        "hosts": ["unix:///var/run/docker.sock"],
        "tlsverify": True,
    },
    {
        "Driver": "overlay2",
        "LoggingDriver": "syslog",
        "LiveRestoreEnabled": True,
        "ExperimentalBuild": False,
        "Swarm": {"LocalNodeState": "inactive"},
        "Plugins": {"Authorization": ["authz"]},
    },
    {"seccomp": {"profile": "builtin"}, "userns": {}},
    "",
    "",
)
_BAD_HOST = {
    "Privileged": True,
    "CapAdd": ["CAP_SYS_ADMIN"],
    "NetworkMode": "host",
    "PidMode": "host",
    "IpcMode": "host",
    "UTSMode": "host",
    "UsernsMode": "host",
    "SecurityOpt": ["label=disable", "seccomp=unconfined", "apparmor=unconfined"],
    "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "80"}]},
    "Memory": 0,
    "NanoCpus": 0,
    "CpuQuota": 0,
    "CpuShares": 0,
    "ReadonlyRootfs": False,
    "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
    "Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm"}],
    "CgroupParent": "/x",
    "PidsLimit": None,
}
BAD_CONTAINERS = [
    container_resource(
        {
            "Name": "/bad",
            "Id": "b1",
            "Path": "/usr/sbin/sshd",
            "Args": ["-D"],
            "AppArmorProfile": "unconfined",
            "HostConfig": _BAD_HOST,
            "Config": {"User": ""},
            "Mounts": [
                {"Type": "bind", "Source": "/etc", "Destination": "/host-etc"},
                {
                    "Type": "bind",
                    "Source": "/var/run/docker.sock",
                    "Destination": "/var/run/docker.sock",
                    "Propagation": "rshared",
                },
            ],
            "State": {"Running": True},
        },
        [{"Privileged": True, "ProcessConfig": {"user": "root"}}],
    ),
    container_resource(
        {
            "Name": "/bridge",
            "Id": "b2",
            "HostConfig": {
                **_BAD_HOST,
                "NetworkMode": "default",
                "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 10},
            },
            "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}}},
            "Config": {"User": "root"},
        }
    ),
]
GOOD_CONTAINER = container_resource(
    {
        "Name": "/good",
        "Id": "g1",
        "Path": "/app/run",
        "Args": [],
        "AppArmorProfile": "docker-default",
        "HostConfig": {
            "Privileged": False,
            "CapAdd": None,
            "CapDrop": ["ALL"],
            "NetworkMode": "appnet",
            "PidMode": "",
            "IpcMode": "private",
            "UTSMode": "",
            "UsernsMode": "",
            "SecurityOpt": ["no-new-privileges"],
            "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
            "Memory": 67108864,
            "NanoCpus": 500000000,
            "ReadonlyRootfs": True,
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
            "Devices": [],
            "CgroupParent": "",
            "PidsLimit": 100,
        },
        "NetworkSettings": {"Networks": {"appnet": {}}},
        "Mounts": [
            {"Type": "volume", "Source": "/var/lib/docker/volumes/d", "Destination": "/data", "Propagation": ""}
        ],
        "Config": {"User": "10001", "Healthcheck": {"Test": ["CMD", "/app/health"]}},
    },
    [{"Privileged": False, "ProcessConfig": {"user": "10001"}}],
)


#: The base image's first step: its root file system archive (not reported by 4.9).
BASE_ADD = "/bin/sh -c #(nop) ADD file:4b03b5f551e3fbdf47ec609712007327828f7530cc3455c43bbcdcaf449a75a9 in / "


def _image(name: str, config: dict, history: list) -> dict:  # type: ignore[type-arg]
    from garrison.posture.docker_host import image_resource

    return image_resource({"Id": f"sha256:{name}", "RepoTags": [name], "Config": config}, history)


BAD_IMAGE = _image(
    "bad:1",
    {"User": "", "Env": ["PATH=/usr/bin", "DB_PASSWORD=changeme"]},
    [  # newest first, as GET /images/{id}/history answers
        {"CreatedBy": "RUN |1 API_TOKEN=s3cr3t /bin/sh -c ./fetch # buildkit"},
        {"CreatedBy": "ADD app.tar.gz /srv # buildkit"},
        {"CreatedBy": "RUN /bin/sh -c apt-get update # buildkit"},
        {"CreatedBy": BASE_ADD},
    ],
)
GOOD_IMAGE = _image(
    "good:1",
    {"User": "app", "Healthcheck": {"Test": ["CMD", "true"]}, "Env": ["PATH=/usr/bin", "DB_PASSWORD_FILE=/run/s/db"]},
    [
        {"CreatedBy": "COPY app /srv # buildkit"},
        {"CreatedBy": "RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends curl # buildkit"},
        {"CreatedBy": BASE_ADD},
    ],
)


def test_image_history_and_env_findings_do_not_echo_secrets() -> None:
    got = {
        (f.detail.control_id, f.detail.path, f.detail.actual)
        for f in assess(
            [_res(BAD_IMAGE)], [c for c in _controls() if c.id in ("GAR-DKR-071", "GAR-DKR-072", "GAR-DKR-073")]
        )
    }
    assert got == {
        ("GAR-DKR-071", "History[1].CreatedBy", '"RUN /bin/sh -c apt-get update # buildkit"'),
        ("GAR-DKR-072", "History[2].CreatedBy", '"ADD app.tar.gz /srv # buildkit"'),
        ("GAR-DKR-073", "EnvVars[1].name", '"DB_PASSWORD"'),
        ("GAR-DKR-073", "History[3].buildArgs[0].name", '"API_TOKEN"'),
    }
    assert not any("changeme" in a or "s3cr3t" in a for _, _, a in got)


def _fired(docs: list) -> set[str]:  # type: ignore[type-arg]
    return {f.detail.control_id for f in assess([_res(d) for d in docs], _controls())}


@pytest.mark.parametrize("control_id", sorted(c.id for c in builtin_controls() if c.family == "docker"))
def test_each_control_fails_the_bad_host_and_passes_the_hardened_one(control_id: str) -> None:
    assert control_id in _fired([BAD_DAEMON, *BAD_CONTAINERS, BAD_IMAGE]), f"{control_id}: no finding on the bad host"
    assert control_id not in _fired([GOOD_DAEMON, GOOD_CONTAINER, GOOD_IMAGE]), (
        f"{control_id}: a finding on the hardened host"
    )
