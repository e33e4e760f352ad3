"""``garrison admission review`` in-process: the response printed, the gate, errors as exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.admission.recorded import encode, needs_recorded, path_of, review

from garrison.cli.main import run

pytestmark = needs_recorded


def test_review_prints_the_response(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["admission", "review", str(path_of("create-pod-priv"))]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["response"]["uid"] == review("create-pod-priv")["request"]["uid"]
    assert doc["response"]["allowed"] is False
    assert "GAR-PSS-003" in doc["response"]["status"]["message"]


def test_review_gate(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["admission", "review", str(path_of("create-pod-priv")), "--exit-code", "1"]) == 1
    assert run(["admission", "review", str(path_of("create-deployment-web")), "--exit-code", "1"]) == 0
    capsys.readouterr()


def test_review_reads_a_bare_review(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "r.json"
    f.write_bytes(encode(review("create-pod-hostpath")))
    with pytest.raises(SystemExit) as info:
        run(["admission", "review", str(f), "--exit-code", "3"])
    assert info.value.code == 2, "3 is refused: it is one of garrison's error codes"
    assert run(["admission", "review", str(f), "--exit-code", "9"]) == 9
    assert json.loads(capsys.readouterr().out)["response"]["allowed"] is False


def test_review_with_a_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("version: 1\ndeny: {frameworks: [pss-restricted]}\n", encoding="utf-8")
    assert (
        run(["admission", "review", str(path_of("create-deployment-web")), "--policy", str(p), "--exit-code", "1"]) == 1
    )
    assert "GAR-PSS-015" in json.loads(capsys.readouterr().out)["response"]["status"]["message"]


def test_review_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "AdmissionReview"}', encoding="utf-8")
    assert run(["admission", "review", str(bad)]) == 5
    assert "expected kind AdmissionReview" in capsys.readouterr().err
    assert run(["admission", "review", str(tmp_path / "missing.json")]) == 5
    assert "cannot read" in capsys.readouterr().err
    pol = tmp_path / "p.yaml"
    pol.write_text("version: 1\nmode: loud\n", encoding="utf-8")
    assert run(["admission", "review", str(path_of("create-pod-priv")), "--policy", str(pol)]) == 2
    assert "admission policy" in capsys.readouterr().err


def test_scan_does_not_import_the_server() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from garrison.cli.main import build_parser; build_parser(['scan', 'image', 'x']);"
        "import garrison.cli.admission;"
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'cryptography') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    assert out.stdout.strip() == "[]"
