"""Every ``garrison …`` command shown in README.md and docs/*.md runs as written and prints what is shown.

The commands are taken from ``console`` blocks (``$ `` lines, ``\\`` continuations; the lines up to the
next ``$`` are the output shown; ``$ echo $?`` and the number under it are the exit code the command
before must have, else 0). Each document's commands run in order through ``bash`` from its own copy of the
repository root (``.cache`` and ``docs`` linked in, ``../shared`` beside it), with the test's ``.venv/bin`` first on
``PATH``, a fresh cache directory and, already in it, the advisory database built once from
``../shared/vulndb``. What runs for real: the test images, a real registry (for ``127.0.0.1:5000``,
started on a free port and substituted), a real dockerd (for ``docker:``, with the app image loaded).
Commands that name a placeholder host (``registry.example.com``) are reported as skipped with the reason.

"Output still matches in shape": every output line shown must appear in the real output once numbers,
digests, absolute paths and ``file://`` URLs are blanked and runs of spaces and dashes are collapsed; a
line cut with ``…`` must begin a real line; a line that is only ``…`` stands for lines left out.
Besides, a ``$ garrison`` line outside a ``console`` block is an error: it would not be checked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.support.cache import REPO_ROOT
from tests.support.shared import SHARED, needs_vulndb

pytestmark = [pytest.mark.slow, needs_vulndb]

DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
#: Hosts that stand for "your registry" in examples: nothing can answer for them here.
PLACEHOLDER_HOSTS = ("registry.example.com", "example.com/", "ghcr.io/your-org")
#: The registry address the examples use; a real registry is started and its address put in its place.
EXAMPLE_REGISTRY = "127.0.0.1:5000"


@dataclass
class DocCommand:
    document: Path
    line: int
    command: str
    shown: list[str] = field(default_factory=list)
    exit_code: int = 0

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(REPO_ROOT)}:{self.line}"

    @property
    def placeholder(self) -> str:
        return next((h for h in PLACEHOLDER_HOSTS if h in self.command), "")


_FENCE = re.compile(r"^\s*```(\S*)\s*$")


def extract(document: Path) -> list[DocCommand]:
    """The commands of ``document``'s console blocks, with the output shown under each."""
    commands: list[DocCommand] = []
    lang: str | None = None
    current: DocCommand | None = None
    pending_exit = False
    lines = document.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        text = lines[i]
        fence = _FENCE.match(text)
        if fence:
            lang = fence.group(1) if lang is None else None
            current, pending_exit = None, False
        elif lang == "console":
            if text.startswith("$ "):
                start = i + 1
                cmd = text[2:]
                while cmd.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    cmd = cmd[:-1].rstrip() + " " + lines[i].strip()
                if cmd.strip() == "echo $?":
                    pending_exit = True
                elif re.match(r"(\w+=\S*\s+)*garrison\b", cmd):  # `GARRISON_X=… garrison …` too
                    current = DocCommand(document, start, cmd)
                    commands.append(current)
                    pending_exit = False
                else:
                    current = None
            elif pending_exit and current is not None:
                current.exit_code = int(text.strip())
                pending_exit = False
            elif current is not None and text.strip():
                current.shown.append(text)
        i += 1
    return commands


def _strip_comment(command: str) -> str:
    """``cmd … # note`` → ``cmd …`` (a ``#`` that starts a word, outside quotes)."""
    out, quote = [], ""
    for j, ch in enumerate(command):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (j == 0 or command[j - 1].isspace()):
            break
        out.append(ch)
    return "".join(out).strip()


def shape(line: str) -> str:
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)
    line = re.sub(r"file://\S+", "file:URL", line)
    line = re.sub(r"(^|(?<=[\s=(]))/[^\s|,)]+", "/PATH", line)
    line = re.sub(r"\b[0-9a-f]{12,64}\b", "HEX", line)
    line = re.sub(r"\d+", "0", line)
    line = re.sub(r"-{2,}", "-", line)
    return re.sub(r"\s+", " ", line).strip()


def shape_mismatches(shown: list[str], actual: str) -> list[str]:
    """Shown lines that have no real line of the same shape."""
    real = [shape(a) for a in actual.splitlines()]
    real_set = set(real)
    missing = []
    for line in shown:
        if line.strip() == "…":
            continue
        if "…" in line:
            prefix = shape(line.split("…", 1)[0])
            if prefix and not any(r.startswith(prefix) for r in real):
                missing.append(line)
        elif shape(line) not in real_set:
            missing.append(line)
    return missing


ALL_COMMANDS = [c for d in DOCUMENTS for c in extract(d)]


def test_extraction_finds_the_documented_commands() -> None:
    """The extractor itself: the README's gate example carries its exit code and its output."""
    readme = [c for c in ALL_COMMANDS if c.document.name == "README.md"]
    gate = next(c for c in readme if "--exit-code 1" in c.command)
    assert gate.exit_code == 1 and any(line.startswith("Total: ") for line in gate.shown)
    assert any(c.command.startswith("garrison db status") for c in readme)


def test_shape_check_catches_changed_output() -> None:
    real = "Total: 218 (CRITICAL: 0, HIGH: 8)\n| idna   | 2.7  | CVE-2024-3651 | HIGH |\nDatabase: /root/x.db\n"
    assert (
        shape_mismatches(
            [
                "Total: 5 (CRITICAL: 1, HIGH: 4)",
                "| idna | 3.1 | CVE-2023-1 | HIGH |",
                "Database:  /tmp/y.db",
                "…",
                "| idna  …",
            ],
            real,
        )
        == []
    )
    assert shape_mismatches(["Total: 5 (CRITICAL: 1)"], real) == ["Total: 5 (CRITICAL: 1)"]
    assert shape_mismatches(["| idna | 2.7 | CVE-2024-3651 | LOW |"], real) == ["| idna | 2.7 | CVE-2024-3651 | LOW |"]
    assert shape_mismatches(["| urllib3 …"], real) == ["| urllib3 …"]


def test_every_shown_command_is_in_a_console_block() -> None:
    stray = []
    for document in DOCUMENTS:
        lang: str | None = None
        for n, text in enumerate(document.read_text(encoding="utf-8").splitlines(), 1):
            fence = _FENCE.match(text)
            if fence:
                lang = fence.group(1) if lang is None else None
            elif lang is not None and lang != "console" and re.match(r"\$ (\w+=\S*\s+)*garrison\b", text):
                stray.append(f"{document.relative_to(REPO_ROOT)}:{n}: {text}")
    assert not stray, "commands outside ```console blocks are not checked:\n" + "\n".join(stray)


@pytest.mark.parametrize("command", [c for c in ALL_COMMANDS if c.placeholder], ids=lambda c: c.where)
def test_placeholder_commands_are_reported(command: DocCommand) -> None:
    pytest.skip(f"{command.where}: names the placeholder host {command.placeholder.rstrip('/')}: {command.command}")


@dataclass
class DocRun:
    """Where and how one document's commands run: in order, in one folder and one cache, as for a reader
    following the page (a file one command writes is read by the next; ``db update`` rebuilds)."""

    cwd: Path
    env: dict[str, str]
    request: Any
    registry_host: str = ""

    def prepare(self, command: DocCommand) -> str:
        cmd = _strip_comment(command.command)
        if EXAMPLE_REGISTRY in cmd:
            if not self.registry_host:
                from tests.support.images import BuiltImages

                registry = self.request.getfixturevalue("registry_plain")
                images: BuiltImages = self.request.getfixturevalue("test_images")
                repo_tag = re.search(re.escape(EXAMPLE_REGISTRY) + r"/(\S+)", cmd)
                assert repo_tag, cmd
                registry.push(images.app_oci_ref, repo_tag.group(1))
                self.registry_host = registry.host
            cmd = cmd.replace(EXAMPLE_REGISTRY, self.registry_host)
        if re.search(r"(^|\s)docker:", cmd) and "GARRISON_DOCKER_HOST" not in self.env:
            from tests.support.images import BuiltImages

            daemon = self.request.getfixturevalue("dockerd")
            images = self.request.getfixturevalue("test_images")
            assert isinstance(images, BuiltImages)
            daemon.load(images.app_archive)
            self.env["GARRISON_DOCKER_HOST"] = daemon.host
        return cmd


@pytest.fixture
def doc_run(tmp_path: Path, test_images: Any, request: pytest.FixtureRequest) -> DocRun:
    from tests.test_oracle_support import real_db_path  # built once per session, cached across runs

    root = tmp_path
    cwd = root / "repo"
    cwd.mkdir()
    for name in (".cache", "docs"):
        (cwd / name).symlink_to(REPO_ROOT / name)
    (root / "shared").symlink_to(SHARED)
    cache = root / "cache"
    (cache / "db").mkdir(parents=True)
    shutil.copyfile(real_db_path(), cache / "db" / "garrison.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    if "GARRISON_TEST_CACHE" in os.environ:
        env["GARRISON_TEST_CACHE"] = os.environ["GARRISON_TEST_CACHE"]
    env.update(
        # The virtual environment running the tests, where set-up puts the `garrison` command.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        GARRISON_CONFIG=os.devnull,
        GARRISON_CACHE_DIR=str(cache),
        HOME=str(root),
    )
    return DocRun(cwd, env, request)


@pytest.mark.parametrize(
    "document", [d for d in DOCUMENTS if any(not c.placeholder for c in extract(d))], ids=lambda d: d.name
)
def test_documented_commands_run_and_print_what_is_shown(document: Path, doc_run: DocRun) -> None:
    problems = []
    for command in extract(document):
        if command.placeholder:
            continue
        cmd = doc_run.prepare(command)
        proc = subprocess.run(
            ["bash", "-c", cmd], cwd=doc_run.cwd, env=doc_run.env, capture_output=True, text=True, timeout=600
        )
        output = proc.stdout + proc.stderr
        if proc.returncode != command.exit_code:
            problems.append(
                f"{command.where}: `{cmd}` exited {proc.returncode}, the page says {command.exit_code}\n"
                + output[-2000:]
            )
            continue
        missing = shape_mismatches(command.shown, output)
        if missing:
            problems.append(
                f"{command.where}: `{cmd}`: shown lines not in the output:\n  "
                + "\n  ".join(missing[:10])
                + "\n--- output ---\n"
                + output[:3000]
            )
    assert not problems, "\n\n".join(problems)
