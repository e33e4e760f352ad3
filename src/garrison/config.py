"""Settings. Each is declared once here and reachable as a CLI flag, an environment variable
(``GARRISON_<NAME>``) and a key of the config file (``~/.config/garrison/config.yaml`` or ``--config``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_MIRROR = "https://osv-vulnerabilities.storage.googleapis.com"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "garrison"


@dataclass(frozen=True)
class Settings:
    """Everything a scan can be tuned with. Frozen: pass a new one with :func:`dataclasses.replace`."""

    #: Root of garrison's own files: layer cache, advisory database, downloads.
    cache_dir: Path = field(default_factory=_default_cache_dir)
    #: Disable the per-layer inventory cache.
    no_cache: bool = False
    #: Advisory mirror laid out like the OSV bucket (https://, http:// or file://).
    mirror: str = DEFAULT_MIRROR
    #: OSV ecosystems to download ("" = all that the mirror has among the known ones).
    ecosystems: str = ""
    #: CISA KEV catalog URL or file:// path ("" = ``<mirror>/../kev/known_exploited_vulnerabilities.json``
    #: when it exists).
    kev_url: str = ""
    #: Advisory database file ("" = ``<cache_dir>/db/garrison.db``).
    db_path: str = ""
    #: Do not download anything; fail when the database is missing.
    offline: bool = False
    #: Registry credentials (else ~/.docker/config.json).
    username: str = ""
    password: str = ""
    #: Registries (host[:port], comma-separated) that may be reached over plain HTTP.
    insecure_registries: str = ""
    #: Skip TLS verification (never the default).
    tls_skip_verify: bool = False
    #: Extra CA bundle for registries.
    ca_file: str = ""
    #: Platform to pick from image indexes.
    platform: str = "linux/amd64"
    #: Docker daemon socket for ``docker:`` sources.
    docker_host: str = "unix:///var/run/docker.sock"
    #: Cap on the decompressed bytes of one layer (decompression-bomb guard).
    max_layer_bytes: int = 64 * 1024**3
    #: Cap on manifests, configs and other JSON documents.
    max_manifest_bytes: int = 8 * 1024**2
    #: Number of layers read in parallel.
    workers: int = 2

    @property
    def database_file(self) -> Path:
        return Path(self.db_path) if self.db_path else self.cache_dir / "db" / "garrison.db"


def _coerce(value: str, like: Any) -> Any:
    if isinstance(like, bool):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(like, int):
        return int(value)
    if isinstance(like, Path):
        return Path(value).expanduser()
    return value


def load_settings(config_file: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Defaults, then the config file, then ``GARRISON_*`` environment variables. CLI flags go last
    (the CLI applies them with :func:`dataclasses.replace`)."""
    env = os.environ if environ is None else environ
    base = Settings()
    values: dict[str, Any] = {}
    path = config_file or Path(
        env.get("GARRISON_CONFIG", "") or (Path.home() / ".config/garrison/config.yaml")
    )
    if path.is_file():
        import yaml  # lazy: most runs have no config file

        data = yaml.safe_load(path.read_text()) or {}
        if isinstance(data, dict):
            for f in fields(Settings):
                key = f.name.replace("_", "-")
                for k in (f.name, key):
                    if k in data:
                        values[f.name] = _coerce(str(data[k]), getattr(base, f.name))
    for f in fields(Settings):
        ev = env.get("GARRISON_" + f.name.upper())
        if ev is not None and ev != "":
            values[f.name] = _coerce(ev, getattr(base, f.name))
    return replace(base, **values)
