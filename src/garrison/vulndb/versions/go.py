"""Go module versions: semantic versions with a ``v`` prefix.

Pseudo-versions (``v0.0.0-20200101120000-abcdef123456``) are semver pre-releases and order
correctly as such; ``+incompatible`` is build metadata in Go's eyes and is dropped. OSV's Go
ranges omit the ``v``, module versions include it: both are accepted.
"""

from __future__ import annotations

from garrison.vulndb.versions import semver
from garrison.vulndb.versions.base import KeyScheme, clean


def key(version: str) -> object:
    v = clean(version).removesuffix("+incompatible")
    return semver.key(v)


SCHEME = KeyScheme("go", key)
