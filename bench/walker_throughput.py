"""Throughput of the layer walker on a large gzip layer, next to its floors and Python's tarfile.

Usage::

    python bench/walker_throughput.py [LAYER_BLOB]   # default: the Debian test image's layer

Prints MB/s of *uncompressed* tar for: ISA-L inflate alone (the floor), inflate + sha256 (the diff_id),
the walker with and without the prefetch thread, and ``tarfile`` in stream mode (``r|gz``). Numbers
depend on the machine's load; run it on an idle machine and compare ratios, not absolutes.
"""

from __future__ import annotations

import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from garrison.layers.decompress import CHUNK, ChunkStream
from garrison.layers.tar import TarWalker


def _default_blob() -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.images import test_images

    oci = test_images().debian_oci
    return max((oci / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)


def inflate_only(blob: Path) -> int:
    from isal import igzip_lib

    d = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_GZIP)
    n = 0
    with open(blob, "rb") as fp:
        while chunk := fp.read(CHUNK):
            n += len(d.decompress(chunk))
    return n


def inflate_hash(blob: Path) -> int:
    with open(blob, "rb") as fp:
        cs = ChunkStream(fp, 1 << 50)
        cs.drain()
        return cs.total


def walker(prefetch: int) -> Callable[[Path], int]:
    def run(blob: Path) -> int:
        with open(blob, "rb") as fp:
            cs = ChunkStream(fp, 1 << 50, prefetch=prefetch)
            try:
                w = TarWalker(cs)
                for _ in w:
                    pass
                w.finish()
            finally:
                cs.close()
            return cs.total

    return run


def stdlib_tarfile(blob: Path) -> int:
    with tarfile.open(blob, "r|gz") as tf:
        for _ in tf:
            pass
    return 0


def main() -> None:
    blob = Path(sys.argv[1]) if len(sys.argv) > 1 else _default_blob()
    print(f"layer blob: {blob} ({blob.stat().st_size / 1e6:.1f} MB compressed)")
    cases: list[tuple[str, Callable[[Path], int]]] = [
        ("isal inflate only (floor)", inflate_only),
        ("inflate + sha256 (diff_id)", inflate_hash),
        ("walker, no prefetch", walker(0)),
        ("walker, prefetch thread", walker(4)),
        ("tarfile r|gz (stdlib)", stdlib_tarfile),
    ]
    size = inflate_only(blob)  # uncompressed tar bytes: the unit of every line
    for name, fn in cases:
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            fn(blob)
            best = min(best, time.perf_counter() - t)
        print(f"{name:32s} {size / best / 1e6:8.0f} MB/s  ({best:.3f} s best of 3)")


if __name__ == "__main__":
    main()
