"""Installed Python distributions: ``*.dist-info/METADATA``, ``*.egg-info/PKG-INFO``, ``*.egg-info``
files, and eggs (``x.egg/EGG-INFO/PKG-INFO`` in an egg folder, ``EGG-INFO/PKG-INFO`` in an ``.egg`` zip).

All use the core-metadata format (RFC 822 style headers). Only the header block is read, with a
line loop rather than :mod:`email` (which is slow and strict about malformed input). Of an egg zip
only the central directory and the one metadata member are read, with a size cap.
"""

from __future__ import annotations

from garrison.inventory import purl
from garrison.inventory.base import AnalysisResult, FileInput, MiB
from garrison.inventory.lang.spec import FileAnalyzer, result, text_of
from garrison.model import Package, PackageType

_LICENSE_CLASSIFIER = "License :: "


def parse_metadata_headers(text: str) -> dict[str, list[str]]:
    """Header fields (repeatable ones keep every value) up to the first blank line."""
    fields: dict[str, list[str]] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t":
            if last and fields.get(last):
                fields[last][-1] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        last = key.strip()
        fields.setdefault(last, []).append(value.strip())
    return fields


def _licenses(fields: dict[str, list[str]]) -> tuple[str, ...]:
    expr = (fields.get("License-Expression") or [""])[0]
    if expr:
        return (expr,)
    lic = (fields.get("License") or [""])[0]
    # Some projects paste the whole license text into License:; keep only short identifiers.
    if lic and lic.upper() != "UNKNOWN" and "\n" not in lic and len(lic) <= 100:
        return (lic,)
    out = []
    for c in fields.get("Classifier", []):
        if c.startswith(_LICENSE_CLASSIFIER):
            out.append(c.rsplit(" :: ", 1)[-1])
    return tuple(out)


#: An egg's PKG-INFO is a few kilobytes; more is not metadata.
_MAX_PKG_INFO = 1 * MiB


def _egg_metadata(file: FileInput) -> str | None:
    """``EGG-INFO/PKG-INFO`` of an egg zip, None when there is none (not an egg, or a broken zip)."""
    import io
    import zipfile  # lazy: eggs are rare

    try:
        with zipfile.ZipFile(io.BytesIO(file.content)) as zf:
            info = zf.getinfo("EGG-INFO/PKG-INFO")
            with zf.open(info) as fh:
                data = fh.read(_MAX_PKG_INFO + 1)
    except (KeyError, zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError):
        return None
    if len(data) > _MAX_PKG_INFO:
        return None
    return data.decode("utf-8", "replace")


def parse_metadata(file: FileInput) -> AnalysisResult:
    if file.path.endswith(".egg"):
        text = _egg_metadata(file)
        if text is None:
            return AnalysisResult(warnings=(f"{file.path}: not an egg (no EGG-INFO/PKG-INFO)",))
    else:
        text = text_of(file)
    fields = parse_metadata_headers(text)
    name = (fields.get("Name") or [""])[0]
    version = (fields.get("Version") or [""])[0]
    if not name or not version:
        return AnalysisResult(warnings=(f"{file.path}: Python metadata without Name/Version",))
    pkg = Package(
        name=name,
        version=version,
        type=PackageType.PYTHON,
        purl=purl.pypi(name, version),
        locations=(file.path,),
        licenses=_licenses(fields),
    )
    return result([pkg])


def _is_metadata_path(path: str) -> bool:
    """``x.dist-info/METADATA``, ``x.egg-info/PKG-INFO``, a bare ``x.egg-info`` file, an ``x.egg`` zip
    or ``x.egg/EGG-INFO/PKG-INFO``."""
    if path.endswith((".egg-info", ".egg")):
        return True
    parent = path[: path.rfind("/")]
    if path.endswith("/METADATA"):
        return parent.endswith(".dist-info")
    return parent.endswith(".egg-info") or (parent.endswith("/EGG-INFO") and parent[:-9].endswith(".egg"))


ANALYZER = FileAnalyzer(
    name="python-dist",
    version=2,
    parse=parse_metadata,
    basenames=frozenset(("METADATA", "PKG-INFO")),
    suffixes=(".egg-info", ".egg"),
    path_ok=_is_metadata_path,
    max_bytes=64 * MiB,  # eggs are zips of the whole package; metadata files are kilobytes
)
