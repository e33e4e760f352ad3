"""npm packages: installed ones (``node_modules/<name>/package.json``, ``node_modules/@scope/<name>/…``)
and the application itself (a ``package.json`` outside any ``node_modules``, as Trivy and Syft report it).

Inside ``node_modules`` only manifests sitting directly in a package directory count; a package's
own test fixtures (``node_modules/x/test/fixtures/package.json``) do not describe installed packages.
"""

from __future__ import annotations

import json
from typing import Any

from garrison.inventory import purl
from garrison.inventory.base import AnalysisResult, FileInput, MiB
from garrison.inventory.lang.spec import FileAnalyzer, result
from garrison.model import Package, PackageType


def is_installed_manifest(path: str) -> bool:
    """``…/node_modules/pkg/package.json`` or ``…/node_modules/@scope/pkg/package.json``."""
    parts = path.split("/")
    if len(parts) >= 3 and parts[-3] == "node_modules" and not parts[-2].startswith("@"):
        return True
    return len(parts) >= 4 and parts[-4] == "node_modules" and parts[-3].startswith("@")


def is_package_manifest(path: str) -> bool:
    """An installed package's manifest, or an application's own (no ``node_modules`` on the path)."""
    return "node_modules/" not in path or is_installed_manifest(path)


def _licenses(doc: dict[str, Any]) -> tuple[str, ...]:
    lic = doc.get("license")
    if isinstance(lic, str) and lic:
        return (lic,)
    if isinstance(lic, dict) and isinstance(lic.get("type"), str):
        return (lic["type"],)
    out: list[str] = []
    for item in doc.get("licenses") or []:
        if isinstance(item, dict) and isinstance(item.get("type"), str):
            out.append(item["type"])
        elif isinstance(item, str):
            out.append(item)
    return tuple(out)


def package_from_manifest(doc: Any, location: str, from_lockfile: bool = False) -> Package | None:
    if not isinstance(doc, dict):
        return None
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    return Package(
        name=name,
        version=version,
        type=PackageType.NPM,
        purl=purl.npm(name, version),
        locations=(location,),
        licenses=_licenses(doc),
        from_lockfile=from_lockfile,
    )


def parse_package_json(file: FileInput) -> AnalysisResult:
    try:
        doc = json.loads(file.content)
    except ValueError as exc:
        return AnalysisResult(warnings=(f"{file.path}: invalid package.json: {exc}",))
    pkg = package_from_manifest(doc, file.path)
    return result([pkg] if pkg else [])


ANALYZER = FileAnalyzer(
    name="npm-package",
    version=2,
    parse=parse_package_json,
    basenames=frozenset(("package.json",)),
    path_ok=is_package_manifest,
    max_bytes=4 * MiB,
)
