"""Installed Ruby gems: ``specifications/*.gemspec`` (the normalized specs RubyGems writes on install).

Those files are generated Ruby with one assignment per line (``s.name = "rack".freeze``), so two
regular expressions read them; the Ruby code is never evaluated.
"""

from __future__ import annotations

import re

from garrison.inventory import purl
from garrison.inventory.base import AnalysisResult, FileInput, MiB
from garrison.inventory.lang.spec import FileAnalyzer, result, text_of
from garrison.model import Package, PackageType

_NAME = re.compile(r"""^\s*\w+\.name\s*=\s*["']([^"']+)["']""", re.M)
_VERSION = re.compile(r"""^\s*\w+\.version\s*=\s*(?:Gem::Version\.new\()?\s*["']([^"']+)["']""", re.M)
_LICENSES = re.compile(r"""^\s*\w+\.licenses?\s*=\s*\[?([^\n]*)""", re.M)
_QUOTED = re.compile(r"""["']([^"']+)["']""")


def parse_gemspec(file: FileInput) -> AnalysisResult:
    text = text_of(file)
    name, version = _NAME.search(text), _VERSION.search(text)
    if not name or not version:
        return AnalysisResult(warnings=(f"{file.path}: gemspec without name/version",))
    lic = _LICENSES.search(text)
    licenses = tuple(_QUOTED.findall(lic.group(1))) if lic else ()
    pkg = Package(
        name=name.group(1),
        version=version.group(1),
        type=PackageType.GEM,
        purl=purl.gem(name.group(1), version.group(1)),
        locations=(file.path,),
        licenses=licenses,
    )
    return result([pkg])


def _in_specifications(path: str) -> bool:
    """``…/specifications/x.gemspec``, and Ruby's bundled default gems (``specifications/default/``)."""
    parent = path[: path.rfind("/")]
    return parent.endswith(("/specifications", "/specifications/default")) or parent == "specifications"


ANALYZER = FileAnalyzer(
    name="ruby-gemspec",
    version=1,
    parse=parse_gemspec,
    suffixes=(".gemspec",),
    path_ok=_in_specifications,
    max_bytes=4 * MiB,
)
