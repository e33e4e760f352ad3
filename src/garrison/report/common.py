"""Small helpers shared by the renderers (ids, times, tool identity)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

import garrison

if TYPE_CHECKING:
    from garrison.model import Package

TOOL_NAME = "garrison"


def tool_version(declared: str = "") -> str:
    return declared or garrison.__version__


def timestamp(declared: str = "") -> str:
    """``declared`` or now, as ISO 8601 UTC with a ``Z`` (the form SARIF, CycloneDX and SPDX accept)."""
    if declared:
        return declared
    # time rather than datetime: importing datetime is a measurable part of a warm ``garrison sbom``.
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def package_refs(packages: Iterable[Package]) -> dict[Package, str]:
    """A unique, stable reference per package: its purl, suffixed when two packages share one
    (the same library vendored twice), else ``type:name@version``. Used as CycloneDX ``bom-ref`` and
    to tie findings to packages in the JSON report."""
    refs: dict[Package, str] = {}
    used: set[str] = set()
    for pkg in packages:
        if pkg in refs:
            continue
        base = pkg.purl or f"{pkg.type.value}:{pkg.name}@{pkg.version}"
        ref, n = base, 1
        while ref in used:
            n += 1
            ref = f"{base}#{n}"
        used.add(ref)
        refs[pkg] = ref
    return refs


def random_uuid() -> str:
    """A random (version 4) UUID as text, for CycloneDX serial numbers and SPDX namespaces.

    Not ``uuid.uuid4()``: importing :mod:`uuid` costs about 27 ms (measured with ``-X importtime``; it
    pulls in ``platform``), a tenth of a warm ``garrison sbom``. RFC 9562 section 5.4 is all this needs.
    """
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # variant 10
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def write_json(doc: Any, out: IO[str]) -> None:
    """``doc`` as JSON indented by two spaces, then a newline: the form of every JSON document garrison
    writes. Through orjson: byte for byte what ``json.dumps(doc, indent=2, ensure_ascii=False)`` writes for
    these documents (a test checks it on a real report), at a tenth of what ``json.dump``'s pure-Python
    indenting encoder took (0.1 s of a warm ``scan -f json`` of the app image)."""
    import orjson

    out.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    out.write("\n")
