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


def _ca(tmp_path: Path) -> Path:
    from garrison.server.admission import self_signed

    return self_signed(tmp_path / "tls.crt", tmp_path / "tls.key").ca


def test_config_prints_the_webhook_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import base64

    import yaml

    ca = _ca(tmp_path)
    assert run(["admission", "config", "--ca", str(ca), "--service", "garrison/garrison-admission"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert doc["kind"] == "ValidatingWebhookConfiguration"
    (hook,) = doc["webhooks"]
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == ca.read_bytes()
    assert hook["clientConfig"]["service"] == {
        "namespace": "garrison",
        "name": "garrison-admission",
        "path": "/admission/validate",
        "port": 443,
    }
    assert hook["admissionReviewVersions"] == ["v1"]
    assert (hook["failurePolicy"], hook["timeoutSeconds"]) == ("Fail", 5)
    (expr,) = hook["namespaceSelector"]["matchExpressions"]
    assert expr["operator"] == "NotIn" and expr["values"] == ["garrison", "kube-system"]
    assert {"pods", "deployments", "cronjobs"} <= set(hook["rules"][0]["resources"])


def test_config_follows_the_policy_and_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    ca = _ca(tmp_path)
    pol = tmp_path / "p.yaml"
    pol.write_text("version: 1\ndeny: {frameworks: [pss-baseline]}\nexclude: {namespaces: [infra]}\n", encoding="utf-8")
    url = "https://127.0.0.1:8443/admission/validate"
    argv = ["admission", "config", "--ca", str(ca), "--url", url, "--policy", str(pol)]
    assert run([*argv, "--failure-policy", "Ignore", "--timeout", "10"]) == 0
    (hook,) = yaml.safe_load(capsys.readouterr().out)["webhooks"]
    assert hook["clientConfig"]["url"] == url
    assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == ["infra"]
    assert (hook["failurePolicy"], hook["timeoutSeconds"]) == ("Ignore", 10)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--url", "http://127.0.0.1:8443/admission/validate"], "https:// only"),
        (["--service", "just-a-name"], "NAMESPACE/NAME"),
        (["--url", "https://h/admission/validate", "--timeout", "60"], "timeoutSeconds 60"),
    ],
)
def test_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], says: str) -> None:
    assert run(["admission", "config", "--ca", str(_ca(tmp_path)), *extra]) == 2
    assert says in capsys.readouterr().err


def test_config_needs_a_pem_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "ca.crt"
    f.write_text("nope", encoding="utf-8")
    assert run(["admission", "config", "--ca", str(f), "--url", "https://h/admission/validate"]) == 2
    assert "not a PEM certificate" in capsys.readouterr().err
