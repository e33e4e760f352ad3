""".NET dependencies of a published application: ``*.deps.json`` ``libraries``.

As Trivy and Syft report them: NuGet packages (``package``), the application's own projects
(``project``) and, in a self-contained app, the runtime packs it carries
(``Microsoft.NETCore.App.Runtime.<rid>``, ``Microsoft.AspNetCore.App.Runtime.<rid>``: the runtime's
advisories are filed under them). A library whose entry in the runtime target lists no runtime,
native or resource files was only needed to compile (analyzers, reference assemblies) and is not
part of the application.
"""

from __future__ import annotations

import json
from typing import Any

from garrison.inventory import purl
from garrison.inventory.base import AnalysisResult, FileInput, MiB
from garrison.inventory.lang.spec import FileAnalyzer, result
from garrison.model import Package, PackageType

_TYPES = frozenset(("package", "project", "runtimepack"))
#: Kinds of files a target entry lists that end up in the published application.
_ASSETS = ("runtime", "native", "runtimeTargets", "resources")


def _runtime_target(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The target the application runs on (``runtimeTarget.name``), None when the file has none."""
    targets = doc.get("targets")
    rt = doc.get("runtimeTarget")
    name = rt.get("name") if isinstance(rt, dict) else None
    if not isinstance(targets, dict) or not isinstance(name, str):
        return None
    target = targets.get(name)
    return target if isinstance(target, dict) else None


def parse_deps_json(file: FileInput) -> AnalysisResult:
    try:
        doc = json.loads(file.content)
    except ValueError as exc:
        return AnalysisResult(warnings=(f"{file.path}: invalid deps.json: {exc}",))
    libraries = doc.get("libraries") if isinstance(doc, dict) else None
    if not isinstance(libraries, dict):
        return AnalysisResult()
    target = _runtime_target(doc)
    packages: list[Package] = []
    for key, lib in libraries.items():
        if not isinstance(lib, dict) or str(lib.get("type", "")).lower() not in _TYPES or "/" not in key:
            continue
        entry = target.get(key) if target is not None else None
        if isinstance(entry, dict) and not any(entry.get(k) for k in _ASSETS):
            continue  # compile-time only: nothing of it ships with the application
        name, _, version = key.partition("/")
        packages.append(
            Package(
                name=name,
                version=version,
                type=PackageType.NUGET,
                purl=purl.nuget(name, version),
                locations=(file.path,),
            )
        )
    return result(packages)


ANALYZER = FileAnalyzer(
    name="dotnet-deps",
    version=2,
    parse=parse_deps_json,
    suffixes=(".deps.json",),
    max_bytes=16 * MiB,
)
