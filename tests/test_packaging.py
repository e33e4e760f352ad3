"""The wheel ``pip`` builds from this tree: the data garrison reads at run time is in it (rules, JSON
schemas, the database migrations, ``py.typed``), and the bytecode a run of the tree leaves beside that
data is not (the package-data globs took the migrations' ``__pycache__`` until pyproject.toml excluded
it). Built with the real build backend (setuptools, from the lock file), from a copy of the tree that
has been compiled as a test run leaves it."""

from __future__ import annotations

import compileall
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_has_the_run_time_data_and_no_bytecode(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    pkg = tree / "src" / "garrison"
    assert compileall.compile_dir(pkg / "store" / "alembic", quiet=1)  # what importing the migrations leaves
    assert list((pkg / "store" / "alembic" / "versions").glob("__pycache__/*.pyc"))
    out = tmp_path / "dist"
    got = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(tree)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert got.returncode == 0, got.stderr[-2000:]
    (wheel,) = out.glob("garrison-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert [n for n in names if n.endswith(".pyc") or "__pycache__" in n] == []
    assert "garrison/py.typed" in names
    migrations = sorted(p.name for p in (ROOT / "src/garrison/store/alembic/versions").glob("*.py"))
    assert migrations and all(f"garrison/store/alembic/versions/{m}" in names for m in migrations)
    assert "garrison/store/alembic/env.py" in names
    rules = [p.relative_to(ROOT / "src").as_posix() for p in (ROOT / "src/garrison/rules").rglob("*") if p.is_file()]
    rules = [r for r in rules if "__pycache__" not in r]
    assert rules and set(rules) <= set(names)
    schemas = [p.relative_to(ROOT / "src").as_posix() for p in (ROOT / "src/garrison/report/schemas").iterdir()]
    assert schemas and set(schemas) <= set(names)
