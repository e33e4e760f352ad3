""".NET dependencies of a published application: ``*.deps.json`` ``libraries`` of type ``package``."""

from __future__ import annotations

import json

from garrison.inventory import purl
from garrison.inventory.base import AnalysisResult, FileInput, MiB
from garrison.inventory.lang.spec import FileAnalyzer, result
from garrison.model import Package, PackageType


def parse_deps_json(file: FileInput) -> AnalysisResult:
    try:
        doc = json.loads(file.content)
    except ValueError as exc:
        return AnalysisResult(warnings=(f"{file.path}: invalid deps.json: {exc}",))
    libraries = doc.get("libraries") if isinstance(doc, dict) else None
    if not isinstance(libraries, dict):
        return AnalysisResult()
    packages: list[Package] = []
    for key, lib in libraries.items():
        if not isinstance(lib, dict) or lib.get("type") != "package" or "/" not in key:
            continue
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
    version=1,
    parse=parse_deps_json,
    suffixes=(".deps.json",),
    max_bytes=16 * MiB,
)
