"""PHP packages installed by Composer: ``vendor/composer/installed.json``.

Composer 1 writes a JSON list of packages; Composer 2 writes ``{"packages": [...]}``. ``composer.lock``
(``dir`` mode) has ``packages`` and ``packages-dev`` of the same shape, so both share
:func:`packages_from_list`.
"""

from __future__ import annotations

import json
from typing import Any

from garrison.inventory import purl
from garrison.inventory.base import AnalysisResult, FileInput, MiB
from garrison.inventory.lang.spec import FileAnalyzer, result
from garrison.model import Package, PackageType


def packages_from_list(items: Any, location: str, from_lockfile: bool = False) -> list[Package]:
    packages: list[Package] = []
    if not isinstance(items, list):
        return packages
    for item in items:
        if not isinstance(item, dict):
            continue
        name, version = item.get("name"), item.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            continue
        lic = item.get("license")
        licenses = tuple(x for x in lic if isinstance(x, str)) if isinstance(lic, list) else ()
        packages.append(
            Package(
                name=name,
                version=version,
                type=PackageType.COMPOSER,
                purl=purl.composer(name, version),
                locations=(location,),
                licenses=licenses,
                from_lockfile=from_lockfile,
            )
        )
    return packages


def parse_installed_json(file: FileInput) -> AnalysisResult:
    try:
        doc = json.loads(file.content)
    except ValueError as exc:
        return AnalysisResult(warnings=(f"{file.path}: invalid installed.json: {exc}",))
    items = doc.get("packages") if isinstance(doc, dict) else doc
    return result(packages_from_list(items, file.path))


def _is_composer_dir(path: str) -> bool:
    return path.endswith("vendor/composer/installed.json")


ANALYZER = FileAnalyzer(
    name="php-composer",
    version=1,
    parse=parse_installed_json,
    basenames=frozenset(("installed.json",)),
    path_ok=_is_composer_dir,
    max_bytes=16 * MiB,
)
