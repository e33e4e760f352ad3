"""Per-layer result cache.

A layer's analysis depends only on its uncompressed content (its diff_id) and on the analyzers that
read it, so results are stored under ``<cache_dir>/layers/<diff_id>-<analyzers hash>.json``. A warm
scan finds every layer here and never opens (or, for registries, downloads) a blob; images sharing a
base layer share its entry. Bumping an analyzer's ``version`` changes the hash, so stale results are
never served. Files are written atomically (temporary file + rename) so concurrent scans and crashes
leave either a whole entry or none; an unreadable entry is a miss, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from garrison.inventory.apply import LayerResult
from garrison.inventory.base import AnalysisResult, Analyzer
from garrison.model import OSInfo, Package, PackageType
from garrison.model.common import Severity
from garrison.model.secret import Secret

#: Bump when the JSON layout below changes (2: package types are purl types).
FORMAT = 2
_PKG_FIELDS = tuple(f.name for f in fields(Package))
_OS_FIELDS = tuple(f.name for f in fields(OSInfo))
_SECRET_FIELDS = tuple(f.name for f in fields(Secret))


def _secret_to_json(s: Secret) -> dict[str, Any]:
    out = {name: getattr(s, name) for name in _SECRET_FIELDS}
    out["severity"] = s.severity.name
    return out


def _secret_from_json(d: dict[str, Any]) -> Secret:
    kw = {k: v for k, v in d.items() if k in _SECRET_FIELDS}
    kw["severity"] = Severity[kw["severity"]]
    return Secret(**kw)


def analyzers_key(analyzers: Sequence[Analyzer]) -> str:
    """A short hash of every analyzer's (name, version): the second half of a cache key."""
    ids = sorted((a.name, int(a.version)) for a in analyzers)
    text = json.dumps([FORMAT, ids], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _pkg_to_json(p: Package) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _PKG_FIELDS:
        v = getattr(p, name)
        out[name] = list(v) if isinstance(v, tuple) else (v.value if isinstance(v, PackageType) else v)
    return out


def _pkg_from_json(d: dict[str, Any]) -> Package:
    kw: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in _PKG_FIELDS}
    kw["type"] = PackageType(kw["type"])
    return Package(**kw)


def _result_to_json(r: AnalysisResult) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.packages:
        out["packages"] = [_pkg_to_json(p) for p in r.packages]
    if r.os is not None:
        out["os"] = {k: getattr(r.os, k) for k in _OS_FIELDS}
    if r.system_files:
        out["system_files"] = list(r.system_files)
    if r.warnings:
        out["warnings"] = list(r.warnings)
    if r.secrets:
        out["secrets"] = [_secret_to_json(s) for s in r.secrets]
    return out


def _result_from_json(d: dict[str, Any]) -> AnalysisResult:
    os_d = d.get("os")
    return AnalysisResult(
        packages=tuple(_pkg_from_json(p) for p in d.get("packages", ())),
        os=OSInfo(**{k: v for k, v in os_d.items() if k in _OS_FIELDS}) if os_d else None,
        system_files=tuple(d.get("system_files", ())),
        warnings=tuple(d.get("warnings", ())),
        secrets=tuple(_secret_from_json(s) for s in d.get("secrets", ())),
    )


def layer_to_json(layer: LayerResult) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "diff_id": layer.diff_id,
        "files": {p: _result_to_json(r) for p, r in layer.files.items()},
        "whiteouts": list(layer.whiteouts),
        "opaque_dirs": list(layer.opaque_dirs),
        "warnings": list(layer.warnings),
        "replaced": list(layer.replaced),
    }


def layer_from_json(d: dict[str, Any]) -> LayerResult:
    if d.get("format") != FORMAT:
        raise ValueError("cache format")
    return LayerResult(
        diff_id=str(d["diff_id"]),
        files={str(p): _result_from_json(r) for p, r in d["files"].items()},
        whiteouts=tuple(d.get("whiteouts", ())),
        opaque_dirs=tuple(d.get("opaque_dirs", ())),
        warnings=tuple(d.get("warnings", ())),
        replaced=tuple(d.get("replaced", ())),
    )


class LayerCache:
    """JSON files under ``<cache_dir>/layers``; ``enabled=False`` turns every call into a no-op miss."""

    def __init__(self, cache_dir: Path, analyzers: Sequence[Analyzer], enabled: bool = True) -> None:
        self.dir = Path(cache_dir) / "layers"
        self.key = analyzers_key(analyzers)
        self.enabled = enabled

    def _file(self, diff_id: str) -> Path | None:
        alg, _, hexpart = diff_id.partition(":")
        if alg != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
            return None
        return self.dir / f"{hexpart}-{self.key}.json"

    def get(self, diff_id: str) -> LayerResult | None:
        f = self._file(diff_id) if self.enabled else None
        if f is None:
            return None
        try:
            result = layer_from_json(json.loads(f.read_bytes()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        return result if result.diff_id == diff_id else None

    def put(self, layer: LayerResult) -> None:
        f = self._file(layer.diff_id) if self.enabled else None
        if f is None:
            return
        data = json.dumps(layer_to_json(layer), separators=(",", ":")).encode()
        import tempfile  # lazy: only a cold scan writes

        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.dir)
        except OSError:
            return  # a read-only cache must not fail the scan
        try:
            with os.fdopen(fd, "wb") as fp:
                fp.write(data)
            os.replace(tmp, f)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
