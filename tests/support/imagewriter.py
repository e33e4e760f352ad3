"""A small, deterministic container image writer for tests: OCI image layouts and ``docker save`` archives.

Why our own writer instead of umoci/skopeo: tests need exact control over the bytes (compression,
PAX headers, whiteouts, broken blobs) and must run without a daemon. Same inputs give the same digests.

Three levels, each usable alone:

1. :func:`write_layer_tar` turns a :class:`Layer` (a root-filesystem directory and/or a list of entries)
   into an uncompressed tar and returns its ``diff_id``; :func:`write_raw_tar` writes arbitrary, even
   malicious, members for bad-input tests.
2. :func:`prepare_blob` compresses a tar into a layer blob (gzip, zstd or none).
3. :func:`write_oci_layout` / :func:`write_docker_archive` assemble blobs into an image;
   :func:`build_image` does all of it in one call.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, cast

Compression = Literal["gzip", "zstd", "none"]

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
LAYER_MEDIA_TYPES: dict[Compression, str] = {
    "gzip": MT_OCI_LAYER + "+gzip",
    "zstd": MT_OCI_LAYER + "+zstd",
    "none": MT_OCI_LAYER,
}
REF_NAME = "org.opencontainers.image.ref.name"
#: Fixed timestamps keep digests stable between runs.
EPOCH = 1_700_000_000
CREATED = "2023-11-14T22:13:20Z"
CHUNK = 1 << 20


# ----------------------------------------------------------------------------------------------------------
# Layer entries
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class File:
    """A regular file. ``data`` may be bytes or a path on disk whose content is streamed."""

    path: str
    data: bytes | Path = b""
    mode: int = 0o644


@dataclass(frozen=True)
class Dir:
    path: str
    mode: int = 0o755


@dataclass(frozen=True)
class Symlink:
    path: str
    target: str


@dataclass(frozen=True)
class Hardlink:
    """A hard link; ``target`` is the archive path of an earlier member (as stored)."""

    path: str
    target: str


@dataclass(frozen=True)
class Whiteout:
    """Hide ``path`` from lower layers: written as ``dir/.wh.name``."""

    path: str


@dataclass(frozen=True)
class Opaque:
    """Hide everything lower layers had under directory ``path``: written as ``path/.wh..wh..opq``."""

    path: str


EntrySpec = File | Dir | Symlink | Hardlink | Whiteout | Opaque


@dataclass(frozen=True)
class Layer:
    """One image layer: members of ``root`` (a directory, walked sorted) then ``entries`` in order.

    ``pax=True`` writes the layer the way naive tools do (float mtimes from ``os.stat``, which make
    tarfile emit a PAX header per member), so readers are tested on PAX-heavy input on purpose.
    """

    root: Path | None = None
    entries: Sequence[EntrySpec] = ()
    created_by: str = "garrison-test"
    pax: bool = False


@dataclass(frozen=True)
class LayerTar:
    """An uncompressed layer tar on disk."""

    path: Path
    diff_id: str
    size: int


@dataclass(frozen=True)
class Blob:
    """A layer blob as it is stored in an image (maybe compressed)."""

    path: Path
    digest: str
    size: int
    media_type: str
    diff_id: str
    created_by: str = "garrison-test"
    #: The uncompressed tar, when known (docker archives store it as ``<id>/layer.tar``).
    tar_path: Path | None = None


@dataclass(frozen=True)
class ImageRefs:
    """What :func:`build_image` wrote."""

    oci_dir: Path | None
    archive: Path | None
    tag: str
    manifest_digest: str
    config_digest: str
    diff_ids: tuple[str, ...]
    layer_digests: tuple[str, ...]

    @property
    def oci_ref(self) -> str:
        return f"oci:{self.oci_dir}:{self.tag}"

    @property
    def archive_ref(self) -> str:
        return f"docker-archive:{self.archive}"


# ----------------------------------------------------------------------------------------------------------
# Hashing writers
# ----------------------------------------------------------------------------------------------------------


class HashingWriter(io.RawIOBase):
    """A write-only file that counts and sha256-hashes what passes through to ``inner``."""

    def __init__(self, inner: IO[bytes]) -> None:
        super().__init__()
        self.inner = inner
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.sha.update(data)
        self.size += len(data)
        self.inner.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


# ----------------------------------------------------------------------------------------------------------
# Level 1: tars
# ----------------------------------------------------------------------------------------------------------


def _base_info(name: str, *, pax: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = EPOCH + 0.123456 if pax else EPOCH
    return info


def _rootfs_members(root: Path, *, pax: bool) -> Iterable[tuple[tarfile.TarInfo, Path | None]]:
    """Walk ``root`` sorted, parents before children; hard links become LNKTYPE to the first path seen."""
    seen_inodes: dict[tuple[int, int], str] = {}

    def visit(directory: Path, rel: str) -> Iterable[tuple[tarfile.TarInfo, Path | None]]:
        with os.scandir(directory) as it:
            names = sorted(e.name for e in it)
        for name in names:
            full = directory / name
            arc = f"{rel}{name}"
            st = full.lstat()
            info = _base_info(arc, pax=pax)
            info.mode = stat.S_IMODE(st.st_mode)
            info.mtime = st.st_mtime if pax else int(st.st_mtime)
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                yield info, None
                yield from visit(full, arc + "/")
            elif stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(full)
                yield info, None
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen_inodes:
                    info.type = tarfile.LNKTYPE
                    info.linkname = seen_inodes[key]
                    yield info, None
                    continue
                seen_inodes[key] = arc
                info.size = st.st_size
                yield info, full
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                yield info, None
            elif stat.S_ISFIFO(st.st_mode):
                info.type = tarfile.FIFOTYPE
                yield info, None
            # sockets are skipped, like docker does

    yield from visit(root, "")


def _spec_members(entries: Sequence[EntrySpec], *, pax: bool) -> Iterable[tuple[tarfile.TarInfo, Any]]:
    for spec in entries:
        path = spec.path.strip("/")
        if isinstance(spec, File):
            info = _base_info(path, pax=pax)
            info.mode = spec.mode
            if isinstance(spec.data, Path):
                info.size = spec.data.stat().st_size
                yield info, spec.data
            else:
                info.size = len(spec.data)
                yield info, spec.data
        elif isinstance(spec, Dir):
            info = _base_info(path, pax=pax)
            info.type, info.mode = tarfile.DIRTYPE, spec.mode
            yield info, None
        elif isinstance(spec, Symlink | Hardlink):
            info = _base_info(path, pax=pax)
            info.type = tarfile.SYMTYPE if isinstance(spec, Symlink) else tarfile.LNKTYPE
            info.linkname, info.mode = spec.target, 0o777 if isinstance(spec, Symlink) else 0o644
            yield info, None
        elif isinstance(spec, Whiteout):
            parent, _, name = path.rpartition("/")
            info = _base_info(f"{parent}/.wh.{name}" if parent else f".wh.{name}", pax=pax)
            yield info, b""
        elif isinstance(spec, Opaque):
            info = _base_info(f"{path}/.wh..wh..opq", pax=pax)
            yield info, b""


def _add(tar: tarfile.TarFile, info: tarfile.TarInfo, data: Any) -> None:
    if data is None:
        tar.addfile(info)
    elif isinstance(data, Path):
        with open(data, "rb") as fh:
            tar.addfile(info, fh)
    else:
        tar.addfile(info, io.BytesIO(data))


def write_layer_tar(dest: Path, layer: Layer) -> LayerTar:
    """Write ``layer`` as an uncompressed tar at ``dest``; returns its diff_id (sha256 of the tar)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as raw:
        hw = HashingWriter(raw)
        with tarfile.open(fileobj=hw, mode="w|", bufsize=CHUNK, format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            tar.copybufsize = CHUNK  # type: ignore[attr-defined]
            if layer.root is not None:
                for info, src in _rootfs_members(layer.root, pax=layer.pax):
                    _add(tar, info, src)
            for info, data in _spec_members(layer.entries, pax=layer.pax):
                _add(tar, info, data)
    return LayerTar(dest, hw.digest, hw.size)


@dataclass(frozen=True)
class RawMember:
    """Any tar member, unchecked: absolute names, ``../``, links out of the tree, odd types.

    ``data`` is the content (regular files); ``size`` overrides the header size (to lie about it);
    ``zero_size`` streams that many zero bytes as content without holding them in memory.
    """

    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    linkname: str = ""
    mode: int = 0o644
    zero_size: int = 0
    pax_headers: dict[str, str] = field(default_factory=dict)


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def write_raw_tar(dest: Path | IO[bytes], members: Sequence[RawMember], *, fmt: int = tarfile.PAX_FORMAT) -> str:
    """Write members exactly as given (no normalisation); returns the sha256 digest of the tar."""
    out: IO[bytes] = open(dest, "wb") if isinstance(dest, Path) else dest  # noqa: SIM115
    try:
        hw = HashingWriter(out)
        with tarfile.open(fileobj=hw, mode="w|", bufsize=CHUNK, format=fmt) as tar:  # type: ignore[call-overload]
            tar.copybufsize = CHUNK  # type: ignore[attr-defined]  # big members (bombs) stream in 1 MiB pieces, not 16 KiB
            for m in members:
                info = _base_info(m.name, pax=False)
                info.type, info.linkname, info.mode = m.type, m.linkname, m.mode
                info.pax_headers = dict(m.pax_headers)
                if m.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
                    if m.zero_size:
                        info.size = m.zero_size
                        tar.addfile(info, io.BufferedReader(_Zeros(m.zero_size), CHUNK))
                    else:
                        info.size = len(m.data)
                        tar.addfile(info, io.BytesIO(m.data))
                else:
                    tar.addfile(info)
        return hw.digest
    finally:
        if isinstance(dest, Path):
            out.close()


# ----------------------------------------------------------------------------------------------------------
# Level 2: blobs
# ----------------------------------------------------------------------------------------------------------


def gzip_writer(out: IO[bytes], level: int = 1) -> IO[bytes]:
    """A gzip compressor writing into ``out``: isal (about 2x zlib's speed) when installed, else zlib.

    ``mtime=0`` and no file name in the header: byte-identical output between runs. ``level`` is 0-3.
    """
    try:
        from isal import igzip
    except ImportError:  # pragma: no cover
        return cast(IO[bytes], gzip.GzipFile(fileobj=out, mode="wb", compresslevel=max(level, 1), mtime=0))
    return cast(IO[bytes], igzip.IGzipFile(fileobj=out, mode="wb", compresslevel=level, mtime=0))  # type: ignore[no-untyped-call]


def _open_compressor(out: IO[bytes], compression: Compression) -> IO[bytes]:
    if compression == "gzip":
        return gzip_writer(out)
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False)  # type: ignore[no-any-return]
    raise ValueError(compression)


def prepare_blob(
    tar: LayerTar, dest_dir: Path, compression: Compression = "gzip", created_by: str = "garrison-test"
) -> Blob:
    """Compress ``tar`` into ``dest_dir/<hex>`` (its content address); ``none`` hard-links/copies it."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    media_type = LAYER_MEDIA_TYPES[compression]
    if compression == "none":
        target = dest_dir / tar.diff_id.split(":", 1)[1]
        _link_or_copy(tar.path, target)
        return Blob(target, tar.diff_id, tar.size, media_type, tar.diff_id, created_by, tar.path)
    tmp = dest_dir / f".tmp-{os.getpid()}"
    with open(tmp, "wb") as raw:
        hw = HashingWriter(raw)
        comp = _open_compressor(hw, compression)  # type: ignore[arg-type]
        with open(tar.path, "rb") as src:
            shutil.copyfileobj(src, comp, CHUNK)
        comp.close()
    target = dest_dir / hw.sha.hexdigest()
    os.replace(tmp, target)
    return Blob(target, hw.digest, hw.size, media_type, tar.diff_id, created_by, tar.path)


def blob_from_bytes(data: bytes, dest_dir: Path, media_type: str, diff_id: str | None = None) -> Blob:
    """A blob from raw bytes, for broken layers (truncated gzip, garbage) whose diff_id is made up."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    target = dest_dir / digest.split(":", 1)[1]
    target.write_bytes(data)
    return Blob(target, digest, len(data), media_type, diff_id or digest)


def blob_from_file(path: Path, media_type: str, diff_id: str | None = None, tar_path: Path | None = None) -> Blob:
    """A blob that already exists on disk (hashed here)."""
    digest = sha256_file(path)
    return Blob(path, digest, path.stat().st_size, media_type, diff_id or digest, tar_path=tar_path)


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


# ----------------------------------------------------------------------------------------------------------
# Level 3: images
# ----------------------------------------------------------------------------------------------------------


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def image_config(blobs: Sequence[Blob], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """An OCI image config for ``blobs`` (amd64/linux, one history entry per layer)."""
    config: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["bash"],
        },
        "rootfs": {"type": "layers", "diff_ids": [b.diff_id for b in blobs]},
        "history": [{"created": CREATED, "created_by": b.created_by} for b in blobs],
    }
    if extra:
        config.update(extra)
    return config


def _write_blob_bytes(blobs_dir: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (blobs_dir / digest).write_bytes(data)
    return "sha256:" + digest


def _store_manifest(
    blobs_dir: Path,
    blobs: Sequence[Blob],
    config: dict[str, Any] | None,
    annotations: dict[str, str] | None = None,
) -> tuple[dict[str, Any], str]:
    """Link layer blobs in, write config and manifest blobs; returns (manifest descriptor, config digest)."""
    blobs_dir.mkdir(parents=True, exist_ok=True)
    for b in blobs:
        target = blobs_dir / b.digest.split(":", 1)[1]
        if b.path.resolve() != target.resolve():
            _link_or_copy(b.path, target)
    config_bytes = _canonical(config if config is not None else image_config(blobs))
    config_digest = _write_blob_bytes(blobs_dir, config_bytes)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": {"mediaType": MT_OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": b.media_type, "digest": b.digest, "size": b.size} for b in blobs],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    manifest_bytes = _canonical(manifest)
    descriptor = {
        "mediaType": MT_OCI_MANIFEST,
        "digest": _write_blob_bytes(blobs_dir, manifest_bytes),
        "size": len(manifest_bytes),
    }
    return descriptor, config_digest


def _write_index_json(dest: Path, descriptor: dict[str, Any], tags: Sequence[str]) -> None:
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}', encoding="utf-8")
    index = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_INDEX,
        "manifests": [{**descriptor, "annotations": {REF_NAME: tag}} for tag in tags],
    }
    (dest / "index.json").write_bytes(_canonical(index))


def write_oci_layout(
    dest: Path,
    blobs: Sequence[Blob],
    tags: Sequence[str] = ("latest",),
    config: dict[str, Any] | None = None,
    manifest_annotations: dict[str, str] | None = None,
) -> tuple[str, str]:
    """Write an OCI image layout at ``dest`` (created); returns (manifest digest, config digest).

    Blobs already inside ``dest/blobs/sha256`` stay where they are; others are hard-linked or copied in.
    """
    descriptor, config_digest = _store_manifest(dest / "blobs" / "sha256", blobs, config, manifest_annotations)
    _write_index_json(dest, descriptor, tags)
    return descriptor["digest"], config_digest


@dataclass(frozen=True)
class PlatformImage:
    """One entry of a multi-platform image: its layers and the platform it is for."""

    blobs: Sequence[Blob]
    architecture: str
    os: str = "linux"
    variant: str | None = None


def write_oci_index_layout(dest: Path, images: Sequence[PlatformImage], tags: Sequence[str] = ("latest",)) -> str:
    """Write a multi-platform OCI layout: ``index.json`` tags an image index blob listing one manifest per
    platform (what ``skopeo copy --all`` pushes as a manifest list). Returns the index digest."""
    blobs_dir = dest / "blobs" / "sha256"
    entries = []
    for img in images:
        platform: dict[str, str] = {"architecture": img.architecture, "os": img.os}
        if img.variant:
            platform["variant"] = img.variant
        config = image_config(img.blobs, {k: v for k, v in platform.items()})
        descriptor, _ = _store_manifest(blobs_dir, img.blobs, config)
        entries.append({**descriptor, "platform": platform})
    index_bytes = _canonical({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": entries})
    digest = _write_blob_bytes(blobs_dir, index_bytes)
    _write_index_json(dest, {"mediaType": MT_OCI_INDEX, "digest": digest, "size": len(index_bytes)}, tags)
    return digest


def write_docker_archive(
    dest: Path,
    blobs: Sequence[Blob],
    repo_tags: Sequence[str] = ("garrison/test:latest",),
    config: dict[str, Any] | None = None,
) -> str:
    """Write a ``docker save`` archive (legacy ``<id>/layer.tar``, uncompressed); returns the config digest.

    Layer tars come from ``Blob.tar_path`` (the uncompressed tar), so every blob must have one.
    """
    cfg_bytes = _canonical(config if config is not None else image_config(blobs))
    cfg_hex = hashlib.sha256(cfg_bytes).hexdigest()
    layer_ids: list[str] = []
    parent = ""
    for b in blobs:
        # Legacy v1 ids: unique per position in the chain, like docker's chain-derived ids.
        layer_id = hashlib.sha256(f"{parent}\n{b.diff_id}".encode()).hexdigest()
        layer_ids.append(layer_id)
        parent = layer_id
    manifest = [
        {
            "Config": f"{cfg_hex}.json",
            "RepoTags": list(repo_tags),
            "Layers": [f"{lid}/layer.tar" for lid in layer_ids],
        }
    ]
    repositories: dict[str, dict[str, str]] = {}
    for rt in repo_tags:
        repo, _, tag = rt.rpartition(":")
        repositories.setdefault(repo, {})[tag] = layer_ids[-1] if layer_ids else ""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:

        def add_bytes(name: str, data: bytes) -> None:
            info = _base_info(name, pax=False)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        def add_dir(name: str) -> None:
            info = _base_info(name, pax=False)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)

        prev = ""
        for lid, b in zip(layer_ids, blobs, strict=True):
            if b.tar_path is None:
                raise ValueError(f"blob {b.digest} has no uncompressed tar for a docker archive")
            add_dir(lid)
            add_bytes(f"{lid}/VERSION", b"1.0")
            v1: dict[str, Any] = {"id": lid, "created": CREATED}
            if prev:
                v1["parent"] = prev
            add_bytes(f"{lid}/json", _canonical(v1))
            info = _base_info(f"{lid}/layer.tar", pax=False)
            info.size = b.tar_path.stat().st_size
            with open(b.tar_path, "rb") as fh:
                tar.addfile(info, fh)
            prev = lid
        add_bytes(f"{cfg_hex}.json", cfg_bytes)
        add_bytes("manifest.json", json.dumps(manifest).encode())
        add_bytes("repositories", json.dumps(repositories).encode())
    return "sha256:" + cfg_hex


def write_docker25_archive(
    dest: Path,
    blobs: Sequence[Blob],
    repo_tags: Sequence[str] = ("garrison/test:latest",),
    config: dict[str, Any] | None = None,
) -> str:
    """Write a ``docker save`` archive the way Docker 25+ does; returns the manifest digest.

    Why a second format: since Docker 25 ``docker save`` emits an OCI layout (``oci-layout``,
    ``index.json``, ``blobs/sha256/…`` with *uncompressed* layer tars) and keeps a ``manifest.json`` whose
    ``Config``/``Layers`` point into ``blobs/``. A reader must accept both this and the legacy layout.
    """
    cfg_bytes = _canonical(config if config is not None else image_config(blobs))
    cfg_digest = "sha256:" + hashlib.sha256(cfg_bytes).hexdigest()
    layers: list[tuple[str, Path, int]] = []
    for b in blobs:
        if b.tar_path is None:
            raise ValueError(f"blob {b.digest} has no uncompressed tar for a docker archive")
        layers.append((b.diff_id, b.tar_path, b.tar_path.stat().st_size))
    manifest_bytes = _canonical(
        {
            "schemaVersion": 2,
            "mediaType": MT_OCI_MANIFEST,
            "config": {"mediaType": MT_OCI_CONFIG, "digest": cfg_digest, "size": len(cfg_bytes)},
            "layers": [{"mediaType": MT_OCI_LAYER, "digest": d, "size": n} for d, _, n in layers],
        }
    )
    manifest_digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    descriptor = {"mediaType": MT_OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes)}
    index = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_INDEX,
        "manifests": [
            {
                **descriptor,
                "annotations": {
                    "io.containerd.image.name": f"docker.io/{rt}",
                    REF_NAME: rt.rpartition(":")[2],
                },
            }
            for rt in repo_tags
        ],
    }
    legacy = [
        {
            "Config": f"blobs/sha256/{cfg_digest[7:]}",
            "RepoTags": list(repo_tags),
            "Layers": [f"blobs/sha256/{d[7:]}" for d, _, _ in layers],
            "LayerSources": {d: {"mediaType": MT_OCI_LAYER, "size": n, "digest": d} for d, _, n in layers},
        }
    ]
    repositories: dict[str, dict[str, str]] = {}
    for rt in repo_tags:
        repo, _, tag = rt.rpartition(":")
        repositories.setdefault(repo, {})[tag] = layers[-1][0][7:] if layers else ""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:

        def add_bytes(name: str, data: bytes) -> None:
            info = _base_info(name, pax=False)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for name in ("blobs", "blobs/sha256"):
            info = _base_info(name, pax=False)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        written: set[str] = set()
        for digest, path, size in layers:
            if digest in written:  # the same layer twice in one image is stored once
                continue
            written.add(digest)
            info = _base_info(f"blobs/sha256/{digest[7:]}", pax=False)
            info.size = size
            with open(path, "rb") as fh:
                tar.addfile(info, fh)
        add_bytes(f"blobs/sha256/{cfg_digest[7:]}", cfg_bytes)
        add_bytes(f"blobs/sha256/{manifest_digest[7:]}", manifest_bytes)
        add_bytes("index.json", _canonical(index))
        add_bytes("manifest.json", json.dumps(legacy).encode())
        add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes("repositories", json.dumps(repositories).encode())
    return manifest_digest


def build_image(
    layers: Sequence[Layer],
    *,
    work: Path,
    oci_dir: Path | None = None,
    archive: Path | None = None,
    tag: str = "latest",
    repo: str = "garrison/test",
    compression: Compression | Sequence[Compression] = "gzip",
) -> ImageRefs:
    """Write ``layers`` as an OCI layout at ``oci_dir`` and/or a docker archive at ``archive``.

    ``work`` holds the uncompressed layer tars (kept: docker archives and re-builds reuse them).
    ``compression`` is one value for all layers or one per layer (OCI layout only; archives are plain tar).
    """
    comps = [compression] * len(layers) if isinstance(compression, str) else list(compression)
    tars = [write_layer_tar(work / f"layer{i}.tar", layer) for i, layer in enumerate(layers)]
    blobs_dir = oci_dir / "blobs" / "sha256" if oci_dir else work / "blobs"
    blobs = [
        prepare_blob(t, blobs_dir, c, layer.created_by)  # type: ignore[arg-type]
        for t, c, layer in zip(tars, comps, layers, strict=True)
    ]
    config = image_config(blobs)
    manifest_digest = config_digest = ""
    if oci_dir is not None:
        manifest_digest, config_digest = write_oci_layout(oci_dir, blobs, [tag], config)
    if archive is not None:
        config_digest = write_docker_archive(archive, blobs, [f"{repo}:{tag}"], config)
    return ImageRefs(
        oci_dir,
        archive,
        tag,
        manifest_digest,
        config_digest,
        tuple(b.diff_id for b in blobs),
        tuple(b.digest for b in blobs),
    )
