"""Pieces every image source shares: digests, verified streams, manifests, configs, platforms.

Sources differ only in where bytes live (a directory, a tar, a registry); what the bytes mean is the
OCI image spec, decoded once here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from garrison.errors import BadImageError, DigestMismatchError, LimitExceededError, NotFoundError
from garrison.model import Artifact, LayerInfo, SourceKind
from garrison.sources.base import OpenedImage, ProgressFn

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset((OCI_INDEX, DOCKER_LIST))
MANIFEST_TYPES = frozenset((OCI_MANIFEST, DOCKER_MANIFEST))
#: Sent as ``Accept`` on every manifest request: distribution answers 404 or a schema1 manifest otherwise.
ACCEPT_MANIFESTS = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))

_DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
CHUNK = 1024 * 1024


def check_digest(digest: object, what: str = "digest") -> str:
    """Return ``digest`` when it is a well-formed sha256/sha512 digest; it is used in paths and URLs."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise BadImageError(f"invalid {what}: {str(digest)[:100]!r}")
    return digest


def hasher(digest: str) -> Any:
    return hashlib.new(digest.split(":", 1)[0])


def verify_bytes(data: bytes, digest: str, what: str) -> bytes:
    """``data`` when it hashes to ``digest``, else :class:`DigestMismatchError`."""
    h = hasher(digest)
    h.update(data)
    actual = f"{digest.split(':', 1)[0]}:{h.hexdigest()}"
    if actual != digest:
        raise DigestMismatchError(f"{what}: content is {actual}, expected {digest}")
    return data


def load_json(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object, or :class:`BadImageError` saying which document was broken."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadImageError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadImageError(f"{what} is not a JSON object")
    return doc


def read_capped(fp: IO[bytes], limit: int, what: str) -> bytes:
    """Read a small document, refusing more than ``limit`` bytes."""
    data = fp.read(limit + 1)
    if len(data) > limit:
        raise LimitExceededError(f"{what} is larger than {limit} bytes")
    return data


class _HashThread:
    """``update`` hands the data to a helper thread that hashes it (hashlib releases the GIL), so the
    thread that reads a blob does not also pay for hashing it. At most ``depth`` chunks wait."""

    def __init__(self, h: Any, depth: int = 8) -> None:
        import queue
        import threading

        self._h = h
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._thread: threading.Thread | None = threading.Thread(target=self._run, name="garrison-verify", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            self._h.update(item)

    def update(self, data: bytes) -> None:
        self._queue.put(data)

    def close(self) -> None:
        """Wait until everything handed over is hashed, and end the thread; safe to call twice."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def hexdigest(self) -> str:
        self.close()
        return str(self._h.hexdigest())


class VerifyingReader:
    """A read-only stream that hashes what passes through and checks the digest at EOF.

    Used for every layer blob so that a tampered or truncated blob fails loudly at the end of the
    walk instead of producing a quietly wrong inventory. With ``background``, hashing runs on a
    helper thread (close the reader to end it).
    """

    def __init__(
        self,
        fp: IO[bytes] | Any,
        digest: str | None,
        what: str,
        total: int = 0,
        progress: ProgressFn | None = None,
        on_close: Callable[[], None] | None = None,
        expected_size: int | None = None,
        background: bool = False,
    ) -> None:
        self._fp = fp
        self._digest = digest
        self._hash = hasher(digest) if digest else None
        if self._hash is not None and background:
            self._hash = _HashThread(self._hash)
        self._what = what
        self._done = 0
        self._total = total
        self._progress = progress
        self._on_close = on_close
        self._checked = False
        self._expected_size = expected_size

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._fp.read(n if n is not None and n >= 0 else CHUNK)
        if data:
            if self._hash is not None:
                self._hash.update(data)
            self._done += len(data)
            if self._progress is not None:
                self._progress(self._done, self._total)
        elif not self._checked:
            self._checked = True
            self._check()
        return data

    def _check(self) -> None:
        if self._expected_size is not None and self._done != self._expected_size:
            raise BadImageError(f"{self._what}: got {self._done} bytes, expected {self._expected_size}")
        if self._hash is not None and self._digest is not None:
            actual = f"{self._digest.split(':', 1)[0]}:{self._hash.hexdigest()}"
            if actual != self._digest:
                raise DigestMismatchError(f"{self._what}: content is {actual}, expected {self._digest}")

    def close(self) -> None:
        if isinstance(self._hash, _HashThread):
            self._hash.close()
        if self._on_close is not None:
            cb, self._on_close = self._on_close, None
            cb()

    def __enter__(self) -> VerifyingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Window:
    """``size`` bytes of an open file starting at ``offset`` (a member inside an archive)."""

    def __init__(self, fp: IO[bytes], offset: int, size: int) -> None:
        self._fp = fp
        fp.seek(offset)
        self._left = size

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._fp.read(n)
        if not data:
            raise BadImageError("archive ends inside a layer (truncated file)")
        self._left -= len(data)
        return data


@dataclass
class FileLayer:
    """A layer blob stored in a local file (an OCI layout blob or a member of a ``docker save`` tar)."""

    info: LayerInfo
    path: str
    offset: int = 0
    length: int = -1
    #: Digest the stored bytes must hash to (None when the archive does not say).
    verify: str | None = None

    def open_raw(self, progress: ProgressFn | None = None) -> VerifyingReader:
        try:
            fp = open(self.path, "rb")  # noqa: SIM115 - closed by the reader
        except FileNotFoundError:
            raise NotFoundError(f"layer blob {self.info.digest} is missing ({self.path})") from None
        length = self.length
        if length < 0:
            import os

            length = os.fstat(fp.fileno()).st_size
        return VerifyingReader(
            _Window(fp, self.offset, length),
            self.verify,
            f"layer {self.info.digest}",
            total=length,
            progress=progress,
            on_close=fp.close,
            # A local file reads faster than it hashes: hash it on the side.
            background=True,
        )


def parse_platform(text: str) -> tuple[str, str, str]:
    """``os/arch[/variant]`` → a triple; amd64 and arm64 get their implied default variant."""
    parts = (text or "linux/amd64").split("/")
    os_ = parts[0]
    arch = parts[1] if len(parts) > 1 else "amd64"
    variant = parts[2] if len(parts) > 2 else ""
    return os_, arch, variant


def _norm_variant(arch: str, variant: str) -> str:
    return variant or ("v8" if arch == "arm64" else "")


def select_manifest(index: dict[str, Any], platform: str, what: str) -> dict[str, Any]:
    """Pick the manifest descriptor for ``platform`` from an image index / manifest list.

    The variant must match when both sides state one; arm64 is treated as ``v8`` when unstated.
    """
    want_os, want_arch, want_variant = parse_platform(platform)
    manifests = index.get("manifests")
    if not isinstance(manifests, list):
        raise BadImageError(f"{what}: index without a manifests list")
    candidates: list[tuple[int, dict[str, Any]]] = []
    seen: list[str] = []
    for desc in manifests:
        if not isinstance(desc, dict):
            continue
        plat = desc.get("platform") or {}
        if not isinstance(plat, dict):
            continue
        p_os, p_arch, p_var = (
            str(plat.get("os", "")),
            str(plat.get("architecture", "")),
            str(plat.get("variant", "")),
        )
        if p_os == "unknown":  # buildkit attestation manifests
            continue
        seen.append("/".join(x for x in (p_os, p_arch, p_var) if x))
        if p_os != want_os or p_arch != want_arch:
            continue
        if want_variant and p_var and _norm_variant(want_arch, p_var) != _norm_variant(want_arch, want_variant):
            continue
        score = 2 if _norm_variant(want_arch, p_var) == _norm_variant(want_arch, want_variant) else 1
        candidates.append((score, desc))
    if not candidates:
        raise NotFoundError(f"{what}: no manifest for platform {platform} (available: {', '.join(seen) or 'none'})")
    candidates.sort(key=lambda c: -c[0])
    return candidates[0][1]


#: Image indexes followed before a reference is refused as crafted.
MAX_INDEX_DEPTH = 4

#: How a source reads the document a descriptor names: (digest, media type when the transport says one,
#: else "", the document), digest verified.
FetchManifest = Callable[[dict[str, Any]], tuple[str, str, dict[str, Any]]]


def is_index(doc: dict[str, Any], media: str) -> bool:
    """An image index / manifest list (by media type, or by shape when the type is not stated)."""
    return media in INDEX_TYPES or (not media and "manifests" in doc and "layers" not in doc)


def choose_manifest(index: dict[str, Any], platform: str, what: str) -> dict[str, Any]:
    """The descriptor to follow in an index: its only entry when that states no platform (a single-image
    ``index.json``), else the one for ``platform`` (:func:`select_manifest`)."""
    entries = [m for m in index.get("manifests") or [] if isinstance(m, dict)]
    if len(entries) == 1 and not entries[0].get("platform"):
        return entries[0]
    return select_manifest(index, platform, what)


def resolve_manifest(
    digest: str, media: str, doc: dict[str, Any], fetch: FetchManifest, platform: str, what: str
) -> tuple[str, dict[str, Any]]:
    """Follow image indexes from ``doc`` (with its ``digest``, "" for a layout's ``index.json``, and its
    ``media`` type, "" when unknown) down to one image manifest: (digest, manifest). Every source resolves
    through here; ``fetch`` is where it differs."""
    for _ in range(MAX_INDEX_DEPTH):
        media = media or str(doc.get("mediaType") or "")
        if not is_index(doc, media):
            if (media and media not in MANIFEST_TYPES) or "layers" not in doc:
                raise BadImageError(f"{what}: {digest or 'the index'} is neither an image manifest nor an index")
            return digest, doc
        desc = choose_manifest(doc, platform, what)
        digest, media, doc = fetch(desc)
        media = media or str(doc.get("mediaType") or desc.get("mediaType") or "")
    raise BadImageError(f"{what}: image indexes nested too deeply")


def config_digest(manifest: dict[str, Any], what: str) -> str:
    """The digest of an image manifest's config blob."""
    cdesc = manifest.get("config")
    if not isinstance(cdesc, dict):
        raise BadImageError(f"{what}: manifest without a config descriptor")
    return check_digest(cdesc.get("digest"), f"{what} config digest")


def parse_config(data: bytes, digest: str, what: str) -> dict[str, Any]:
    """An image config from its bytes, verified against ``digest``."""
    return load_json(verify_bytes(data, digest, f"{what} config"), f"{what} config")


def layers_from(descs: Any, config: dict[str, Any], what: str) -> list[LayerInfo]:
    """LayerInfo for every layer descriptor (a manifest's ``layers``), paired with the config's
    ``rootfs.diff_ids``. A descriptor without a digest (a classic ``docker save`` layer, stored
    uncompressed under a directory name) is addressed by its diff_id."""
    if not isinstance(descs, list):
        raise BadImageError(f"{what}: manifest has no layers list")
    rootfs = config.get("rootfs") or {}
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(descs):
        raise BadImageError(
            f"{what}: config lists {len(diff_ids) if isinstance(diff_ids, list) else 'no'} diff_ids "
            f"for {len(descs)} layers"
        )
    history = [h for h in config.get("history") or [] if isinstance(h, dict) and not h.get("empty_layer")]
    out = []
    for i, (desc, diff_id) in enumerate(zip(descs, diff_ids, strict=True)):
        if not isinstance(desc, dict):
            raise BadImageError(f"{what}: layer descriptor {i} is not an object")
        size = desc.get("size", 0)
        out.append(
            LayerInfo(
                index=i,
                digest=check_digest(desc.get("digest") or diff_id, f"{what} layer {i} digest"),
                diff_id=check_digest(diff_id, f"{what} diff_id {i}"),
                size=size if isinstance(size, int) and size >= 0 else 0,
                media_type=str(desc.get("mediaType", "")),
                created_by=str(history[i].get("created_by", "")) if i < len(history) else "",
            )
        )
    return out


def config_fields(config: dict[str, Any]) -> dict[str, Any]:
    """Artifact fields read from an image config."""
    cfg = config.get("config") or {}
    labels = cfg.get("Labels") if isinstance(cfg, dict) else None
    return {
        "architecture": str(config.get("architecture", "")),
        "os": str(config.get("os", "")),
        "labels": {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
    }


def image_from_config(
    what: str,
    kind: SourceKind,
    config: dict[str, Any],
    layers: list[Any],
    *,
    digest: str = "",
    config_digest: str = "",
    closers: tuple[Callable[[], None], ...] = (),
    **extra: Any,
) -> OpenedImage:
    """The opened image every config-based source returns: the artifact's platform and labels come from
    the image config, its layer list from ``layers`` (bottom first); ``closers`` release connections when
    the image is closed; ``extra`` adds repo tags/digests."""
    artifact = Artifact(
        name=what,
        kind=kind,
        digest=digest,
        config_digest=config_digest,
        layers=tuple(la.info for la in layers),
        **config_fields(config),
        **extra,
    )
    return OpenedImage(artifact=artifact, layers=list(layers), config=config, _closers=list(closers))
