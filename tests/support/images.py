"""Session-cached real test images built from real Debian root filesystems.

Call :func:`test_images` (or use the ``test_images`` fixture): the first call in a fresh checkout
debootstraps Debian, grows the app layer and writes the images (about 2 minutes cold); later calls and
other processes reuse ``.cache/test-images``. Warm it up by hand with ``python -m tests.support.images``.

Images:

``debian``  one gzip layer: Debian 12 minbase (tag ``12``)
``app``     three layers: Debian; the app layer (apt python3/nodejs, purged tzdata → whiteouts, opaque
            ``etc/apt/apt.conf.d``, old pip packages in ``/app/venv``, old npm packages in ``/app``); and a
            small PAX-heavy layer (float mtimes, a 150+ character path, a hard link) — tag ``latest``.
            Also written with zstd layers (``app_oci_zstd``) and uncompressed layers (``app_oci_plain``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support import debian
from tests.support.cache import cached, is_current, remove_tree
from tests.support.imagewriter import (
    Compression,
    Dir,
    File,
    Hardlink,
    ImageRefs,
    Layer,
    PlatformImage,
    Symlink,
    prepare_blob,
    write_docker_archive,
    write_layer_tar,
    write_oci_index_layout,
    write_oci_layout,
)

#: The builders under the names the test-support brief uses (they live in :mod:`tests.support.debian`).
debian_rootfs = debian.debian_rootfs
app_rootfs_layer = debian.app_layer

IMAGES_VERSION = "images-v2"
DEBIAN_TAG = "12"
APP_TAG = "latest"
#: A deliberately long path (tar needs a PAX header or GNU long-name record for it).
LONG_PATH = "app/config/" + "/".join(["deeply-nested-directory-name"] * 6) + "/settings.json"


@dataclass(frozen=True)
class BuiltImages:
    """Paths (and references) of the cached test images. Treat every path as read-only."""

    debian_rootfs: Path
    app_rootfs: Path
    app_upper: Path
    debian_oci: Path
    debian_archive: Path
    app_oci: Path
    app_archive: Path
    app_oci_zstd: Path
    app_oci_plain: Path
    debian: ImageRefs
    app: ImageRefs

    @property
    def debian_oci_ref(self) -> str:
        return f"oci:{self.debian_oci}:{DEBIAN_TAG}"

    @property
    def debian_archive_ref(self) -> str:
        return f"docker-archive:{self.debian_archive}"

    @property
    def app_oci_ref(self) -> str:
        return f"oci:{self.app_oci}:{APP_TAG}"

    @property
    def app_archive_ref(self) -> str:
        return f"docker-archive:{self.app_archive}"

    @property
    def app_oci_zstd_ref(self) -> str:
        return f"oci:{self.app_oci_zstd}:{APP_TAG}"

    @property
    def app_oci_plain_ref(self) -> str:
        return f"oci:{self.app_oci_plain}:{APP_TAG}"


def pax_layer() -> Layer:
    """The small PAX-heavy third layer of the app image."""
    settings = b'{"debug": false, "allowed_hosts": ["*"]}\n'
    return Layer(
        entries=[
            Dir("app"),
            Dir("app/config"),
            *[Dir(LONG_PATH.rsplit("/", i)[0]) for i in range(LONG_PATH.count("/") - 2, 0, -1)],
            File(LONG_PATH, settings),
            File("app/config/app.env", b"APP_ENV=production\nPORT=8080\n"),
            Hardlink("app/config/app.env.bak", "app/config/app.env"),
            Symlink("app/current", "/app/config"),
        ],
        created_by="COPY config/ /app/config/ # garrison-test PAX layer",
        pax=True,
    )


def _layers() -> list[Layer]:
    """The app image's layers, bottom first (the first one alone is the Debian image)."""
    base = Layer(root=debian.debian_rootfs(), created_by="debootstrap --variant=minbase bookworm")
    app = debian.app_layer()
    app_layer = Layer(
        root=app.upper,
        entries=app.deletions,
        created_by="RUN apt-get install python3 python3-venv nodejs && pip install … && npm install …",
    )
    return [base, app_layer, pax_layer()]


def _build(dest: Path) -> None:
    layers = _layers()
    work = dest / "work"
    # Each layer is tarred once; every image and variant below reuses these tars.
    tars = [write_layer_tar(work / f"layer{i}.tar", layer) for i, layer in enumerate(layers)]
    variants: tuple[tuple[str, Compression], ...] = (
        ("app-oci", "gzip"),
        ("app-oci-zstd", "zstd"),
        ("app-oci-plain", "none"),
    )
    for name, comp in variants:
        blobs = [
            prepare_blob(t, dest / name / "blobs" / "sha256", comp, layer.created_by)
            for t, layer in zip(tars, layers, strict=True)
        ]
        write_oci_layout(dest / name, blobs, [APP_TAG])
        if comp == "gzip":
            write_docker_archive(dest / "app.tar", blobs, [f"garrison/app:{APP_TAG}"])
            write_oci_layout(dest / "debian-oci", blobs[:1], [DEBIAN_TAG])
            write_docker_archive(dest / "debian.tar", blobs[:1], [f"garrison/debian:{DEBIAN_TAG}"])
    remove_tree(work)


def _refs(dest: Path, oci: str, archive: str, tag: str) -> ImageRefs:
    import json

    index = json.loads((dest / oci / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    blobs = dest / oci / "blobs" / "sha256"
    manifest = json.loads((blobs / manifest_digest.split(":")[1]).read_text())
    config = json.loads((blobs / manifest["config"]["digest"].split(":")[1]).read_text())
    return ImageRefs(
        dest / oci,
        dest / archive,
        tag,
        manifest_digest,
        manifest["config"]["digest"],
        tuple(config["rootfs"]["diff_ids"]),
        tuple(layer["digest"] for layer in manifest["layers"]),
    )


VERSION = f"{debian.DEBIAN_VERSION}+{debian.APP_VERSION}+{IMAGES_VERSION}"


def images_ready() -> bool:
    """True when the images are cached: using them then needs no debootstrap, chroot, pip or npm."""
    return (
        is_current("images", VERSION)
        and is_current("app-layer", f"{debian.DEBIAN_VERSION}+{debian.APP_VERSION}")
        and is_current("debian-rootfs", debian.DEBIAN_VERSION)
    )


def test_images() -> BuiltImages:
    """Build (once, cached, lock-protected) and return the test images."""
    dest = cached("images", VERSION, _build)
    app = debian.app_layer()
    return BuiltImages(
        debian_rootfs=debian.debian_rootfs(),
        app_rootfs=app.merged,
        app_upper=app.upper,
        debian_oci=dest / "debian-oci",
        debian_archive=dest / "debian.tar",
        app_oci=dest / "app-oci",
        app_archive=dest / "app.tar",
        app_oci_zstd=dest / "app-oci-zstd",
        app_oci_plain=dest / "app-oci-plain",
        debian=_refs(dest, "debian-oci", "debian.tar", DEBIAN_TAG),
        app=_refs(dest, "app-oci", "app.tar", APP_TAG),
    )


test_images.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite the name


MULTIARCH_VERSION = "multiarch-v1"
MULTIARCH_TAG = "multi"
#: (architecture, variant, dpkg Architecture) of each platform in :func:`multiarch_image`.
PLATFORMS = (("amd64", None, "amd64"), ("arm64", "v8", "arm64"))


def _dpkg_stanza(package: str, version: str, arch: str, source: str | None = None) -> str:
    src = f"Source: {source}\n" if source else ""
    return (
        f"Package: {package}\nStatus: install ok installed\nPriority: optional\nSection: libs\n"
        f"Installed-Size: 100\nMaintainer: Debian <debian@example.invalid>\nArchitecture: {arch}\n"
        f"{src}Version: {version}\nDescription: {package} for tests\n\n"
    )


def _build_multiarch(dest: Path) -> None:
    out = dest / "oci"
    images = []
    for arch, variant, dpkg_arch in PLATFORMS:
        status = _dpkg_stanza("libssl3", "3.0.11-1~deb12u2", dpkg_arch, "openssl") + _dpkg_stanza(
            "zlib1g", "1:1.2.13.dfsg-1", dpkg_arch, "zlib"
        )
        layer = Layer(
            entries=[
                Dir("etc"),
                File(
                    "etc/os-release",
                    b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
                ),
                File("etc/debian_version", b"12.5\n"),
                Dir("var"),
                Dir("var/lib"),
                Dir("var/lib/dpkg"),
                File("var/lib/dpkg/status", status.encode()),
                File("etc/garrison-arch", f"{arch}\n".encode()),
            ],
            created_by=f"multiarch {arch}",
        )
        tar = write_layer_tar(dest / "work" / f"{arch}.tar", layer)
        blob = prepare_blob(tar, out / "blobs" / "sha256", "gzip", layer.created_by)
        images.append(PlatformImage([blob], arch, "linux", variant))
    write_oci_index_layout(out, images, [MULTIARCH_TAG])
    remove_tree(dest / "work")


def multiarch_image() -> Path:
    """A tiny two-platform OCI layout (linux/amd64 and linux/arm64/v8, tag ``multi``): ``index.json`` tags an
    image index. Each platform's layer has os-release, a two-package dpkg status and ``etc/garrison-arch``.
    Reference: ``oci:PATH:multi``; push it with ``registry.push(ref, repo_tag, all_images=True)``."""
    return cached("multiarch", MULTIARCH_VERSION, _build_multiarch) / "oci"


if __name__ == "__main__":  # pragma: no cover - manual warm-up
    import time

    t0 = time.monotonic()
    imgs = test_images()
    print(f"{time.monotonic() - t0:.1f}s", imgs.debian_oci_ref, imgs.app_oci_ref, imgs.app_archive_ref)
