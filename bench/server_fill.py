"""The parts of the server benchmark that need the registry pillar (images, findings, rescans, scan on
push) and the clusters pillar (recommendations): filling their tables, and the rescan and scan-on-push
measurements. Each entry point first says (as a one-line reason) when what it needs is not built yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: (what, value, unit, target, note) as the benchmark's rows take them.
RowArgs = tuple[str, float | None, str, tuple[str, float] | None, str]


def _table(name: str) -> Any:
    from garrison.store.tables import metadata

    return metadata.tables.get(name)


def _paths() -> set[str]:
    from bench.server_harness import openapi_paths

    return openapi_paths()


def fill_images(url: str, n_findings: int) -> list[tuple[str, list[str]]] | str:
    """Images with ``n_findings`` findings in all; returns the list paths to measure, or why not."""
    if _table("image_findings") is None or "/api/v1/images" not in _paths():
        return "no images/findings store and API yet (helper H1)"
    return "images fill not written yet"


def fill_recommendations(url: str) -> list[tuple[str, list[str]]] | str:
    if not any(p.endswith("/recommendations") for p in _paths()):
        return "no clusters/{id}/recommendations API yet (helper H3)"
    return "recommendations fill not written yet"


def rescan_missing() -> str:
    import importlib

    try:
        registry = importlib.import_module("garrison.services.registry")
    except ImportError:
        return "no garrison.services.registry yet (helper H1)"
    if not hasattr(registry, "run_rescan_job"):
        return "no garrison.services.registry.run_rescan_job yet (helper H1)"
    return "rescan measurement not written yet"


def rescan(work: Path, n: int) -> list[RowArgs]:
    raise NotImplementedError


def push_missing() -> str:
    if not any(p.endswith("/notifications") for p in _paths()):
        return "no registry notifications endpoint yet (helper H1)"
    return "scan-on-push measurement not written yet"


def scan_on_push(work: Path, url: str) -> list[RowArgs]:
    raise NotImplementedError
