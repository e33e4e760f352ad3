"""The server's settings: one frozen record built once by ``garrison server run|worker`` (flags,
``GARRISON_*`` variables, the config file) and handed to the app, the queue and every job.

Each field of :class:`ServerSettings` is declared once, below, and is then reachable three ways without
another line: the environment variable ``GARRISON_<NAME>`` (``GARRISON_LOG_FORMAT``), the key ``<name>``
(or ``<na-me>``) of the ``server:`` mapping of the config file, and — when a command declares it — a flag.
Precedence: defaults < config file < environment < flags. Every value is validated with the place it
came from, like the scan settings of :mod:`garrison.config`. This module imports nothing heavy: the
CLI builds the record before it loads the server's packages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from garrison.config import SettingError, default_config_file

#: Formats of the server's log lines.
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class ServerSettings:
    #: The server's data folder (SQLite database, the secret key file, the self-signed certificate, caches).
    data_dir: Path
    #: The server's database (SQLAlchemy URL; its password is never logged, and not in ``repr``).
    database_url: str = field(repr=False)
    #: The advisory database scans and rescans match against (None: the CLI's default location).
    vulndb: Path | None = None
    #: Images neither pushed nor pulled for this many days are no longer rescanned.
    rescan_max_age_days: int = 90
    #: Where ``garrison server run`` listens (``HOST:PORT``; ``[::1]:8080`` for IPv6).
    listen: str = "127.0.0.1:8080"
    #: Serve HTTPS with this certificate (PEM, the chain after it) …
    tls_cert: Path | None = None
    #: … and this private key.
    tls_key: Path | None = None
    #: Serve HTTPS with a CA and certificate garrison makes once in ``<data_dir>/tls``.
    tls_self_signed: bool = False
    #: Extra names (DNS names or IP addresses) the self-signed certificate is valid for.
    tls_hosts: tuple[str, ...] = ()
    #: ``text`` (for people) or ``json`` (one object a line, for log collectors).
    log_format: str = "text"
    #: Seconds a shutdown waits for running requests and jobs before it cuts them short (jobs re-queued).
    shutdown_grace: float = 30.0
    #: Falco rule files for the audit webhook, loaded after garrison's own.
    rules: tuple[Path, ...] = ()
    #: The admission webhook's policy (YAML, see docs/admission.md; None: the packaged default).
    admission_policy: Path | None = None
    #: Jobs ``garrison server run`` runs at once (scans, rescans, deliveries, assessments).
    job_concurrency: int = 2
    #: Seconds between two periodic rescans of every stored SBOM (0: none; a rescan of an unchanged
    #: advisory database does nothing, so this is how soon a ``garrison db update`` is picked up).
    rescan_interval: float = 3600.0
    #: Seconds after its last heartbeat that another process takes a dead worker's jobs back.
    stalled_after: float = 30.0
    #: Seconds a checked token is trusted without reading the database again (0: read it for every
    #: request). A revocation or a disabled user through this server takes effect at once; one made
    #: elsewhere (the CLI, another server process) within this time. Expiry is checked every request.
    auth_cache_ttl: float = 5.0
    #: Days a notification delivery that was sent or failed is kept (then an hourly job deletes it;
    #: a pending one is never deleted).
    delivery_retention_days: int = 30

    @property
    def sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


#: Fields whose values are credentials (a database URL may hold a password): never echoed in an error.
SECRET_FIELDS = frozenset({"database_url"})
#: Numeric fields and their accepted range.
_RANGES: dict[str, tuple[float, float]] = {
    "rescan_max_age_days": (1, 36_500),
    "shutdown_grace": (0, 3600),
    "job_concurrency": (1, 256),
    "rescan_interval": (0, 31_536_000),
    "stalled_after": (3, 86_400),
    "auth_cache_ttl": (0, 300),
    "delivery_retention_days": (1, 36_500),
}
_CHOICES: dict[str, tuple[str, ...]] = {"log_format": LOG_FORMATS}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _types() -> dict[str, str]:
    return {f.name: str(f.type) for f in fields(ServerSettings)}


def env_name(name: str) -> str:
    """The environment variable of setting ``name``."""
    return "GARRISON_" + name.upper()


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$GARRISON_DATA_DIR``, else the XDG data folder's ``garrison``."""
    env = os.environ if environ is None else environ
    if d := env.get(env_name("data_dir")):
        return Path(d).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "garrison"


def sqlite_url(data_dir: Path) -> str:
    """The embedded default database: SQLite ``server.db`` in the data folder."""
    return f"sqlite:///{data_dir / 'server.db'}"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) → (host, port); ValueError otherwise."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT, e.g. 127.0.0.1:8080")
    return host, int(port)


def parse_value(name: str, raw: object, origin: str) -> Any:
    """``raw`` (a string from a flag or the environment, or a YAML value) → the typed value of setting
    ``name``; :class:`~garrison.config.SettingError` naming the setting and ``origin`` otherwise."""
    kind = _types()[name]
    shown = "the value given" if name in SECRET_FIELDS else repr(raw)

    def bad(expected: str) -> SettingError:
        return SettingError(f"invalid {name} from {origin}: {shown} is not {expected}")

    optional = kind.endswith(" | None")
    kind = kind.removesuffix(" | None")
    if optional and (raw is None or raw == ""):
        return None
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE + _FALSE:
            return text in _TRUE
        raise bad("a yes/no value (true, false, 1, 0, yes, no, on, off)")
    if kind in ("int", "float"):
        try:
            number: float = (int if kind == "int" else float)(str(raw).strip().replace("_", ""))
        except ValueError:
            raise bad("a whole number" if kind == "int" else "a number") from None
        if isinstance(raw, bool) or number != number:  # True is not a number; NaN is not either
            raise bad("a number")
        lo, hi = _RANGES.get(name, (float("-inf"), float("inf")))
        if not lo <= number <= hi:
            raise bad(f"between {lo:g} and {hi:g}")
        return number
    if kind.startswith("tuple["):
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
            raise bad("a list of strings (a YAML list, or a comma-separated string)")
        kept = [v.strip() for v in items if v.strip()]
        return tuple(Path(v).expanduser() for v in kept) if kind == "tuple[Path, ...]" else tuple(kept)
    if not isinstance(raw, str):
        raise bad("a string" + (" (quote it in YAML)" if isinstance(raw, int | float) else ""))
    if kind == "Path":
        if not raw.strip():
            raise bad("a path")
        return Path(raw.strip()).expanduser()
    value = raw.strip()
    if name in _CHOICES and value not in _CHOICES[name]:
        raise bad("one of " + ", ".join(_CHOICES[name]))
    if name == "listen":
        try:
            parse_listen(value)
        except ValueError:
            raise bad("HOST:PORT, e.g. 127.0.0.1:8080") from None
    if name == "database_url" and "://" not in value:
        raise bad("a database URL such as postgresql+psycopg://USER@HOST/DB")
    return value


def _config_section(path: Path, origin: str, warnings: list[str]) -> dict[str, Any]:
    """The ``server:`` mapping of a config file, validated (unknown keys are warnings)."""
    import difflib

    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingError(f"cannot read config file {path} ({origin}): {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SettingError(f"config file {path} is not valid YAML{where}") from None
    section = data.get("server") if isinstance(data, dict) else None
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise SettingError(f"config file {path}: 'server' must be a mapping of setting: value")
    names = tuple(_types())
    values: dict[str, Any] = {}
    for key, raw in section.items():
        name = str(key).replace("-", "_")
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0].replace('_', '-')}?)" if close else ""
            warnings.append(f"config file {path}: unknown server setting {key!r} ignored{hint}")
            continue
        values[name] = parse_value(name, raw, f"config file {path}, key server.{key}")
    return values


def load_server_settings(
    flags: Mapping[str, tuple[str, object]] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    warnings: list[str] | None = None,
) -> ServerSettings:
    """Defaults < the config file's ``server:`` mapping < ``GARRISON_*`` variables < ``flags`` (setting
    name → (flag as typed, raw value); a None value is a flag not given). The config file is
    ``config_file`` (must exist), else ``$GARRISON_CONFIG``, else ``~/.config/garrison/config.yaml``.
    The database defaults to SQLite in the data folder, wherever that came from."""
    env = os.environ if environ is None else environ
    notes: list[str] = [] if warnings is None else warnings
    values: dict[str, Any] = {}
    if config_file is not None:
        if not config_file.is_file():
            raise SettingError(f"config file {config_file} (from --config) is not a file")
        values.update(_config_section(config_file, "--config", notes))
    else:
        named = env.get("GARRISON_CONFIG", "")
        path = Path(named) if named else default_config_file()
        if path.is_file():
            values.update(_config_section(path, "GARRISON_CONFIG" if named else "default location", notes))
    for name in _types():
        text = env.get(env_name(name))
        if text is not None and text != "":
            values[name] = parse_value(name, text, env_name(name))
    for name, (flag, raw) in (flags or {}).items():
        if raw is not None:
            values[name] = parse_value(name, raw, flag)
    data = values.pop("data_dir", None) or default_data_dir(env)
    url = values.pop("database_url", None) or sqlite_url(data)
    settings = replace(ServerSettings(data_dir=data, database_url=url), **values)
    check(settings)
    return settings


def check(s: ServerSettings) -> None:
    """What no single value shows: settings that only make sense together."""
    if (s.tls_cert is None) != (s.tls_key is None):
        raise SettingError("tls_cert and tls_key go together (--tls-cert FILE --tls-key FILE)")
    if s.tls_self_signed and s.tls_cert is not None:
        raise SettingError("tls_self_signed and tls_cert are two ways to serve HTTPS: choose one")


def check_files(s: ServerSettings) -> None:
    """The files serving needs are there (checked by ``garrison server run``, not by every command)."""
    for f in (s.tls_cert, s.tls_key, s.admission_policy, *s.rules):
        if f is not None and not f.is_file():
            raise SettingError(f"{f}: no such file")
