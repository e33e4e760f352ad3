"""Turn a stored layer blob into a stream of uncompressed chunks.

The format is sniffed from the first bytes rather than trusted from the media type: registries and
archives mislabel layers often enough (Docker archives store uncompressed tars under "gzip" names and
vice versa). gzip goes through ISA-L (about twice CPython's zlib, and it releases the GIL so layers
decompress in parallel threads); zstd through ``zstandard``; anything else is read as a plain tar.

Every chunk is bounded (``CHUNK`` bytes of output per step), so a decompression bomb never needs more
than a few MiB of memory; :class:`ChunkStream` counts output bytes against the per-layer cap and hashes
them into the diff_id as they pass.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

from garrison.errors import BadImageError, LimitExceededError

CHUNK = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _gzip_chunks(raw: IO[bytes], head: bytes) -> Iterator[bytes]:
    """Inflate possibly multi-member gzip; ISA-L errors become :class:`BadImageError`."""
    from isal import igzip_lib  # lazy: keep CLI start-up fast

    isal_error: Any = igzip_lib.IsalError
    try:
        yield from _inflate(raw, head, igzip_lib)
    except isal_error as exc:
        raise BadImageError(f"corrupt gzip data: {exc}") from None


def _inflate(raw: IO[bytes], head: bytes, igzip_lib: Any) -> Iterator[bytes]:
    """At most ``CHUNK`` output bytes per step, whatever the compression ratio.

    ``IgzipDecompressor`` buffers unconsumed input internally; zlib-style ``unconsumed_tail`` would
    copy the rest of the input on every bounded call.
    """
    new = igzip_lib.IgzipDecompressor
    flag = igzip_lib.DECOMP_GZIP
    d = new(flag=flag)
    data = head
    while True:
        if d.eof:
            rest = d.unused_data + data
            # Some writers pad with NULs; anything else must be the next gzip member.
            rest = rest.lstrip(b"\x00")
            while not rest:
                more = raw.read(CHUNK)
                if not more:
                    return
                rest = more.lstrip(b"\x00")
            if not rest.startswith(_GZIP_MAGIC[:1]):
                raise BadImageError("trailing garbage after gzip stream")
            d = new(flag=flag)
            data = rest
        if d.needs_input and not data:
            data = raw.read(CHUNK)
            if not data:
                raise BadImageError("truncated gzip stream (the layer ends early)")
        out = d.decompress(data, CHUNK)
        data = b""
        if out:
            yield out


def _zstd_chunks(raw: IO[bytes], head: bytes) -> Iterator[bytes]:
    import zstandard  # lazy

    class _Prefixed:
        def __init__(self) -> None:
            self.head = head

        def read(self, n: int = -1) -> bytes:
            if self.head:
                h, self.head = self.head, b""
                return h
            return raw.read(n if n > 0 else CHUNK)

    source: Any = _Prefixed()
    reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True)
    try:
        while True:
            out = reader.read(CHUNK)
            if not out:
                return
            yield out
    except zstandard.ZstdError as exc:
        raise BadImageError(f"invalid zstd layer: {exc}") from None


def _plain_chunks(raw: IO[bytes], head: bytes) -> Iterator[bytes]:
    if head:
        yield head
    while True:
        out = raw.read(CHUNK)
        if not out:
            return
        yield out


def sniff_compression(head: bytes) -> str:
    """``gzip``, ``zstd`` or ``none`` from a blob's first bytes."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return "none"


_DECODERS: dict[str, Callable[[IO[bytes], bytes], Iterator[bytes]]] = {
    "gzip": _gzip_chunks,
    "zstd": _zstd_chunks,
    "none": _plain_chunks,
}


class ChunkStream:
    """Uncompressed chunks of one layer, hashed (diff_id) and counted (bomb cap) on the way through.

    With ``prefetch > 0`` two helper threads work ahead of the consumer, a pipeline of three stages:
    one reads, verifies and inflates, the next hashes (the diff_id), the consumer walks the tar. At most
    ``prefetch`` chunks wait between two stages, so memory stays bounded. ISA-L, file reads and hashlib
    release the GIL, so on a multi-core machine inflating (or reading), hashing and the Python tar walk
    overlap instead of adding up; hashing in the reading thread would put sha256 (about as costly as
    reading an uncompressed layer) on the critical path. Chunks reach the consumer only once hashed,
    so :attr:`diff_id` is complete when :meth:`next_chunk` returns the end of the stream.
    Call :meth:`close` (always, also after errors) before closing ``raw``.
    """

    def __init__(self, raw: IO[bytes], max_bytes: int, name: str = "layer", prefetch: int = 0) -> None:
        head = raw.read(4)
        while 0 < len(head) < 4:
            more = raw.read(4 - len(head))
            if not more:
                break
            head += more
        self.compression = sniff_compression(head)
        self._it = _DECODERS[self.compression](raw, head)
        self._hash = hashlib.sha256()
        self._max = max_bytes
        self._name = name
        self._produced = 0
        #: Bytes handed to the consumer so far.
        self.total = 0
        self._done = False
        #: Decoded chunks waiting for the hasher, and hashed chunks waiting for the consumer.
        self._raw_queue: queue.Queue[bytes | BaseException] | None = None
        self._queue: queue.Queue[bytes | BaseException] | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        if prefetch > 0:
            self._raw_queue = queue.Queue(maxsize=prefetch)
            self._queue = queue.Queue(maxsize=prefetch)
            self._threads = [
                threading.Thread(target=self._produce, name="garrison-inflate", daemon=True),
                threading.Thread(target=self._hash_ahead, name="garrison-hash", daemon=True),
            ]
            for t in self._threads:
                t.start()

    def _decode(self) -> bytes:
        """Decode and count one chunk (``b""`` at the end)."""
        try:
            out = next(self._it)
        except StopIteration:
            return b""
        except (OSError, ValueError) as exc:
            raise BadImageError(f"{self._name}: corrupt compressed data: {exc}") from None
        self._produced += len(out)
        if self._produced > self._max:
            raise LimitExceededError(
                f"{self._name}: more than {self._max} bytes once decompressed (decompression bomb?)"
            )
        return out

    def _step(self) -> bytes:
        """Decode, count and hash one chunk (``b""`` at the end)."""
        out = self._decode()
        self._hash.update(out)
        return out

    def _produce(self) -> None:
        assert self._raw_queue is not None
        try:
            while not self._stop.is_set():
                out = self._decode()
                self._put(self._raw_queue, out)
                if not out:
                    return
        except BaseException as exc:  # handed on to the consumer, raised there
            self._put(self._raw_queue, exc)

    def _hash_ahead(self) -> None:
        """Hash decoded chunks in order and pass them on; errors and the end pass through."""
        assert self._raw_queue is not None and self._queue is not None
        update = self._hash.update
        while not self._stop.is_set():
            try:
                item = self._raw_queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if isinstance(item, bytes) and item:
                update(item)
                self._put(self._queue, item)
                continue
            self._put(self._queue, item)
            return

    def _put(self, q: queue.Queue[bytes | BaseException], item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def next_chunk(self) -> bytes:
        """The next non-empty chunk, or ``b""`` at the end of the stream."""
        if self._done:
            return b""
        if self._queue is None:
            out = self._step()
        else:
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            out = item
        if not out:
            self._done = True
        self.total += len(out)
        return out

    def drain(self) -> None:
        """Read to the end so that the diff_id and the blob digest cover every byte."""
        while self.next_chunk():
            pass

    def close(self) -> None:
        """Stop the helper thread (if any) and wait for it; safe to call twice."""
        self._stop.set()
        while self._threads:
            self._threads.pop().join()

    @property
    def diff_id(self) -> str:
        """``sha256:…`` of everything read so far (the layer's diff_id once drained)."""
        return "sha256:" + self._hash.hexdigest()
