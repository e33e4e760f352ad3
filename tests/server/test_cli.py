"""``garrison server init | user add | token create | token revoke`` in-process: tokens alone on
standard output, the database in ``GARRISON_DATA_DIR``, every change in the audit log."""

from __future__ import annotations

from pathlib import Path

import pytest

from garrison.cli.main import run
from garrison.services import server as svc
from garrison.store.db import default_url, migrate, open_engine
from garrison.store.repos import SqlStore


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GARRISON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GARRISON_DATABASE_URL", raising=False)
    return tmp_path / "data"


def _store() -> SqlStore:
    engine = open_engine(default_url())
    migrate(engine)
    return SqlStore(engine)


def test_init_prints_the_admin_token_alone(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["server", "init"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert out == token + "\n" and token.startswith(svc.TOKEN_PREFIX)
    assert token not in err and "admin" in err
    assert (data_dir / "server.db").is_file()
    who = svc.authenticate(_store(), token)
    assert who.user.name == "admin" and who.role.value == "admin"

    assert run(["server", "init"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "already has an admin" in err


def test_user_add_and_token_create_revoke(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["server", "init", "-q"]) == 0
    capsys.readouterr()
    assert run(["server", "user", "add", "ci-cluster", "--role", "agent", "--cluster", "ci"]) == 0
    agent_token = capsys.readouterr().out.strip()
    agent = svc.authenticate(_store(), agent_token).user
    assert agent.role.value == "agent" and agent.cluster == "ci"

    assert run(["server", "token", "create", "--user", "ci-cluster", "--name", "webhook", "--expires-days", "7"]) == 0
    out, err = capsys.readouterr()
    second = out.strip()
    assert out == second + "\n" and second != agent_token
    token_id = svc.authenticate(_store(), second).token_id
    assert f"token id {token_id}" in err

    assert run(["server", "token", "revoke", str(token_id), "--reason", "rotated"]) == 0
    capsys.readouterr()
    with pytest.raises(svc.Unauthenticated):
        svc.authenticate(_store(), second)
    svc.authenticate(_store(), agent_token)  # the other token still works

    actions = [(e.actor, e.action, e.reason) for e in svc.list_audit_log(_store()).items]
    assert actions[0] == ("cli", "token.revoke", "rotated")
    assert ("cli", "user.create", "") in actions

    assert run(["server", "user", "add", "ci-cluster", "--role", "agent"]) == 2
    assert "exists" in capsys.readouterr().err
    assert run(["server", "token", "create", "--user", "nobody"]) == 2
    assert run(["server", "token", "revoke", "999"]) == 2
    with pytest.raises(SystemExit):
        run(["server", "user", "add", "x", "--role", "root"])


def test_run_refuses_bad_flags(data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(["server", "run", "--listen", "nowhere"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    assert run(["server", "run", "--tls-cert", str(cert)]) == 2
    assert "go together" in capsys.readouterr().err


def test_the_cli_does_not_import_the_server_stack_until_a_server_command_runs() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from garrison.cli.main import build_parser\n"
        "build_parser(['server', 'run', '--help'])\n"
        "build_parser(['scan', 'image', 'x'])\n"
        "names = ('fastapi', 'sqlalchemy', 'alembic', 'uvicorn', 'garrison.store')\n"
        "heavy = sorted(m for m in names if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
