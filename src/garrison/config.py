"""Settings. Each is declared once here and reachable as a CLI flag, an environment variable
(``GARRISON_<NAME>``) and a key of the config file (``~/.config/garrison/config.yaml`` or ``--config``).

Every value is validated when it is loaded, with the place it came from (``--workers``,
``GARRISON_WORKERS``, ``config.yaml key workers``): a bad one is a :class:`SettingError` (a usage error,
exit 2) that names both. A small typed validator rather than pydantic: importing pydantic and building
one model costs 135-215 ms on these machines (measured), against a whole warm ``garrison sbom`` of
~0.1 s. Secret settings (:data:`SECRET_SETTINGS`) are left out of ``repr`` and never echoed in a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from garrison.errors import UsageError

DEFAULT_MIRROR = "https://osv-vulnerabilities.storage.googleapis.com"

#: Settings whose values are credentials: never in a ``repr``, an error message or a log line.
SECRET_SETTINGS = frozenset({"password"})


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "garrison"


@dataclass(frozen=True)
class Settings:
    """Everything a scan can be tuned with. Frozen: pass a new one with :func:`dataclasses.replace`.

    List settings also accept a comma-separated string (``Settings(ecosystems="npm,PyPI")``), the form
    flags and environment variables use."""

    #: Root of garrison's own files: layer cache, advisory database, downloads.
    cache_dir: Path = field(default_factory=_default_cache_dir)
    #: Disable the per-layer inventory cache.
    no_cache: bool = False
    #: Advisory mirror laid out like the OSV bucket (https://, http:// or file://).
    mirror: str = DEFAULT_MIRROR
    #: OSV ecosystems to download (empty = all that the mirror has among the known ones).
    ecosystems: tuple[str, ...] = ()
    #: CISA KEV catalog URL or file:// path ("" = ``<mirror>/../kev/known_exploited_vulnerabilities.json``
    #: when it exists).
    kev_url: str = ""
    #: Advisory database file ("" = ``<cache_dir>/db/garrison.db``).
    db_path: str = ""
    #: Do not download anything; fail when the database is missing.
    offline: bool = False
    #: Registry user name (else ~/.docker/config.json).
    username: str = ""
    #: Registry password or token (a secret: not in ``repr``).
    password: str = field(default="", repr=False)
    #: Registries (host[:port]) that may be reached over plain HTTP.
    insecure_registries: tuple[str, ...] = ()
    #: Skip TLS verification (never the default).
    tls_skip_verify: bool = False
    #: Extra CA bundle for registries.
    ca_file: str = ""
    #: Platform to pick from image indexes (``os/arch[/variant]``).
    platform: str = "linux/amd64"
    #: Docker daemon socket for ``docker:`` sources.
    docker_host: str = "unix:///var/run/docker.sock"
    #: Cap on the decompressed bytes of one layer (decompression-bomb guard).
    max_layer_bytes: int = 64 * 1024**3
    #: Cap on manifests, configs and other JSON documents.
    max_manifest_bytes: int = 8 * 1024**2
    #: Number of layers read in parallel.
    workers: int = 2

    def __post_init__(self) -> None:
        for name in _LIST_SETTINGS:
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, _split_list(value))

    @property
    def database_file(self) -> Path:
        return Path(self.db_path) if self.db_path else self.cache_dir / "db" / "garrison.db"


#: Setting name → its declared type (``"bool"``, ``"int"``, ``"str"``, ``"Path"``, ``"tuple[str, ...]"``).
_TYPES = {f.name: str(f.type) for f in fields(Settings)}
_NAMES = tuple(_TYPES)
_LIST_SETTINGS = tuple(n for n, t in _TYPES.items() if t == "tuple[str, ...]")
#: Integer settings and their smallest and largest accepted values.
_INT_RANGES = {"workers": (1, 256), "max_layer_bytes": (1, 2**63 - 1), "max_manifest_bytes": (1, 2**63 - 1)}
_URL_SCHEMES = {
    "mirror": ("https://", "http://", "file://"),
    "kev_url": ("https://", "http://", "file://"),
    "docker_host": ("unix://", "tcp://", "http://", "https://"),
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class SettingError(UsageError):
    """A setting has a value that cannot be used; the message names the setting and where it came from."""


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


def _describe(name: str, value: object) -> str:
    return "the value given" if name in SECRET_SETTINGS else repr(value)


def parse_value(name: str, raw: object, origin: str) -> Any:
    """``raw`` (a string from a flag or the environment, or any YAML value from the config file) → the
    typed value of setting ``name``; :class:`SettingError` naming the setting and ``origin`` when it is
    not one."""
    kind = _TYPES[name]

    def bad(expected: str) -> SettingError:
        return SettingError(f"invalid {name} from {origin}: {_describe(name, raw)} is not {expected}")

    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str | int) and str(raw).strip().lower() in _TRUE + _FALSE:
            return str(raw).strip().lower() in _TRUE
        raise bad("a yes/no value (true, false, 1, 0, yes, no, on, off)")
    if kind == "int":
        lo, hi = _INT_RANGES[name]
        try:
            number = int(raw.strip().replace("_", "")) if isinstance(raw, str) else raw
        except ValueError:
            number = None
        if not isinstance(number, int) or isinstance(number, bool):
            raise bad("a whole number")
        if not lo <= number <= hi:
            raise bad(f"between {lo} and {hi}")
        return number
    if name in _LIST_SETTINGS:
        if isinstance(raw, str):
            return _split_list(raw)
        if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
            return tuple(v.strip() for v in raw if v.strip())
        raise bad("a list of strings (a YAML list, or a comma-separated string)")
    if not isinstance(raw, str):
        raise bad("a string" + (" (quote it in YAML)" if isinstance(raw, int | float) else ""))
    if kind == "Path":
        if not raw.strip():
            raise bad("a path")
        path = Path(raw).expanduser()
        if name == "cache_dir" and path.exists() and not path.is_dir():
            raise bad("a directory")
        return path
    value = raw.strip() if name not in SECRET_SETTINGS else raw
    if name == "db_path" and value and os.path.exists(value) and not os.path.isfile(value):
        # The database is rebuilt beside the file and renamed over it: never over a device or a FIFO.
        raise bad("a regular file (the database is replaced atomically by a rename)")
    schemes = _URL_SCHEMES.get(name)
    if schemes and value and not value.startswith(schemes):
        raise bad("a URL starting with " + ", ".join(schemes))
    if name == "platform" and not 2 <= len(value.split("/")) <= 3:
        raise bad("a platform like linux/amd64 or linux/arm64/v8")
    return value


def default_config_file() -> Path:
    return Path.home() / ".config/garrison/config.yaml"


#: Sections of the config file that other commands read (``server:`` — ``garrison server``'s settings).
_SECTIONS = frozenset({"server"})


def _read_config_file(path: Path, origin: str, warnings: list[str]) -> dict[str, Any]:
    """The settings in a config file, validated. ``warnings`` collects unknown keys."""
    import difflib

    import yaml  # lazy: most runs have no config file

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingError(f"cannot read config file {path} ({origin}): {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise SettingError(f"config file {path} is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingError(f"config file {path} must be a mapping of setting: value, not a {type(data).__name__}")
    values: dict[str, Any] = {}
    for key, raw in data.items():
        name = str(key).replace("-", "_")
        if name in _SECTIONS:
            continue  # read by the command it belongs to (garrison server: cli/server.py)
        if name not in _NAMES:
            close = difflib.get_close_matches(name, _NAMES, n=1)
            hint = f" (did you mean {close[0].replace('_', '-')}?)" if close else ""
            warnings.append(f"config file {path}: unknown setting {key!r} ignored{hint}")
            continue
        values[name] = parse_value(name, raw, f"config file {path}, key {key}")
    return values


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, tuple[str, object]] | None = None,
    warnings: list[str] | None = None,
) -> Settings:
    """Defaults < the config file < ``GARRISON_*`` environment variables < ``flags``
    (setting name → (flag as typed, raw value)). Every value is validated with its origin.

    The config file is ``config_file``, else ``GARRISON_CONFIG``, else ``~/.config/garrison/config.yaml``;
    ``--config`` must exist; a ``GARRISON_CONFIG`` that does not is a warning (``/dev/null`` means none).
    Warnings (that one, unknown keys) are appended to ``warnings``: the core never prints."""
    env = os.environ if environ is None else environ
    notes: list[str] = [] if warnings is None else warnings
    values: dict[str, Any] = {}
    if config_file is not None:
        if config_file.is_dir() or not config_file.exists():
            what = "is a directory" if config_file.is_dir() else "does not exist"
            raise SettingError(f"config file {config_file} (from --config) {what}")
        values.update(_read_config_file(config_file, "--config", notes))
    else:
        named = env.get("GARRISON_CONFIG", "")
        path = Path(named) if named else default_config_file()
        if path.is_file():
            values.update(_read_config_file(path, "GARRISON_CONFIG" if named else "default location", notes))
        elif named and named != os.devnull:
            notes.append(f"config file {path} (from GARRISON_CONFIG) does not exist; using no config file")
    for name in _NAMES:
        ev = env.get("GARRISON_" + name.upper())
        if ev is not None and ev != "":
            values[name] = parse_value(name, ev, "GARRISON_" + name.upper())
    for name, (flag, raw) in (flags or {}).items():
        values[name] = parse_value(name, raw, flag)
    return replace(Settings(), **values)
