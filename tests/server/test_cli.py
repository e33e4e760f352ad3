"""``garrison server init | user add | token create|revoke | cluster add|list | registry add|list|delete``
in-process: tokens alone on standard output, the database in ``GARRISON_DATA_DIR``, every change in the
audit log."""

from __future__ import annotations

from pathlib import Path

import pytest

from garrison.cli.main import run
from garrison.services import server as svc
from garrison.services.settings import ServerSettings
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


def test_cluster_and_registry_commands(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cluster add|list`` and ``registry add|list|delete``: the agent's and the registry's token alone on
    standard output, scoped as the API would make them; a registry password read from standard input,
    sealed in the database and never printed; a deleted registry's token refused."""
    import io

    from garrison.services import registry

    assert run(["server", "init", "-q"]) == 0
    capsys.readouterr()
    assert run(["server", "cluster", "add", "prod", "--name", "Production"]) == 0
    out, err = capsys.readouterr()
    agent_token = out.strip()
    assert out == agent_token + "\n" and agent_token not in err and "agent:prod" in err
    agent = svc.authenticate(_store(), agent_token).user
    assert (agent.role.value, agent.cluster) == ("agent", "prod")
    assert run(["server", "cluster", "list"]) == 0
    assert "Production" in capsys.readouterr().out
    assert run(["server", "cluster", "add", "prod"]) == 2 and "exists" in capsys.readouterr().err

    monkeypatch.setattr("sys.stdin", io.StringIO("pa55-w0rd-in-stdin\n"))
    assert run(["server", "registry", "add", "hub", "--url", "https://reg.example:5000", "--username", "ci",
                "--password-stdin"]) == 0  # fmt: skip
    out, err = capsys.readouterr()
    reg_token = out.strip()
    assert out == reg_token + "\n" and "pa55-w0rd" not in out + err
    who = svc.authenticate(_store(), reg_token).user
    assert (who.role.value, who.cluster) == ("agent", "registry:hub")
    (rec,) = registry.list_registries(_store()).items
    assert (rec.name, rec.url, rec.has_credentials) == ("hub", "https://reg.example:5000", True)
    assert b"pa55-w0rd" not in (data_dir / "server.db").read_bytes()  # sealed (Fernet), not stored as typed
    assert run(["server", "registry", "list"]) == 0
    listing = capsys.readouterr().out
    assert "hub" in listing and "https://reg.example:5000" in listing and "pa55" not in listing

    assert run(["server", "registry", "add", "x", "--url", "ftp://x.example"]) != 0
    assert "http(s)://" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert run(["server", "registry", "add", "y", "--url", "https://y.example", "--token-stdin"]) == 2
    assert "nothing on standard input" in capsys.readouterr().err
    assert run(["server", "registry", "add", "z", "--url", "https://z.example", "--password-stdin"]) == 2
    assert "--username" in capsys.readouterr().err

    assert run(["server", "registry", "delete", str(rec.id)]) == 0
    capsys.readouterr()
    with pytest.raises(svc.Unauthenticated):
        svc.authenticate(_store(), reg_token)
    assert run(["server", "registry", "delete", str(rec.id)]) != 0
    actions = {e.action for e in svc.list_audit_log(_store()).items if e.actor == "cli"}
    assert {"cluster.create", "registry.create", "registry.delete"} <= actions


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


# --- the server's settings: flags over GARRISON_* over the config file's server: keys ------------------


def _settings(argv: list[str]) -> ServerSettings:
    from garrison.cli.main import build_parser
    from garrison.cli.server import server_settings

    args = build_parser(argv).parse_args(argv)
    settings: ServerSettings = server_settings(args)
    return settings


def test_settings_precedence_flags_env_config(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "db-path: /elsewhere/garrison.db\n"  # a scan setting: not the server's business
        "server:\n"
        "  listen: 0.0.0.0:9000\n"
        "  log-format: json\n"
        "  rescan_max_age_days: 30\n"
        "  tls-hosts: [garrison.example, 10.0.0.5]\n"
        "  shutdown-grace: 5\n"
        "  lissen: 1.2.3.4:1\n"
    )
    monkeypatch.setenv("GARRISON_CONFIG", str(config))
    s = _settings(["server", "run"])
    assert s.listen == "0.0.0.0:9000" and s.log_format == "json" and s.rescan_max_age_days == 30
    assert s.tls_hosts == ("garrison.example", "10.0.0.5") and s.shutdown_grace == 5.0
    assert s.data_dir == data_dir and s.database_url == f"sqlite:///{data_dir / 'server.db'}"
    assert s.vulndb is None and not s.tls_self_signed
    assert "unknown server setting 'lissen' ignored (did you mean listen?)" in capsys.readouterr().err

    monkeypatch.setenv("GARRISON_LOG_FORMAT", "text")
    monkeypatch.setenv("GARRISON_LISTEN", "127.0.0.1:9001")
    monkeypatch.setenv("GARRISON_TLS_SELF_SIGNED", "yes")
    s = _settings(["server", "run", "--listen", "127.0.0.1:9002", "--tls-host", "a.example", "--tls-host", "b"])
    assert s.log_format == "text" and s.listen == "127.0.0.1:9002" and s.tls_self_signed
    assert s.tls_hosts == ("a.example", "b")

    other = tmp_path / "other"
    s = _settings(["server", "run", "--data-dir", str(other), "--vulndb", str(tmp_path / "v.db")])
    assert s.data_dir == other and s.database_url == f"sqlite:///{other / 'server.db'}"  # follows the data dir
    assert s.vulndb == tmp_path / "v.db"
    monkeypatch.setenv("GARRISON_DATABASE_URL", "postgresql+psycopg://u:hunter2@db.example/garrison")
    s = _settings(["server", "user", "add", "x", "--role", "agent"])
    assert s.database_url.startswith("postgresql+psycopg://") and "hunter2" not in repr(s)
    monkeypatch.setenv("GARRISON_JOB_CONCURRENCY", "4")
    s = _settings(["server", "run", "--rescan-interval", "600"])
    assert (s.job_concurrency, s.rescan_interval, s.stalled_after) == (4, 600.0, 30.0)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--log-format", "xml"], {}, "invalid log_format from --log-format: 'xml' is not one of text, json"),
        ([], {"GARRISON_RESCAN_MAX_AGE_DAYS": "0"}, "from GARRISON_RESCAN_MAX_AGE_DAYS: '0' is not between 1 and"),
        ([], {"GARRISON_SHUTDOWN_GRACE": "soon"}, "invalid shutdown_grace from GARRISON_SHUTDOWN_GRACE"),
        ([], {"GARRISON_TLS_SELF_SIGNED": "maybe"}, "is not a yes/no value"),
        (["--listen", "nowhere"], {}, "HOST:PORT"),
        (["--database", "postgres:hunter2@db"], {}, "invalid database_url from --database: the value given"),
        (["--tls-self-signed", "--tls-cert", "c", "--tls-key", "k"], {}, "choose one"),
        (["--job-concurrency", "0"], {}, "invalid job_concurrency from --job-concurrency: '0' is not between 1"),
        ([], {"GARRISON_STALLED_AFTER": "1"}, "from GARRISON_STALLED_AFTER: '1' is not between 3 and"),
    ],
)
def test_bad_settings_name_the_setting_and_where_it_came_from(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    monkeypatch.setenv("GARRISON_CONFIG", "/dev/null")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert run(["server", "run", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "hunter2" not in err


def test_a_bad_config_file_section(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("server: [listen]\n")
    assert run(["--config", str(config), "server", "run"]) == 2
    assert "'server' must be a mapping" in capsys.readouterr().err
    config.write_text("server:\n  listen: 8080\n")
    assert run(["server", "run", "--config", str(config)]) == 2
    assert "(quote it in YAML)" in capsys.readouterr().err


# --- the self-signed certificate: made once, kept, never over a file that is not ours ---------------------


def test_self_signed_is_made_once_and_remade_only_when_ours(tmp_path: Path) -> None:
    import ssl

    from garrison.errors import UsageError
    from garrison.server.tls import ensure_self_signed, fingerprint_of, names_for

    hosts = names_for("127.0.0.1")
    assert hosts == ("127.0.0.1", "localhost", "::1")
    first = ensure_self_signed(tmp_path, hosts)
    assert first.made and first.key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "tls").stat().st_mode & 0o777 == 0o700
    assert first.fingerprint == fingerprint_of(first.ca.read_bytes())
    ctx = ssl.create_default_context(cafile=str(first.ca))
    ctx.load_cert_chain(first.cert, first.key)  # the key matches the certificate

    again = ensure_self_signed(tmp_path, hosts)
    assert not again.made and again.fingerprint == first.fingerprint
    assert set(again.hosts) == set(hosts)

    wider = ensure_self_signed(tmp_path, names_for("127.0.0.1", ("garrison.example",)))  # ours: made again
    assert wider.made and wider.fingerprint != first.fingerprint and "garrison.example" in wider.hosts
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == [
        "ca.crt",
        "made-by-garrison.json",
        "server.crt",
        "server.key",
    ]

    wider.cert.write_text(wider.cert.read_text() + "\n")  # edited since: no longer ours
    with pytest.raises(UsageError, match=r"server\.crt exists and was not made by garrison"):
        ensure_self_signed(tmp_path, names_for("10.0.0.1"))
    wider.cert.unlink()
    wider.cert.symlink_to(tmp_path / "elsewhere.crt")
    with pytest.raises(UsageError, match="was not made by garrison"):
        ensure_self_signed(tmp_path, hosts)


def test_self_signed_names_for_a_wildcard_address() -> None:
    import socket

    from garrison.server.tls import names_for

    names = names_for("0.0.0.0", ("garrison.example",))
    assert names[0] == socket.gethostname() and "garrison.example" in names and "127.0.0.1" in names
    assert "0.0.0.0" not in names


def test_a_bare_postgresql_url_means_psycopg_3() -> None:
    from garrison.store.db import open_engine

    for url in ("postgresql://garrison@127.0.0.1:1/garrison", "postgres://garrison@127.0.0.1:1/garrison"):
        engine = open_engine(url)  # no connection is made yet
        assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
        engine.dispose()


def test_run_refuses_a_bad_admission_policy_before_listening(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("controls: [no-such-control]\n")
    assert run(["server", "run", "--admission-policy", str(policy), "--listen", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert str(policy) in err and "serving" not in err
    assert run(["server", "run", "--admission-policy", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
