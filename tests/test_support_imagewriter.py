"""The image writer is deterministic and writes entries, whiteouts and formats the way the specs say."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard
from tests.support.cache import cached, file_lock
from tests.support.imagewriter import (
    Dir,
    EntrySpec,
    File,
    Hardlink,
    Layer,
    Opaque,
    RawMember,
    Symlink,
    Whiteout,
    build_image,
    write_layer_tar,
    write_raw_tar,
)

ENTRIES: list[EntrySpec] = [
    Dir("etc"),
    File("etc/a.conf", b"a=1\n", 0o600),
    Symlink("etc/link", "a.conf"),
    Hardlink("etc/hard", "etc/a.conf"),
    Whiteout("usr/share/doc/pkg"),
    Opaque("var/cache"),
    Whiteout("top"),
]


def test_entries_become_the_right_members(tmp_path: Path) -> None:
    layer = write_layer_tar(tmp_path / "l.tar", Layer(entries=ENTRIES))
    with tarfile.open(layer.path) as tar:
        members = {m.name: m for m in tar}
    assert list(members) == [
        "etc",
        "etc/a.conf",
        "etc/link",
        "etc/hard",
        "usr/share/doc/.wh.pkg",
        "var/cache/.wh..wh..opq",
        ".wh.top",
    ]
    assert members["etc/a.conf"].mode == 0o600 and members["etc/a.conf"].size == 4
    assert members["etc/link"].issym() and members["etc/link"].linkname == "a.conf"
    assert members["etc/hard"].islnk() and members["etc/hard"].linkname == "etc/a.conf"
    assert all(m.uid == 0 and m.gid == 0 and isinstance(m.mtime, int) and not m.pax_headers for m in members.values())


def test_rootfs_walk_is_sorted_and_keeps_hardlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "b").mkdir(parents=True)
    (root / "b" / "z.txt").write_text("z")
    (root / "a.txt").write_text("a")
    (root / "b" / "y.txt").hardlink_to(root / "a.txt")
    (root / "b" / "sym").symlink_to("../a.txt")
    layer = write_layer_tar(tmp_path / "l.tar", Layer(root=root))
    with tarfile.open(layer.path) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a.txt", "b", "b/sym", "b/y.txt", "b/z.txt"]
    assert members[3].islnk() and members[3].linkname == "a.txt"


def test_same_input_same_digests(tmp_path: Path) -> None:
    layers = [Layer(entries=ENTRIES), Layer(entries=[File("x", b"x" * 100_000)])]
    one = build_image(layers, work=tmp_path / "w1", oci_dir=tmp_path / "o1", archive=tmp_path / "a1.tar")
    two = build_image(layers, work=tmp_path / "w2", oci_dir=tmp_path / "o2", archive=tmp_path / "a2.tar")
    assert one.manifest_digest == two.manifest_digest and one.layer_digests == two.layer_digests
    assert (tmp_path / "a1.tar").read_bytes() == (tmp_path / "a2.tar").read_bytes()


def test_pax_layer_has_float_mtimes(tmp_path: Path) -> None:
    layer = write_layer_tar(tmp_path / "l.tar", Layer(entries=[File("f", b"1")], pax=True))
    with tarfile.open(layer.path) as tar:
        [member] = tar.getmembers()
    assert "mtime" in member.pax_headers and member.mtime != int(member.mtime)


def test_zstd_and_plain_layers(tmp_path: Path) -> None:
    refs = build_image(
        [Layer(entries=[File("f", b"zstd!")]), Layer(entries=[File("g", b"plain")])],
        work=tmp_path / "w",
        oci_dir=tmp_path / "oci",
        compression=["zstd", "none"],
    )
    index = json.loads((tmp_path / "oci/index.json").read_text())
    manifest = json.loads((tmp_path / "oci/blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    types = [layer["mediaType"] for layer in manifest["layers"]]
    assert types == ["application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.oci.image.layer.v1.tar"]
    zblob = (tmp_path / "oci/blobs/sha256" / refs.layer_digests[0][7:]).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(zstandard.ZstdDecompressor().decompressobj().decompress(zblob))) as tar:
        assert tar.extractfile("f").read() == b"zstd!"  # type: ignore[union-attr]
    assert refs.layer_digests[1] == refs.diff_ids[1]


def test_raw_tar_keeps_hostile_names(tmp_path: Path) -> None:
    write_raw_tar(
        tmp_path / "r.tar",
        [
            RawMember("/abs"),
            RawMember("../up", data=b"x"),
            RawMember("l", tarfile.SYMTYPE, linkname="../../etc"),
        ],
    )
    with tarfile.open(tmp_path / "r.tar") as tar:
        assert tar.getnames() == ["/abs", "../up", "l"]


def test_cache_rebuilds_without_stamp_and_reuses_with_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARRISON_TEST_CACHE", str(tmp_path / "cache"))
    calls: list[Path] = []

    def build(d: Path) -> None:
        calls.append(d)
        (d / "out").write_text("ok")

    first = cached("thing", "v1", build)
    assert (first / "out").read_text() == "ok" and len(calls) == 1
    assert cached("thing", "v1", build) == first and len(calls) == 1
    (tmp_path / "cache" / "thing.stamp").unlink()  # a half-built entry: no stamp
    cached("thing", "v1", build)
    assert len(calls) == 2
    cached("thing", "v2", build)  # recipe changed
    assert len(calls) == 3
    with file_lock(tmp_path / "cache" / "x.lock"):
        pass

    def boom(d: Path) -> None:
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError):
        cached("broken", "v1", boom)
    assert not (tmp_path / "cache" / "broken").exists()
    assert not (tmp_path / "cache" / "broken.building").exists()


@pytest.mark.slow
def test_two_processes_build_once(tmp_path: Path) -> None:
    """Two pytest processes starting together must not both build (flock + stamp)."""
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from tests.support.cache import cached\n"
        "def build(d):\n"
        "    with open(sys.argv[1], 'a') as fh: fh.write('built\\n')\n"
        "    time.sleep(1.0)\n"
        "    (d / 'x').write_text('1')\n"
        "print(cached('shared', 'v1', build))\n"
    )
    log = tmp_path / "log"
    env = {
        "GARRISON_TEST_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "PATH": "/usr/bin:/bin",
    }
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(log)], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1] and log.read_text() == "built\n"
