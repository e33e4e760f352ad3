"""Fallback ordering for ecosystems without a dedicated scheme.

Natural ordering of alphanumeric segments (numbers as integers, numbers above words, longer
above shorter) is what most version strings mean; it is rpmvercmp's rule, so the segment key
is shared with :mod:`garrison.vulndb.versions.rpm`.
"""

from __future__ import annotations

from garrison.vulndb.versions.base import KeyScheme, clean
from garrison.vulndb.versions.rpm import segments_key


def key(version: str) -> object:
    return segments_key(clean(version))


SCHEME = KeyScheme("generic", key)
