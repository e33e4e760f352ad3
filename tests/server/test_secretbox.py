"""The secret box: where the key comes from, that a key file is made once with mode 0600 and never
replaced, and that a wrong key is a clear error rather than a garbled secret."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from garrison.services import secretbox
from garrison.services.settings import ServerSettings


@pytest.fixture(autouse=True)
def _no_key_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(secretbox.KEY_ENV, raising=False)
    monkeypatch.delenv(secretbox.KEY_FILE_ENV, raising=False)


def _settings(tmp_path: Path) -> ServerSettings:
    return ServerSettings(data_dir=tmp_path / "data", database_url="sqlite://")


def test_round_trip_with_a_key_file_made_on_first_use(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    sealed = secretbox.seal(s, "hunter2 ✓")
    assert "hunter2" not in sealed
    key_file = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first = key_file.read_bytes()
    assert secretbox.unseal(s, sealed) == "hunter2 ✓"
    secretbox.seal(s, "again")
    assert key_file.read_bytes() == first  # never replaced


def test_concurrent_first_use_makes_one_key(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    sealed: list[str] = []
    threads = [threading.Thread(target=lambda: sealed.append(secretbox.seal(s, "x"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {secretbox.unseal(s, x) for x in sealed} == {"x"}
    assert not [p for p in (tmp_path / "data").iterdir() if p.name != "secret.key"]


def test_the_environment_key_wins_and_another_key_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _settings(tmp_path)
    by_file = secretbox.seal(s, "from the file key")
    monkeypatch.setenv(secretbox.KEY_ENV, Fernet.generate_key().decode())
    by_env = secretbox.seal(s, "from the env key")
    assert secretbox.unseal(s, by_env) == "from the env key"
    with pytest.raises(secretbox.WrongKey, match="another key") as e:
        secretbox.unseal(s, by_file)
    assert "from the file key" not in str(e.value)


def test_key_file_variable_and_bad_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = _settings(tmp_path)
    key_file = tmp_path / "given.key"
    key_file.write_bytes(Fernet.generate_key())
    monkeypatch.setenv(secretbox.KEY_FILE_ENV, str(key_file))
    assert secretbox.unseal(s, secretbox.seal(s, "v")) == "v"
    assert not (tmp_path / "data" / "secret.key").exists()
    key_file.write_text("not a key")
    with pytest.raises(secretbox.SecretKeyError, match="not a Fernet key"):
        secretbox.seal(s, "v")
    monkeypatch.setenv(secretbox.KEY_FILE_ENV, str(tmp_path / "missing.key"))
    with pytest.raises(secretbox.SecretKeyError, match="cannot read"):
        secretbox.seal(s, "v")
    monkeypatch.setenv(secretbox.KEY_ENV, "short")
    with pytest.raises(secretbox.SecretKeyError, match="GARRISON_SECRET_KEY: not a Fernet key"):
        secretbox.seal(s, "v")


def test_an_altered_value_does_not_open(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    sealed = secretbox.seal(s, "v")
    with pytest.raises(secretbox.WrongKey):
        secretbox.unseal(s, sealed[:-4] + ("AAAA" if sealed[-4:] != "AAAA" else "BBBB"))
    with pytest.raises(secretbox.WrongKey):
        secretbox.unseal(s, "not even base64 ✗")
