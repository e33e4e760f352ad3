"""Every field of the public model says what it is: a ``#:`` comment right above it (Sphinx's autodoc
form), so that the model documents itself in the editor, in ``help()`` and in generated docs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

MODEL = Path(__file__).resolve().parents[1] / "src" / "garrison" / "model"


def undocumented(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    missing: list[str] = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(node, ast.ClassDef):
            continue
        is_dataclass = any(
            (isinstance(d, ast.Call) and getattr(d.func, "id", "") == "dataclass")
            or getattr(d, "id", "") == "dataclass"
            for d in node.decorator_list
        )
        if not is_dataclass:
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                above = lines[stmt.lineno - 2].strip() if stmt.lineno >= 2 else ""
                if not above.startswith("#:"):
                    missing.append(f"{path.name}:{stmt.lineno} {node.name}.{stmt.target.id}")
    return missing


@pytest.mark.parametrize("path", sorted(MODEL.glob("*.py")), ids=lambda p: p.name)
def test_every_model_field_has_a_docstring(path: Path) -> None:
    assert undocumented(path) == []


def test_the_check_sees_a_missing_comment(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text("from dataclasses import dataclass\n\n@dataclass\nclass A:\n    #: yes\n    x: int\n    y: int\n")
    assert undocumented(bad) == ["m.py:7 A.y"]
