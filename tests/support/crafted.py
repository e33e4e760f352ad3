"""Crafted bad inputs: real images whose bytes are hostile or broken in one precise way each.

Why real files rather than mocks: a scanner's defences (path normalisation, link containment, bomb limits,
digest checks) live in its byte handling, so the tests must feed it bytes. Every generator returns a path
ready to scan and is cached (the big ones take seconds to write). OCI layouts are tagged ``latest``
(reference ``oci:PATH:latest``, see :func:`oci_ref`); docker archives are tagged ``garrison/crafted:latest``.

Layer-content problems take ``fmt="oci"`` (gzip layer) or ``fmt="archive"`` (``docker save``, plain tar).
Layout problems exist in both formats under separate names. Sizes are parameters so a test can ask for a
smaller bomb; each distinct size is its own cache entry.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from tests.support.cache import cached
from tests.support.imagewriter import (
    MT_OCI_LAYER,
    Blob,
    Dir,
    File,
    HashingWriter,
    Layer,
    LayerTar,
    RawMember,
    blob_from_bytes,
    gzip_writer,
    prepare_blob,
    write_docker_archive,
    write_layer_tar,
    write_oci_layout,
    write_raw_tar,
)

Fmt = Literal["oci", "archive"]
CRAFTED_VERSION = "crafted-v3"
TAG = "latest"
REPO_TAG = "garrison/crafted:latest"
GiB = 1 << 30
MB = 1_000_000
#: The one sane file every crafted layer also carries, so a scanner that skips the bad part finds this.
CANARY = RawMember("etc/garrison-canary", data=b"still here\n")


def oci_ref(path: Path) -> str:
    """``oci:PATH:latest`` for a crafted OCI layout, or ``docker-archive:PATH`` for an archive."""
    return f"oci:{path}:{TAG}" if path.is_dir() else f"docker-archive:{path}"


# ----------------------------------------------------------------------------------------------------------
# plumbing
# ----------------------------------------------------------------------------------------------------------


def _raw_layer(path: Path, members: Sequence[RawMember], fmt: int = tarfile.PAX_FORMAT) -> LayerTar:
    diff_id = write_raw_tar(path, members, fmt=fmt)
    return LayerTar(path, diff_id, path.stat().st_size)


def _image(dest: Path, fmt: Fmt, tars: Sequence[LayerTar]) -> Path:
    """Wrap layer tars into ``dest/image`` (OCI dir) or ``dest/image.tar`` (docker archive)."""
    if fmt == "oci":
        out = dest / "image"
        blobs = [prepare_blob(t, out / "blobs" / "sha256", "gzip", "crafted") for t in tars]
        write_oci_layout(out, blobs, [TAG])
        return out
    out = dest / "image.tar"
    blobs = [Blob(t.path, t.diff_id, t.size, MT_OCI_LAYER, t.diff_id, "crafted", t.path) for t in tars]
    write_docker_archive(out, blobs, [REPO_TAG])
    return out


def _crafted(name: str, build: Callable[[Path], Path]) -> Path:
    """Cache ``build(dir) -> path inside dir`` under ``crafted-NAME``; returns the built path."""
    holder: dict[str, str] = {}

    def run(tmp: Path) -> None:
        holder["rel"] = str(build(tmp).relative_to(tmp))
        (tmp / "RESULT").write_text(holder["rel"])

    root = cached(f"crafted-{name}", CRAFTED_VERSION, run)
    return root / (root / "RESULT").read_text()


def _members_image(name: str, fmt: Fmt, members: Sequence[RawMember]) -> Path:
    def build(tmp: Path) -> Path:
        return _image(tmp, fmt, [_raw_layer(tmp / "layer.tar", [CANARY, *members])])

    return _crafted(f"{name}-{fmt}", build)


# ----------------------------------------------------------------------------------------------------------
# hostile tar members
# ----------------------------------------------------------------------------------------------------------

#: Names that escape the root: ``../``, absolute, and ``..`` hidden mid-path.
TRAVERSAL_NAMES = (
    "../escaped.txt",
    "../../../../tmp/garrison-escaped.txt",
    "/etc/absolute-name.txt",
    "app/../../escaped-mid.txt",
    "./app/./ok/../../../escaped-dots.txt",
)


def path_traversal_image(fmt: Fmt = "oci") -> Path:
    """Tar members named ``../…``, ``/abs…`` and ``a/../../…`` (see ``TRAVERSAL_NAMES``)."""
    return _members_image("traversal", fmt, [RawMember(n, data=b"escaped!\n") for n in TRAVERSAL_NAMES])


def link_escape_image(fmt: Fmt = "oci") -> Path:
    """Links pointing outside the root: relative symlink climbing out, symlink dir then a file written
    through it, hard link to ``../``, hard link to an absolute path and to a member that does not exist.
    (``app/abs-link -> /etc/passwd`` is included too: absolute symlinks are normal and resolve *inside*.)"""
    return _members_image(
        "links",
        fmt,
        [
            RawMember("app", tarfile.DIRTYPE, mode=0o755),
            RawMember("app/up-link", tarfile.SYMTYPE, linkname="../../../../../etc/shadow"),
            RawMember("app/abs-link", tarfile.SYMTYPE, linkname="/etc/passwd"),
            RawMember("app/outdir", tarfile.SYMTYPE, linkname="../../../../tmp"),
            RawMember("app/outdir/written-through-link.txt", data=b"via symlinked dir\n"),
            RawMember("app/hard-up", tarfile.LNKTYPE, linkname="../../../etc/passwd"),
            RawMember("app/hard-abs", tarfile.LNKTYPE, linkname="/etc/passwd"),
            RawMember("app/hard-missing", tarfile.LNKTYPE, linkname="app/does-not-exist"),
        ],
    )


def symlink_loop_image(fmt: Fmt = "oci") -> Path:
    """Symlink cycles: ``a -> b -> a``, ``self -> self``, a directory link to its parent, and a long chain
    (45 hops, more than Linux's 40) ending at a real file."""
    chain = [RawMember(f"chain/{i}", tarfile.SYMTYPE, linkname=f"{i + 1}") for i in range(45)]
    return _members_image(
        "loops",
        fmt,
        [
            RawMember("loop", tarfile.DIRTYPE, mode=0o755),
            RawMember("loop/a", tarfile.SYMTYPE, linkname="b"),
            RawMember("loop/b", tarfile.SYMTYPE, linkname="a"),
            RawMember("loop/self", tarfile.SYMTYPE, linkname="self"),
            RawMember("loop/parent", tarfile.SYMTYPE, linkname=".."),
            RawMember("loop/abs-cycle", tarfile.SYMTYPE, linkname="/loop/abs-cycle"),
            RawMember("chain", tarfile.DIRTYPE, mode=0o755),
            *chain,
            RawMember("chain/45", data=b"end of the chain\n"),
            RawMember("etc/os-release", tarfile.SYMTYPE, linkname="../loop/a"),
        ],
    )


# ----------------------------------------------------------------------------------------------------------
# bombs and broken compression
# ----------------------------------------------------------------------------------------------------------


def gzip_bomb_image(size: int = 2 * GiB) -> Path:
    """An OCI image whose gzip layer (a few MB) inflates to a tar holding ``size`` bytes of zeros."""

    def build(tmp: Path) -> Path:
        out = tmp / "image"
        blobs_dir = out / "blobs" / "sha256"
        blobs_dir.mkdir(parents=True)
        part = blobs_dir / "partial"
        with open(part, "wb") as raw:
            hw = HashingWriter(raw)
            gz = gzip_writer(hw, level=1)  # type: ignore[arg-type]  # HashingWriter is a raw binary file
            diff_id = write_raw_tar(gz, [CANARY, RawMember("bomb/zeros.bin", zero_size=size)])
            gz.close()
        blob_path = blobs_dir / hw.digest.split(":")[1]
        part.rename(blob_path)
        blob = Blob(blob_path, hw.digest, hw.size, MT_OCI_LAYER + "+gzip", diff_id, "crafted bomb")
        write_oci_layout(out, [blob], [TAG])
        return out

    return _crafted(f"gzip-bomb-{size}", build)


def truncated_gzip_image() -> Path:
    """An OCI image whose gzip layer stops half-way. The blob's digest matches the truncated bytes (so
    the digest check passes) and the config's diff_id is that of the whole tar: only decompression fails."""

    def build(tmp: Path) -> Path:
        rng = random.Random(7)
        files = [RawMember(f"data/file{i:03d}.bin", data=rng.randbytes(16 * 1024)) for i in range(64)]
        tar = _raw_layer(tmp / "layer.tar", [CANARY, *files])
        full = prepare_blob(tar, tmp / "full", "gzip")
        data = full.path.read_bytes()
        out = tmp / "image"
        blob = blob_from_bytes(data[: len(data) // 2], out / "blobs" / "sha256", full.media_type, tar.diff_id)
        write_oci_layout(out, [blob], [TAG])
        return out

    return _crafted("truncated-gzip", build)


def truncated_tar_archive() -> Path:
    """A docker archive whose ``layer.tar`` ends in the middle of a member (manifest and diff_id agree with
    the truncated bytes: the damage is only visible to the tar reader)."""

    def build(tmp: Path) -> Path:
        rng = random.Random(8)
        tar = _raw_layer(tmp / "full.tar", [CANARY, RawMember("data/big.bin", data=rng.randbytes(256 * 1024))])
        cut = tmp / "layer.tar"
        cut.write_bytes(tar.path.read_bytes()[: 512 * 3 + 100 * 1024])
        digest = "sha256:" + hashlib.sha256(cut.read_bytes()).hexdigest()
        return _image(tmp, "archive", [LayerTar(cut, digest, cut.stat().st_size)])

    return _crafted("truncated-tar", build)


def jar_zip_bomb_image(size: int = GiB) -> Path:
    """An OCI image with ``app/lib/bomb-1.0.jar``: a real-looking jar (manifest, pom.properties) whose
    ``zeros.bin`` entry inflates to ``size`` bytes, plus a nested jar holding another such entry."""

    def build(tmp: Path) -> Path:
        inner = tmp / "inner.jar"
        _write_jar(inner, "org.example", "inner", "1.0", size // 4)
        jar = tmp / "bomb.jar"
        _write_jar(jar, "org.example", "bomb", "1.0", size, nested=inner)
        members = [
            CANARY,
            RawMember("app", tarfile.DIRTYPE, mode=0o755),
            RawMember("app/lib", tarfile.DIRTYPE, mode=0o755),
            RawMember("app/lib/bomb-1.0.jar", data=jar.read_bytes()),
        ]
        return _image(tmp, "oci", [_raw_layer(tmp / "layer.tar", members)])

    return _crafted(f"jar-bomb-{size}", build)


def _write_jar(path: Path, group: str, artifact: str, version: str, zeros: int, nested: Path | None = None) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr(
            "META-INF/MANIFEST.MF",
            f"Manifest-Version: 1.0\r\nImplementation-Title: {artifact}\r\nImplementation-Version: {version}\r\n\r\n",
        )
        zf.writestr(
            f"META-INF/maven/{group}/{artifact}/pom.properties",
            f"groupId={group}\nartifactId={artifact}\nversion={version}\n",
        )
        with zf.open("zeros.bin", "w", force_zip64=True) as fh:
            chunk = bytes(1 << 20)
            left = zeros
            while left > 0:
                fh.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
        if nested is not None:
            zf.write(nested, f"BOOT-INF/lib/{nested.name}")


# ----------------------------------------------------------------------------------------------------------
# huge but valid content
# ----------------------------------------------------------------------------------------------------------


def huge_dpkg_status_image(size: int = 300 * MB) -> Path:
    """An OCI image whose ``var/lib/dpkg/status`` is about ``size`` bytes of well-formed stanzas."""

    def build(tmp: Path) -> Path:
        status = tmp / "status"
        _write_dpkg_status(status, size)
        # Streamed from disk by the writer: the big file is never held in memory.
        layer = write_layer_tar(
            tmp / "layer.tar",
            Layer(
                entries=[
                    File(CANARY.name, CANARY.data),
                    Dir("var"),
                    Dir("var/lib"),
                    Dir("var/lib/dpkg"),
                    File("var/lib/dpkg/status", status),
                ]
            ),
        )
        status.unlink()
        return _image(tmp, "oci", [layer])

    return _crafted(f"huge-dpkg-{size}", build)


def _write_dpkg_status(path: Path, size: int) -> None:
    description = "".join(f" line {j} of a long package description that pads the stanza.\n" for j in range(4))
    written = 0
    i = 0
    with open(path, "w", encoding="ascii") as fh:
        while written < size:
            stanza = (
                f"Package: garrison-fake-{i}\nStatus: install ok installed\nPriority: optional\n"
                f"Section: misc\nInstalled-Size: {i % 977 + 1}\n"
                "Maintainer: Garrison Tests <tests@example.invalid>\nArchitecture: amd64\n"
                f"Source: garrison-fake-src-{i // 10}\nVersion: 1:{i % 50}.{i % 7}-{i % 3}+deb12u1\n"
                f"Depends: libc6 (>= 2.34), garrison-fake-{max(i - 1, 0)}\n"
                f"Description: fake package number {i}\n{description}\n"
            )
            fh.write(stanza)
            written += len(stanza)
            i += 1


# ----------------------------------------------------------------------------------------------------------
# broken layouts / archives
# ----------------------------------------------------------------------------------------------------------


def _small_layer(tmp: Path) -> LayerTar:
    return _raw_layer(tmp / "layer.tar", [CANARY, RawMember("app/data.txt", data=b"hello\n" * 100)])


def digest_mismatch_image(fmt: Fmt = "oci") -> Path:
    """OCI: the layer blob's bytes no longer hash to its file name/manifest digest (a valid gzip of a
    different tar). Archive: ``layer.tar`` does not hash to the config's ``diff_id``."""

    def build(tmp: Path) -> Path:
        out = _image(tmp, fmt, [_small_layer(tmp)])
        other = _raw_layer(tmp / "other.tar", [CANARY, RawMember("app/data.txt", data=b"tampered\n")])
        if fmt == "oci":
            manifest = _oci_manifest(out)
            blob = out / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]
            blob.unlink()
            blob.write_bytes(prepare_blob(other, tmp / "tampered", "gzip").path.read_bytes())
            return out
        return _rewrite_archive(out, lambda name, data: other.path.read_bytes() if name.endswith("layer.tar") else data)

    return _crafted(f"digest-mismatch-{fmt}", build)


def missing_blob_image(fmt: Fmt = "oci") -> Path:
    """OCI: the manifest names a layer blob that is not in ``blobs/``. Archive: ``manifest.json`` names a
    ``layer.tar`` that is not in the archive."""

    def build(tmp: Path) -> Path:
        out = _image(tmp, fmt, [_small_layer(tmp)])
        if fmt == "oci":
            manifest = _oci_manifest(out)
            (out / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]).unlink()
            return out
        return _rewrite_archive(out, lambda name, data: None if name.endswith("layer.tar") else data)

    return _crafted(f"missing-blob-{fmt}", build)


NOT_JSON = b"<html><body>502 Bad Gateway</body></html>\n"


def manifest_not_json_image(fmt: Fmt = "oci") -> Path:
    """OCI: ``index.json`` points (with the correct digest and size) at a manifest blob that is HTML, not
    JSON. Archive: ``manifest.json`` is HTML."""

    def build(tmp: Path) -> Path:
        out = _image(tmp, fmt, [_small_layer(tmp)])
        if fmt == "oci":
            digest = "sha256:" + hashlib.sha256(NOT_JSON).hexdigest()
            (out / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(NOT_JSON)
            index = json.loads((out / "index.json").read_text())
            index["manifests"][0].update(digest=digest, size=len(NOT_JSON))
            (out / "index.json").write_text(json.dumps(index))
            return out
        return _rewrite_archive(out, lambda name, data: NOT_JSON if name == "manifest.json" else data)

    return _crafted(f"manifest-not-json-{fmt}", build)


def _oci_manifest(layout: Path) -> dict[str, list[dict[str, str]]]:
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    return json.loads((layout / "blobs" / "sha256" / digest).read_text())  # type: ignore[no-any-return]


def _rewrite_archive(archive: Path, edit: Callable[[str, bytes], bytes | None]) -> Path:
    """Copy a (small) docker archive member by member through ``edit`` (``None`` drops the member)."""
    tmp = archive.with_suffix(".new")
    with tarfile.open(archive) as src, tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as dst:
        for info in src:
            data = src.extractfile(info).read() if info.isfile() else b""  # type: ignore[union-attr]
            new = edit(info.name, data) if info.isfile() else data
            if new is None:
                continue
            info.size = len(new)
            dst.addfile(info, io.BytesIO(new) if info.isfile() else None)
    tmp.replace(archive)
    return archive


#: Every generator by name, for tests that loop over all of them (explicit registry, data over code).
GENERATORS: dict[str, Callable[[], Path]] = {
    "traversal-oci": lambda: path_traversal_image("oci"),
    "traversal-archive": lambda: path_traversal_image("archive"),
    "links-oci": lambda: link_escape_image("oci"),
    "links-archive": lambda: link_escape_image("archive"),
    "loops-oci": lambda: symlink_loop_image("oci"),
    "loops-archive": lambda: symlink_loop_image("archive"),
    "gzip-bomb": gzip_bomb_image,
    "truncated-gzip": truncated_gzip_image,
    "truncated-tar": truncated_tar_archive,
    "jar-bomb": jar_zip_bomb_image,
    "huge-dpkg": huge_dpkg_status_image,
    "digest-mismatch-oci": lambda: digest_mismatch_image("oci"),
    "digest-mismatch-archive": lambda: digest_mismatch_image("archive"),
    "missing-blob-oci": lambda: missing_blob_image("oci"),
    "missing-blob-archive": lambda: missing_blob_image("archive"),
    "manifest-not-json-oci": lambda: manifest_not_json_image("oci"),
    "manifest-not-json-archive": lambda: manifest_not_json_image("archive"),
}
