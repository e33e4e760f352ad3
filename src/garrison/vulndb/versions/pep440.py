"""Python package versions (PEP 440) via ``packaging.version``, the reference implementation pip uses.

Legacy (non-PEP 440) versions raise :class:`InvalidVersion`: pip itself no longer orders them.
"""

from __future__ import annotations

from packaging.version import InvalidVersion as _PackagingInvalid
from packaging.version import Version

from garrison.vulndb.versions.base import InvalidVersion, KeyScheme, clean


def key(version: str) -> Version:
    try:
        return Version(clean(version))
    except _PackagingInvalid:
        raise InvalidVersion(f"invalid PEP 440 version {version!r}") from None


SCHEME = KeyScheme("pep440", key)
