"""The RPM header blob, as stored in every rpmdb backend (sqlite, Berkeley DB hash, ndb).

Layout (all big-endian): ``il`` (number of index entries, int32), ``dl`` (data length, int32),
``il`` entries of ``tag, type, offset, count`` (four int32s), then ``dl`` bytes of data. Only the handful
of tags a scanner needs are decoded; everything is bounds-checked because the bytes come from an image.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_LICENSE = 1014
TAG_ARCH = 1022
TAG_SOURCERPM = 1044
TAG_DIRINDEXES = 1116
TAG_BASENAMES = 1117
TAG_DIRNAMES = 1118
TAG_MODULARITYLABEL = 5096

_WANTED = frozenset(
    (
        TAG_NAME,
        TAG_VERSION,
        TAG_RELEASE,
        TAG_EPOCH,
        TAG_LICENSE,
        TAG_ARCH,
        TAG_SOURCERPM,
        TAG_DIRINDEXES,
        TAG_BASENAMES,
        TAG_DIRNAMES,
        TAG_MODULARITYLABEL,
    )
)

TYPE_INT32 = 4
TYPE_STRING = 6
TYPE_STRING_ARRAY = 8
TYPE_I18NSTRING = 9

#: Sanity caps: a real header has at most a few thousand entries and a few MiB of data.
MAX_ENTRIES = 1 << 16
MAX_DATA = 64 << 20


class HeaderError(ValueError):
    """The blob is not a valid header."""


@dataclass(frozen=True, slots=True)
class RpmHeader:
    name: str
    version: str
    release: str
    epoch: int | None
    arch: str
    license: str
    source_rpm: str
    modularity_label: str
    #: Installed files, relative (no leading "/").
    files: tuple[str, ...]


def _strings(data: bytes, offset: int, count: int) -> list[str]:
    out: list[str] = []
    pos = offset
    for _ in range(count):
        end = data.find(b"\0", pos)
        if end < 0:
            raise HeaderError("unterminated string")
        out.append(data[pos:end].decode("utf-8", "replace"))
        pos = end + 1
    return out


def _int32s(data: bytes, offset: int, count: int) -> list[int]:
    if offset + 4 * count > len(data) or offset < 0:
        raise HeaderError("int32 array out of bounds")
    return list(struct.unpack_from(f">{count}i", data, offset))


def parse_header(blob: bytes) -> RpmHeader:
    """Decode one header blob; raises :class:`HeaderError` on malformed input."""
    if len(blob) < 8:
        raise HeaderError("blob too short")
    il, dl = struct.unpack_from(">ii", blob, 0)
    if not (0 < il <= MAX_ENTRIES) or not (0 <= dl <= MAX_DATA):
        raise HeaderError(f"implausible header sizes il={il} dl={dl}")
    data_start = 8 + 16 * il
    if data_start + dl > len(blob):
        raise HeaderError("header data truncated")
    data = blob[data_start : data_start + dl]
    values: dict[int, list[str] | list[int]] = {}
    for i in range(il):
        tag, typ, offset, count = struct.unpack_from(">iiii", blob, 8 + 16 * i)
        if tag not in _WANTED:
            continue
        if not (0 <= offset < dl) or count <= 0 or count > MAX_ENTRIES * 16:
            raise HeaderError(f"tag {tag} out of bounds")
        if typ in (TYPE_STRING, TYPE_I18NSTRING, TYPE_STRING_ARRAY):
            values[tag] = _strings(data, offset, 1 if typ == TYPE_STRING else count)
        elif typ == TYPE_INT32:
            values[tag] = _int32s(data, offset, count)

    def text(tag: int) -> str:
        v = values.get(tag)
        return str(v[0]) if v else ""

    epoch_v = values.get(TAG_EPOCH)
    epoch = int(epoch_v[0]) if epoch_v else None
    return RpmHeader(
        name=text(TAG_NAME),
        version=text(TAG_VERSION),
        release=text(TAG_RELEASE),
        epoch=epoch,
        arch=text(TAG_ARCH),
        license=text(TAG_LICENSE),
        source_rpm=text(TAG_SOURCERPM),
        modularity_label=text(TAG_MODULARITYLABEL),
        files=_files(values),
    )


def _files(values: dict[int, list[str] | list[int]]) -> tuple[str, ...]:
    basenames = values.get(TAG_BASENAMES) or []
    dirnames = values.get(TAG_DIRNAMES) or []
    indexes = values.get(TAG_DIRINDEXES) or []
    out: list[str] = []
    for base, idx in zip(basenames, indexes, strict=False):
        if isinstance(idx, int) and 0 <= idx < len(dirnames):
            out.append(f"{dirnames[idx]}{base}".lstrip("/"))
    return tuple(out)


def split_source_rpm(source_rpm: str) -> tuple[str, str]:
    """``bash-5.1.8-6.el9.src.rpm`` → (``bash``, ``5.1.8-6.el9``); ("", "") when it does not parse."""
    s = source_rpm
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if s.endswith(suffix):
            s = s[: -len(suffix)]
            break
    else:
        return "", ""
    parts = s.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return "", ""
    return parts[0], f"{parts[1]}-{parts[2]}"
