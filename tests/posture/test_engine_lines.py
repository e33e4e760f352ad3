"""A Dockerfile finding points at the instruction at fault, not at the file's first line."""

from __future__ import annotations

from pathlib import Path

from garrison import api
from garrison.posture.engine import line_at


def test_line_at_takes_the_innermost_recorded_line() -> None:
    obj = {"line": 1, "stages": [{"line": 1, "instructions": [{"line": 2}, {"line": 7, "pairs": [{"key": "A"}]}]}]}
    assert line_at(obj, "stages[0].instructions[1].pairs[0].key") == 7
    assert line_at(obj, "stages[0].instructions[0]") == 2
    assert line_at(obj, "stages[0].missing[3]") == 1
    assert line_at({}, "a.b") == 0


def test_dockerfile_findings_carry_the_instruction_line(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.12\nRUN pip install flask\nENV GITHUB_TOKEN=ghp_abc\n\nARG DB_PASSWORD=hunter2\n"
    )
    report = api.assess([str(tmp_path)])
    lines = {f.detail.path: f.subject.line for f in report.findings if f.rule.id == "GAR-DF-007"}
    assert sorted(lines.values()) == [3, 5], lines
