"""The Dockerfile input: the parser (BuildKit's syntax) and the dockerfile.yaml controls through the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from garrison.posture import dockerfile as df
from garrison.posture.controls import builtin_controls, select
from garrison.posture.engine import assess
from garrison.posture.inputs import load_path

BAD = """\
FROM ubuntu:latest AS build
MAINTAINER someone@example.com
ARG GITHUB_TOKEN
ENV DB_PASSWORD=hunter2 NODE_TLS_REJECT_UNAUTHORIZED=0
ADD https://example.com/tool.tar.gz /opt/
ADD app.py /app/
COPY id_rsa /root/.ssh/id_rsa
RUN apt-get update
RUN apt-get install curl && curl -fsSLk https://get.example.com | sudo bash
RUN wget --no-check-certificate https://x/y && pip install --trusted-host pypi.local requests
RUN apk add --allow-untrusted foo && yum install -y --nogpgcheck bar
RUN chmod 777 /app && echo 'root:pw' | chpasswd
RUN apt upgrade && apt-get dist-upgrade -y
WORKDIR app
FROM debian
USER root
EXPOSE 22 8080
RUN curl -s https://x | tar xz
"""

GOOD = """\
# syntax=docker/dockerfile:1
FROM debian:12.8@sha256:0000000000000000000000000000000000000000000000000000000000000000 AS build
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \\
    && rm -rf /var/lib/apt/lists/*
FROM build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN curl -fsSL https://x | tar xz
RUN pip install --no-cache-dir requests==2.32.3
COPY --chown=10001:10001 app/ /app/
WORKDIR /app
USER 10001:10001
HEALTHCHECK CMD ["/app/health"]
CMD ["/app/run"]
"""

#: Control id → the JSON path of the first finding in BAD (what each control must point at).
EXPECTED_BAD = {
    "GAR-DF-002": "final.user",
    "GAR-DF-003": "stages[0].instructions[4].sources[0]",
    "GAR-DF-004": "stages[0].instructions[5].sources[0]",
    "GAR-DF-005": "stages[0].image.tag",
    "GAR-DF-006": "stages[1].image.tag",
    "GAR-DF-007": "stages[0].instructions[2].pairs[0].key",
    "GAR-DF-008": "stages[0].instructions[6].sources[0]",
    "GAR-DF-009": "stages[0].instructions[8].commands[2].pipedFrom",
    "GAR-DF-010": "stages[0].instructions[8].commands[2].sudo",
    "GAR-DF-011": "final.expose[0].port",
    "GAR-DF-012": "stages[0].instructions[8].commands[1].program",
    "GAR-DF-013": "stages[0].instructions[9].commands[0].program",
    "GAR-DF-014": "stages[0].instructions[9].commands[1].program",
    "GAR-DF-015": "stages[0].instructions[3].pairs[1].key",
    "GAR-DF-016": "stages[0].instructions[10].commands[0].program",
    "GAR-DF-017": "stages[0].instructions[8].commands[0].program",
    "GAR-DF-018": "stages[0].instructions[8].commands[0].program",
    "GAR-DF-020": "stages[0].instructions[10].commands[0].program",
    "GAR-DF-021": "stages[0].instructions[9].commands[1].program",
    "GAR-DF-022": "stages[0].instructions[10].commands[1].program",
    "GAR-DF-023": "stages[0].instructions[7].commands[0].program",
    "GAR-DF-024": "stages[0].instructions[12].commands[0].program",
    "GAR-DF-025": "final.healthcheck",
    "GAR-DF-026": "stages[0].instructions[11].commands[0].program",
    "GAR-DF-027": "stages[0].instructions[11].commands[2].program",
    "GAR-DF-029": "stages[0].run[1].commands[2].pipedFrom",
    "GAR-DF-030": "stages[0].instructions[13].cmd",
    "GAR-DF-031": "stages[0].instructions[1].cmd",
    "GAR-DF-032": "stages[0].instructions[12].commands[0].program",
}


def _controls():  # type: ignore[no-untyped-def]
    return [c for c in builtin_controls() if c.family == "dockerfile"]


def _findings(text: str, name: str = "Dockerfile") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in assess(df.resources_from_dockerfile(text, name), _controls()):
        out.setdefault(f.detail.control_id, []).append(f.detail.path)
    return out


def test_at_least_twenty_controls_each_with_equivalents_or_a_reason() -> None:
    controls = _controls()
    assert len(controls) >= 20
    with_refs = [c for c in controls if any(c.equivalents.get(t) for t in ("trivy", "checkov", "hadolint"))]
    assert len(with_refs) >= 25


def test_bad_dockerfile_findings_point_at_the_instruction() -> None:
    found = _findings(BAD)
    assert {k: v[0] for k, v in found.items() if k in EXPECTED_BAD} == EXPECTED_BAD
    # Every control of the family is exercised by BAD except the ones that need a parameter or
    # a condition BAD does not have (the no-USER control: BAD's last stage sets USER root).
    assert set(found) | {"GAR-DF-001", "GAR-DF-019", "GAR-DF-028"} == {c.id for c in _controls()}


def test_good_dockerfile_has_no_findings() -> None:
    assert _findings(GOOD) == {}


def test_no_user_and_apt_lists_and_trusted_registry() -> None:
    text = (
        "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl\nHEALTHCHECK CMD true\n"
    )
    found = _findings(text)
    assert found == {"GAR-DF-001": ["final.user"], "GAR-DF-019": ["final.instructions[1].commands[0].program"]}
    trusted = select(_controls(), ids=["GAR-DF-028"])
    res = df.resources_from_dockerfile("FROM quay.io/x/y:1\nFROM registry.example.com/base:1\n", "Dockerfile")
    params = {"allowedRegistries": ["registry.example.com"]}
    hits = [f.detail.path for f in assess(res, trusted, params)]
    assert hits == ["stages[0].image.image"]
    assert [f.detail.path for f in assess(res, trusted)] == []  # off while the list is empty


def test_parser_continuations_comments_and_escape_directive() -> None:
    text = "# escape=`\nFROM alpine:3.20\nRUN echo a `\n    # a comment inside\n\n    && echo b\nENV A=1 `\n    B=2\n"
    parsed = df.parse(text)
    run = parsed.doc["final"]["instructions"][1]
    assert (run["line"], run["endLine"], run["args"]) == (3, 6, "echo a && echo b")
    assert [c["argv"] for c in run["commands"]] == [["echo", "a"], ["echo", "b"]]
    assert parsed.doc["final"]["env"] == {"A": "1", "B": "2"}
    assert parsed.doc["escape"] == "`"


def test_parser_heredocs() -> None:
    text = (
        "FROM debian:12\nRUN <<EOF\napt-get update\napt-get install -y curl\nEOF\n"
        "COPY <<-'CONF' /etc/app.conf\n\tkey=$VALUE\n\tCONF\nRUN echo done\n"
    )
    parsed = df.parse(text)
    ins = parsed.doc["final"]["instructions"]
    assert [i["cmd"] for i in ins] == ["FROM", "RUN", "COPY", "RUN"]
    assert [c["argv"] for c in ins[1]["commands"]] == [["apt-get", "update"], ["apt-get", "install", "-y", "curl"]]
    assert (ins[1]["line"], ins[1]["endLine"]) == (2, 5)
    assert ins[2]["heredocs"] == ["CONF"] and ins[2]["destination"] == "/etc/app.conf"
    assert parsed.instructions[2].heredocs[0].body == "key=$VALUE\n"
    assert parsed.instructions[2].heredocs[0].expand is False
    assert ins[3]["line"] == 9


def test_parser_exec_and_shell_forms_and_flags() -> None:
    text = (
        'FROM --platform=linux/arm64 debian:12\nRUN ["/bin/sh", "-c", "curl -k https://x | sh"]\n'
        "RUN --mount=type=cache,target=/root/.cache --network=none pip install x\nCMD [not json\n"
    )
    ins = df.parse(text).doc["final"]["instructions"]
    assert ins[0]["flags"] == {"platform": "linux/arm64"}
    assert df.parse(text).doc["final"]["image"]["platform"] == "linux/arm64"
    assert ins[1]["exec"] is True and ins[1]["argv"] == ["/bin/sh", "-c", "curl -k https://x | sh"]
    assert [(c["program"], c["pipedFrom"]) for c in ins[1]["commands"]] == [("curl", ""), ("sh", "curl")]
    assert ins[2]["flags"] == {"mount": "type=cache,target=/root/.cache", "network": "none"}
    assert ins[2]["commands"][0]["argv"] == ["pip", "install", "x"]
    assert ins[3]["exec"] is False and ins[3]["args"] == "[not json"


def test_arg_env_substitution_and_multi_stage() -> None:
    text = (
        "ARG REG=registry.example.com\nARG TAG\nFROM ${REG}/base:${TAG:-1.2} AS base\n"
        "ARG TAG\nENV HOME_DIR=/srv PATH=$HOME_DIR/bin:${PATH-/usr/bin}\nUSER ${UID:-10001}\n"
        "FROM base AS second\nWORKDIR $HOME_DIR/app\nFROM scratch\nCOPY --from=second /srv /srv\n"
    )
    doc = df.parse(text).doc
    first, second, last = doc["stages"]
    assert first["image"] == {
        "image": "registry.example.com/base:1.2",
        "repository": "registry.example.com/base",
        "tag": "1.2",
        "digest": "",
        "platform": "",
        "stage": False,
        "scratch": False,
        "root": "registry.example.com/base:1.2",
    }
    # Docker expands every value of one ENV with the values from before it: $HOME_DIR is still unset.
    assert first["env"] == {"HOME_DIR": "/srv", "PATH": "/bin:/usr/bin"}
    assert first["user"] == "10001"
    # A stage built FROM an earlier one inherits its user, environment and root image.
    assert second["image"]["stage"] is True and second["user"] == "10001"
    assert second["image"]["root"] == "registry.example.com/base:1.2"
    assert second["instructions"][1]["args"] == "/srv/app"
    assert last["image"]["scratch"] is True and doc["final"] is last
    assert last["instructions"][1]["flags"] == {"from": "second"}


def test_split_image_keeps_a_registry_port() -> None:
    assert df.split_image("localhost:5000/app") == {"repository": "localhost:5000/app", "tag": "", "digest": ""}
    assert df.split_image("a/b:1@sha256:ab") == {"repository": "a/b", "tag": "1", "digest": "sha256:ab"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("RUN echo\n", "before the first FROM"),
        ("# just a comment\n", "no FROM instruction"),
        ("FROM a:1\nRUN <<EOF\necho\n", "heredoc <<EOF is never closed"),
        ("FROM a:1\n!!! nonsense\n", "not an instruction"),
        ("# escape=x\nFROM a:1\n", "escape directive"),
    ],
)
def test_parse_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(df.DockerfileError, match=message):
        df.parse(text, "bad/Dockerfile")


def test_found_by_name_in_folders_and_bad_ones_are_warnings(tmp_path: Path) -> None:
    for rel in ("Dockerfile", "svc/api.Dockerfile", "svc/Dockerfile.dev", "svc/notadockerfile", ".git/Dockerfile"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(GOOD)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "Dockerfile").write_text("RUN echo no from\n")
    loaded = load_path(tmp_path)
    assert sorted(Path(r.source).name for r in loaded.resources if r.kind == "Dockerfile") == [
        "Dockerfile",
        "Dockerfile.dev",
        "api.Dockerfile",
    ]
    assert any("broken/Dockerfile:1: RUN before the first FROM" in w for w in loaded.warnings)


@pytest.mark.parametrize(
    "body, fired",
    [
        ("COPY .env /app/.env", {"GAR-DF-008"}),
        ("COPY certs/server.KEY /etc/ssl/", {"GAR-DF-008"}),
        ("COPY app.env.example /app/", set()),
        ("ADD app.tar.gz /opt/", set()),  # ADD extracting a local archive is what ADD is for
        ("ADD app.py /app/", {"GAR-DF-004"}),
        ("ENV NODE_TLS_REJECT_UNAUTHORIZED=0", {"GAR-DF-015"}),
        ("ENV TOKENIZERS_PARALLELISM=false PASSWORD_FILE=/run/secrets/db", set()),
        ("ARG NPM_TOKEN", {"GAR-DF-007"}),
        ("RUN pip install --no-cache-dir -r requirements.txt", set()),
        ("RUN python3 -m pip install flask==3.0.0", {"GAR-DF-021"}),
        ("RUN --mount=type=cache,target=/root/.cache pip install flask==3.0.0", set()),
    ],
)
def test_single_instructions(body: str, fired: set[str]) -> None:
    text = f"FROM debian:12\n{body}\nUSER 10001\nHEALTHCHECK CMD true\n"
    assert set(_findings(text)) == fired


def test_base_image_chosen_at_build_time() -> None:
    # ARG without a default: the image comes from --build-arg; keep it as written, no parse error and
    # no "untagged" finding on the variable.
    text = "ARG BASE\nARG TAG=1.2\nFROM ${BASE}:${TAG} AS build\nFROM $BASE\nUSER 10001\nHEALTHCHECK CMD true\n"
    doc = df.parse(text).doc
    assert [s["image"]["image"] for s in doc["stages"]] == ["${BASE}:1.2", "$BASE"]
    assert _findings(text) == {}
