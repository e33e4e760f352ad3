"""The streaming tar walker and decompression, on real tar bytes written by Python's tarfile, GNU tar
conventions and hand-made headers."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest
import zstandard

from garrison.errors import BadImageError, LimitExceededError
from garrison.layers.decompress import ChunkStream
from garrison.layers.entry import EntryKind
from garrison.layers.tar import TarWalker, normalize_path, parse_pax

LONG = "usr/share/" + "/".join(["a-rather-long-directory-name"] * 8) + "/METADATA"


def make_tar(members: list[tuple[str, bytes | str | None, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """members: (name, data for files / linkname for links / None for dirs, type)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data, typ in members:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1
            ti.type = typ
            if typ == tarfile.REGTYPE:
                assert isinstance(data, bytes)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                if isinstance(data, str):
                    ti.linkname = data
                tf.addfile(ti)
    return buf.getvalue()


def walk(raw: bytes, read: bool = True, cap: int = 1 << 40) -> tuple[list[tuple[str, str, str, bytes]], list[str], str]:
    w = TarWalker(ChunkStream(io.BytesIO(raw), cap), "t")
    out = []
    for e in w:
        data = e.read(1 << 20) if (read and e.read is not None) else b""
        out.append((e.kind.value, e.path, e.linkname, data))
    return out, w.warnings, w.finish()


SAMPLE = [
    ("./etc/", None, tarfile.DIRTYPE),
    ("./etc/os-release", b"ID=debian\n", tarfile.REGTYPE),
    (LONG, b"Name: x\n", tarfile.REGTYPE),
    ("usr/lib/lnk", "../../etc/os-release", tarfile.SYMTYPE),
    ("./usr/lib/hard", "./etc/os-release", tarfile.LNKTYPE),
    ("var/.wh.gone", b"", tarfile.REGTYPE),
    ("opt/app/.wh..wh..opq", b"", tarfile.REGTYPE),
    ("big.bin", b"\x00" * 700_000, tarfile.REGTYPE),
    ("tail.txt", b"tail", tarfile.REGTYPE),
]
EXPECTED = [
    ("dir", "etc", "", b""),
    ("file", "etc/os-release", "", b"ID=debian\n"),
    ("file", LONG, "", b"Name: x\n"),
    ("symlink", "usr/lib/lnk", "../../etc/os-release", b""),
    ("hardlink", "usr/lib/hard", "etc/os-release", b""),
    ("whiteout", "var/gone", "", b""),
    ("opaque", "opt/app", "", b""),
    ("file", "big.bin", "", b"\x00" * 700_000),
    ("file", "tail.txt", "", b"tail"),
]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_formats_give_the_same_entries(fmt: int) -> None:
    members = SAMPLE if fmt != tarfile.USTAR_FORMAT else [m for m in SAMPLE if m[0] != LONG]
    expected = EXPECTED if fmt != tarfile.USTAR_FORMAT else [e for e in EXPECTED if e[1] != LONG]
    raw = make_tar(members, fmt)
    entries, warnings, diff_id = walk(raw)
    assert entries == expected
    assert warnings == []
    assert diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_unread_content_is_skipped_and_next_header_found() -> None:
    raw = make_tar(SAMPLE, tarfile.GNU_FORMAT)
    entries, _, _ = walk(raw, read=False)
    assert [e[1] for e in entries] == [e[1] for e in EXPECTED]


def test_partial_read_then_skip() -> None:
    raw = make_tar([("a", b"0123456789" * 1000, tarfile.REGTYPE), ("b", b"bee", tarfile.REGTYPE)])
    w = TarWalker(ChunkStream(io.BytesIO(raw), 1 << 30))
    got = {}
    for e in w:
        assert e.read is not None
        got[e.path] = e.read(5)
    assert got == {"a": b"01234", "b": b"bee"}


@pytest.mark.parametrize("compress", ["gzip", "zstd", "none", "gzip-multimember"])
def test_compressions_sniffed_and_diff_id_of_uncompressed(compress: str) -> None:
    raw = make_tar(SAMPLE)
    blob = {
        "gzip": lambda b: gzip.compress(b, 1),
        "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
        "none": lambda b: b,
        "gzip-multimember": lambda b: gzip.compress(b[:10000]) + gzip.compress(b[10000:]),
    }[compress](raw)
    entries, _, diff_id = walk(blob)
    assert entries == EXPECTED
    assert diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_pax_overrides_path_linkpath_and_size() -> None:
    raw = make_tar([("x" * 120 + "/ünïcode-é.txt", b"hi", tarfile.REGTYPE), ("l", "t" * 200, tarfile.SYMTYPE)])
    entries, _, _ = walk(raw)
    assert entries[0][1] == "x" * 120 + "/ünïcode-é.txt"
    assert entries[1][2] == "t" * 200


def test_pax_global_header_is_applied_as_defaults() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "x"}) as tf:
        ti = tarfile.TarInfo("f")
        ti.size = 3
        tf.addfile(ti, io.BytesIO(b"abc"))
    entries, _, _ = walk(buf.getvalue())
    assert entries == [("file", "f", "", b"abc")]


def test_parse_pax_records() -> None:
    rec = b"30 path=some/long/path/name.x\n"
    assert len(rec) == 30
    assert parse_pax(rec + b"19 linkpath=target\n") == {"path": "some/long/path/name.x", "linkpath": "target"}
    with pytest.raises(ValueError):
        parse_pax(b"99 path=x\n")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("./usr/bin/x", "usr/bin/x"),
        ("/abs/path", "abs/path"),
        ("a//b/./c/", "a/b/c"),
        (".hidden", ".hidden"),
        ("..dots", "..dots"),
        ("../etc/passwd", None),
        ("a/../../b", None),
        ("a/b/../c", None),
        ("./", ""),
    ],
)
def test_normalize_path(name: str, expected: str | None) -> None:
    assert normalize_path(name) == expected


def test_escaping_members_and_links_are_skipped_with_warnings() -> None:
    raw = make_tar(
        [
            ("../evil", b"x", tarfile.REGTYPE),
            ("a/../../evil2", b"x", tarfile.REGTYPE),
            ("ok", b"fine", tarfile.REGTYPE),
            ("hl", "../../etc/shadow", tarfile.LNKTYPE),
            ("dir/.wh...", b"", tarfile.REGTYPE),
        ]
    )
    entries, warnings, _ = walk(raw)
    assert entries == [("file", "ok", "", b"fine")]
    assert len(warnings) == 4
    assert all("skipped" in w for w in warnings)


def test_truncated_tar_is_a_bad_image() -> None:
    raw = make_tar([("a", b"x" * 5000, tarfile.REGTYPE), ("b", b"y" * 5000, tarfile.REGTYPE)])
    with pytest.raises(BadImageError, match="truncated"):
        walk(raw[:3000])
    with pytest.raises(BadImageError, match="truncated"):
        walk(gzip.compress(raw)[:-10])
    with pytest.raises(BadImageError, match="empty"):
        walk(b"")


def test_garbage_is_not_a_tar() -> None:
    with pytest.raises(BadImageError, match="not a tar"):
        walk(b"<html>hello</html>" + b"x" * 1000)


def test_corrupt_gzip() -> None:
    blob = bytearray(gzip.compress(make_tar(SAMPLE)))
    blob[40:60] = b"\xff" * 20
    with pytest.raises(BadImageError):
        walk(bytes(blob))


def test_decompression_cap() -> None:
    raw = make_tar([("zeros", b"\x00" * 5_000_000, tarfile.REGTYPE)])
    blob = gzip.compress(raw)
    assert len(blob) < 50_000
    with pytest.raises(LimitExceededError, match="decompression bomb"):
        walk(blob, read=False, cap=1_000_000)


def test_oversized_metadata_member_is_refused() -> None:
    raw = make_tar([("f", b"x", tarfile.REGTYPE)])
    # A GNU long-name member claiming 64 MiB.
    hdr = bytearray(512)
    hdr[0:13] = b"././@LongLink"
    hdr[100:108] = b"0000644\x00"
    hdr[124:136] = b"%011o\x00" % (64 << 20)
    hdr[156:157] = b"L"
    hdr[257:265] = b"ustar  \x00"
    hdr[148:156] = b" " * 8
    hdr[148:156] = b"%06o\x00 " % sum(hdr)
    with pytest.raises(LimitExceededError):
        walk(bytes(hdr) + raw)


def test_base256_size_field() -> None:
    data = b"z" * 10
    raw = bytearray(make_tar([("f", data, tarfile.REGTYPE)], tarfile.GNU_FORMAT))
    raw[124:136] = b"\x80" + (10).to_bytes(11, "big")
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\x00 " % sum(raw[:512])
    entries, _, _ = walk(bytes(raw))
    assert entries == [("file", "f", "", data)]


def test_entry_kinds_of_special_files() -> None:
    raw = make_tar([("dev/null", None, tarfile.CHRTYPE), ("fifo", None, tarfile.FIFOTYPE)])
    entries, _, _ = walk(raw)
    assert [(k, p) for k, p, _, _ in entries] == [(EntryKind.OTHER.value, "dev/null"), ("other", "fifo")]
