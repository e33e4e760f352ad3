"""Settings are validated when loaded: a bad value from a flag, a ``GARRISON_*`` variable or the config
file is a one-line usage error (exit 2) naming the setting and where it came from."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from garrison.config import SettingError, Settings, load_settings


def _garrison(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "garrison.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "GARRISON_CONFIG": os.devnull, **(env or {})},
        timeout=120,
    )


def _one_line_usage_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("garrison: error: "), proc.stderr
    return lines[0]


# Each command reads its settings first: nothing is opened, downloaded or scanned before the error.
@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["sbom", "oci:none", "--workers", "abc"], {}, "invalid workers from --workers: 'abc' is not a whole number"),
        (["sbom", "oci:none"], {"GARRISON_WORKERS": "abc"}, "invalid workers from GARRISON_WORKERS: 'abc'"),
        (["sbom", "oci:none", "--workers", "0"], {}, "invalid workers from --workers: '0' is not between 1 and 256"),
        (["sbom", "oci:none"], {"GARRISON_PLATFORM": "amd64"}, "invalid platform from GARRISON_PLATFORM"),
        (["db", "status"], {"GARRISON_OFFLINE": "maybe"}, "invalid offline from GARRISON_OFFLINE: 'maybe' is not a"),
        (["db", "status", "--mirror", "ftp://x"], {}, "invalid mirror from --mirror: 'ftp://x' is not a URL"),
    ],
)
def test_bad_flag_or_env_is_one_line_exit_2(args: list[str], env: dict[str, str], named: str) -> None:
    assert named in _one_line_usage_error(_garrison(*args, env=env))


def test_broken_yaml_config_is_one_line_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("mirror: file:///srv/osv\nworkers: [1, 2\n")
    line = _one_line_usage_error(_garrison("--config", str(cfg), "db", "status"))
    assert f"config file {cfg} is not valid YAML at line" in line


def test_bad_value_in_config_names_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("workers: lots\n")
    line = _one_line_usage_error(_garrison("--config", str(cfg), "db", "status"))
    assert f"invalid workers from config file {cfg}, key workers: 'lots' is not a whole number" in line
    # The same through GARRISON_CONFIG.
    line = _one_line_usage_error(_garrison("db", "status", env={"GARRISON_CONFIG": str(cfg)}))
    assert "key workers" in line


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    line = _one_line_usage_error(_garrison("--config", str(tmp_path / "nope.yaml"), "db", "status"))
    assert "nope.yaml (from --config) does not exist" in line
    line = _one_line_usage_error(_garrison("--config", str(tmp_path), "db", "status"))
    assert "is a directory" in line


def test_missing_garrison_config_warns(tmp_path: Path) -> None:
    warnings: list[str] = []
    load_settings(environ={"GARRISON_CONFIG": str(tmp_path / "nope.yaml")}, warnings=warnings)
    missing = tmp_path / "nope.yaml"
    assert warnings == [f"config file {missing} (from GARRISON_CONFIG) does not exist; using no config file"]


def test_unknown_keys_warn_with_a_suggestion(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("worker: 3\nmirror: file:///srv/osv\n")
    warnings: list[str] = []
    s = load_settings(cfg, environ={}, warnings=warnings)
    assert s.mirror == "file:///srv/osv" and s.workers == 2
    assert warnings == [f"config file {cfg}: unknown setting 'worker' ignored (did you mean workers?)"]
    proc = _garrison("--config", str(cfg), "db", "status", "--db", str(tmp_path / "none.db"))
    assert "garrison: warning: config file" in proc.stderr and "unknown setting 'worker'" in proc.stderr
    assert proc.returncode == 4  # the run goes on (and finds no database)


def test_list_settings_take_yaml_lists_and_comma_strings(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("insecure-registries:\n  - 127.0.0.1:5000\n  - registry.local\necosystems: [npm, PyPI]\n")
    s = load_settings(cfg, environ={})
    assert s.insecure_registries == ("127.0.0.1:5000", "registry.local")
    assert s.ecosystems == ("npm", "PyPI")
    s = load_settings(
        environ={"GARRISON_CONFIG": os.devnull, "GARRISON_ECOSYSTEMS": "Go, npm"},
        flags={"insecure_registries": ("--insecure-registry", "a:1,b:2")},
    )
    assert s.ecosystems == ("Go", "npm") and s.insecure_registries == ("a:1", "b:2")
    # The comma form, for callers that build Settings by hand (typed as a tuple, accepted as a string).
    assert Settings(insecure_registries="a:1, b").insecure_registries == ("a:1", "b")  # type: ignore[arg-type]
    cfg.write_text("ecosystems: {npm: yes}\n")
    with pytest.raises(SettingError, match=r"invalid ecosystems from config file .*, key ecosystems: .* not a list"):
        load_settings(cfg, environ={})


def test_precedence_file_env_flag(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("workers: 3\nplatform: linux/arm64\ncache-dir: ~/gcache\noffline: true\n")
    s = load_settings(cfg, environ={"GARRISON_WORKERS": "5"})
    assert (s.workers, s.platform, s.offline) == (5, "linux/arm64", True)
    assert s.cache_dir == Path.home() / "gcache"
    s = load_settings(cfg, environ={"GARRISON_WORKERS": "5"}, flags={"workers": ("--workers", "7")})
    assert s.workers == 7


def test_secrets_are_never_shown(tmp_path: Path) -> None:
    s = Settings(username="ci", password="hunter2-s3cret")
    assert "hunter2" not in repr(s) and "ci" in repr(s)
    cfg = tmp_path / "config.yaml"
    cfg.write_text("password: [hunter2-s3cret]\n")
    with pytest.raises(SettingError) as err:
        load_settings(cfg, environ={})
    assert "hunter2" not in str(err.value) and "invalid password" in str(err.value)
    # A password made of digits is read by YAML as a number: refused with a hint, and not echoed.
    cfg.write_text("password: 12345678\n")
    with pytest.raises(SettingError, match="quote it") as err:
        load_settings(cfg, environ={})
    assert "12345678" not in str(err.value)


@pytest.mark.parametrize("code", ["2", "3", "4", "5", "70", "130", "126", "256", "-1"])
def test_exit_code_refuses_garrisons_own_codes(code: str, tmp_path: Path) -> None:
    proc = _garrison("scan", "sbom", str(tmp_path / "x.json"), "--exit-code", code)
    assert proc.returncode == 2
    assert f"argument --exit-code: {int(code)} is not allowed" in proc.stderr


def test_exit_codes_in_one_place() -> None:
    from garrison import errors

    assert {2, 3, 4, 5, 70} == errors.RESERVED_EXIT_CODES
    codes = {
        errors.UsageError.exit_code,
        errors.SourceError.exit_code,
        errors.DatabaseError.exit_code,
        errors.InputError.exit_code,
        errors.EXIT_INTERNAL,
    }
    assert codes == errors.RESERVED_EXIT_CODES
    assert errors.EXIT_INTERRUPTED > errors.MAX_GATE_EXIT_CODE


def test_database_and_cache_paths_must_be_what_they_are_used_as(tmp_path: Path) -> None:
    """db update renames a new database over ``--db``: a FIFO or a device there is refused when the
    setting is read, before anything is built (tested with a FIFO and a /dev/null twin of our own)."""
    fifo = tmp_path / "db.fifo"
    os.mkfifo(fifo)
    with pytest.raises(SettingError, match=r"invalid db_path from --db: .* is not a regular file"):
        load_settings(environ={"GARRISON_CONFIG": os.devnull}, flags={"db_path": ("--db", str(fifo))})
    if os.geteuid() == 0:
        null = tmp_path / "null"
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        line = _one_line_usage_error(_garrison("db", "update", "--db", str(null), "--mirror", "file:///nonexistent"))
        assert "invalid db_path from --db" in line
        assert stat.S_ISCHR(os.lstat(null).st_mode)
    (tmp_path / "file").write_text("")
    with pytest.raises(SettingError, match=r"invalid cache_dir from GARRISON_CACHE_DIR: .* is not a directory"):
        load_settings(environ={"GARRISON_CONFIG": os.devnull, "GARRISON_CACHE_DIR": str(tmp_path / "file")})


def test_the_server_section_is_not_an_unknown_setting(tmp_path: Path) -> None:
    """``server:`` holds ``garrison server``'s settings: the scanning commands neither read nor warn about it."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text("server:\n  listen: 127.0.0.1:9000\nmirror: file:///srv/osv\nservr: {}\n")
    warnings: list[str] = []
    s = load_settings(cfg, environ={}, warnings=warnings)
    assert s.mirror == "file:///srv/osv"
    assert len(warnings) == 1 and "unknown setting 'servr'" in warnings[0]
