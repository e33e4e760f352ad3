"""Package-name normalization, applied both when the database is built and when it is queried.

Each ecosystem's registry decides which spellings name the same package; the table below encodes
those rules so that ``Django``, ``django`` and ``DJANGO`` all find the PyPI advisories.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_PEP503 = re.compile(r"[-_.]+")


def _pep503(name: str) -> str:
    """PyPI: case-insensitive, runs of ``-``, ``_`` and ``.`` are equivalent (PEP 503)."""
    return _PEP503.sub("-", name).lower()


def _crate(name: str) -> str:
    """crates.io: case-insensitive, and ``-`` / ``_`` are the same crate."""
    return name.lower().replace("_", "-")


def _lower(name: str) -> str:
    return name.lower()


def _exact(name: str) -> str:
    return name


#: OSV ecosystem (before ``:``) → rule. Absent ecosystems keep names as they are (Go module paths,
#: Maven ``group:artifact`` and RubyGems names are case-sensitive; distro package names are
#: already canonical).
_RULES: dict[str, Callable[[str], str]] = {
    "PyPI": _pep503,
    "npm": _lower,  # new npm names must be lower-case; old mixed-case ones are unique case-insensitively
    "crates.io": _crate,
    "NuGet": _lower,  # NuGet ids are case-insensitive
    "Packagist": _lower,  # Composer names are case-insensitive
}


def normalize_name(ecosystem: str, name: str) -> str:
    """The lookup form of ``name`` in ``ecosystem`` (``Debian:12``, ``PyPI``…)."""
    rule = _RULES.get(ecosystem.split(":", 1)[0], _exact)
    return rule(name.strip())
