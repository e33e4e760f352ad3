"""The inventory scan: open a source, analyse each layer once (or take it from the cache), merge.

Each layer is walked exactly once. For every file the analyzers are asked ``wants(path, size, mode)``;
wanted files are read once, up to the largest ``max_bytes`` among the analyzers that want them, and
handed to each of those analyzers. Layers are independent, so they run in parallel threads (ISA-L and
hashlib release the GIL while they work) and are cached by diff_id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from garrison.config import Settings
from garrison.errors import DigestMismatchError
from garrison.inventory.apply import LayerResult, apply_layers
from garrison.inventory.base import AnalysisResult, Analyzer, FileInput
from garrison.inventory.cache import LayerCache
from garrison.layers.entry import Entry, EntryKind
from garrison.model import Inventory, OSInfo, Package, SourceKind
from garrison.progress import Progress, Task
from garrison.sources.base import OpenedImage

if TYPE_CHECKING:
    from concurrent.futures import Future

#: Contents of analysed files up to this size are kept for the rest of the layer walk, so that a
#: hardlink to them (tar stores the second name as a link) can be analysed without a second pass.
_KEEP_FOR_LINKS = 4 * 1024 * 1024
#: Total kept per layer; links to files beyond it are resolved by a second pass over the layer.
_KEEP_BUDGET = 64 * 1024 * 1024
#: Decompressed chunks (1 MiB each) inflated ahead of the tar walk by a helper thread.
_PREFETCH = 4
_NOT_FILES = frozenset((EntryKind.SYMLINK, EntryKind.DIR, EntryKind.OTHER))
#: Directories never descended into when scanning a live root filesystem (``dir:/``).
_PSEUDO_FS = frozenset(("proc", "sys", "dev"))


def _run(analyzers: Sequence[Analyzer], file: FileInput) -> AnalysisResult:
    """Every wanting analyzer on one file, results merged. An analyzer that raises costs a warning."""
    if len(analyzers) == 1:
        results = [_safe(analyzers[0], file)]
    else:
        results = [_safe(a, file) for a in analyzers]
        results = [r for r in results if r.packages or r.os or r.system_files or r.warnings]
        if not results:
            return AnalysisResult()
    if len(results) == 1:
        return results[0]
    pkgs: list[Package] = []
    os_info: OSInfo | None = None
    system: list[str] = []
    warns: list[str] = []
    for r in results:
        pkgs.extend(r.packages)
        os_info = os_info or r.os
        system.extend(r.system_files)
        warns.extend(r.warnings)
    return AnalysisResult(tuple(pkgs), os_info, tuple(system), tuple(warns))


def _safe(analyzer: Analyzer, file: FileInput) -> AnalysisResult:
    try:
        return analyzer.analyze(file)
    except Exception as exc:  # an analyzer bug must not lose the whole scan
        return AnalysisResult(warnings=(f"{file.path}: analyzer {analyzer.name} failed: {exc!r}",))


class Dispatch:
    """One precomputed ``wants`` for all analyzers, called once per file.

    Analyzers that declare ``basenames``/``suffixes`` (the data-declared ones) are only asked when the
    file's base name matches (one set lookup and one ``endswith`` for all of them together); the others
    are asked every time. The answer keeps the analyzers' declared order.
    """

    def __init__(self, analyzers: Sequence[Analyzer]) -> None:
        self.analyzers = tuple(analyzers)
        self._always: list[tuple[int, Analyzer]] = []
        self._by_base: dict[str, list[tuple[int, Analyzer]]] = {}
        self._by_suffix: list[tuple[tuple[str, ...], int, Analyzer]] = []
        suffixes: list[str] = []
        for i, a in enumerate(self.analyzers):
            bases = getattr(a, "basenames", None)
            sfx = getattr(a, "suffixes", None)
            if not isinstance(bases, frozenset | set) or not isinstance(sfx, tuple):
                self._always.append((i, a))
                continue
            for b in bases:
                self._by_base.setdefault(b, []).append((i, a))
            if sfx:
                self._by_suffix.append((sfx, i, a))
                suffixes.extend(sfx)
        self._suffixes = tuple(suffixes)

    def __call__(self, path: str, size: int, mode: int) -> list[Analyzer]:
        hits = [(i, a) for i, a in self._always if a.wants(path, size, mode)]
        base = path[path.rfind("/") + 1 :]
        cands = self._by_base.get(base)
        if cands or (self._suffixes and base.endswith(self._suffixes)):
            seen = {i for i, _ in hits}
            more = list(cands or ())
            more += [(i, a) for sfx, i, a in self._by_suffix if base.endswith(sfx)]
            for i, a in more:
                if i not in seen and a.wants(path, size, mode):
                    seen.add(i)
                    hits.append((i, a))
            hits.sort(key=lambda t: t[0])
        return [a for _, a in hits]


@dataclass
class _LayerAccumulator:
    """Consumes one layer's entries and remembers what the analyzers said about them."""

    analyzers: tuple[Analyzer, ...]
    name: str
    files: dict[str, AnalysisResult] = field(default_factory=dict)
    whiteouts: list[str] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Hardlinks to files whose content was not kept: link path → (target, size, mode, analyzers).
    pending: dict[str, tuple[str, int, int, list[Analyzer]]] = field(default_factory=dict)

    def consume(self, entries: Iterable[Entry]) -> None:
        wanted = Dispatch(self.analyzers)
        files = self.files
        meta: dict[str, tuple[int, int]] = {}
        kept: dict[str, bytes] = {}
        kept_bytes = 0
        FILE, HARDLINK = EntryKind.FILE, EntryKind.HARDLINK
        for e in entries:
            kind = e.kind
            if kind is FILE:
                path, size, mode = e.path, e.size, e.mode
                meta[path] = (size, mode)
                wanting = wanted(path, size, mode)
                if not wanting:
                    continue
                content = self._read(e, wanting)
                if content is None:
                    files[path] = AnalysisResult()
                    continue
                if len(content) <= _KEEP_FOR_LINKS and kept_bytes + len(content) <= _KEEP_BUDGET:
                    kept[path] = content
                    kept_bytes += len(content)
                files[path] = _run(wanting, FileInput(path, content, mode, size))
            elif kind is HARDLINK:
                size, mode = meta.get(e.linkname, (0, e.mode))
                wanting = wanted(e.path, size, mode)
                if not wanting:
                    continue
                data = kept.get(e.linkname)
                if data is not None:
                    files[e.path] = _run(wanting, FileInput(e.path, data, mode, size))
                else:
                    self.pending[e.path] = (e.linkname, size, mode, wanting)
            elif kind is EntryKind.WHITEOUT:
                self.whiteouts.append(e.path)
            elif kind is EntryKind.OPAQUE:
                self.opaque.append(e.path)
            elif kind in _NOT_FILES and wanted(e.path, 0, 0):
                # A wanted name that is not a file here hides a lower layer's file of that name.
                self.replaced.append(e.path)
                files.pop(e.path, None)

    def _read(self, e: Entry, wanting: list[Analyzer]) -> bytes | None:
        fits = [a for a in wanting if e.size <= a.max_bytes]
        for a in wanting:
            if e.size > a.max_bytes:
                self.warnings.append(
                    f"{self.name}: {e.path} skipped by {a.name}: "
                    f"{e.size} bytes exceeds its {a.max_bytes} limit"
                )
        if not fits or e.read is None:
            return None
        try:
            data = e.read(e.size)
        except OSError as exc:  # dir: sources: unreadable or swapped for a link
            self.warnings.append(f"{self.name}: cannot read {e.path}: {exc.strerror or exc}")
            return None
        wanting[:] = fits
        return data

    def resolve_pending(self, contents: dict[str, bytes]) -> None:
        """Analyse hardlinks whose targets were read in a second pass."""
        for link, (target, size, mode, wanting) in self.pending.items():
            data = contents.get(target)
            if data is None:
                self.warnings.append(f"{self.name}: hardlink {link} points at missing {target}")
                continue
            fits = [a for a in wanting if len(data) <= a.max_bytes]
            if fits:
                self.files[link] = _run(fits, FileInput(link, data, mode, size))
        self.pending.clear()

    def result(self, diff_id: str, extra_warnings: Sequence[str] = ()) -> LayerResult:
        return LayerResult(
            diff_id=diff_id,
            files=self.files,
            whiteouts=tuple(self.whiteouts),
            opaque_dirs=tuple(self.opaque),
            warnings=(*extra_warnings, *self.warnings),
            replaced=tuple(self.replaced),
        )


def _layer_name(layer: Any) -> str:
    return f"layer {layer.info.index} ({(layer.info.digest or 'rootfs')[:19]})"


def _walk_tar(
    layer: Any, settings: Settings, task: Task | None, consume: Callable[[Iterable[Entry]], None]
) -> tuple[str, list[str]]:
    """Walk a layer blob once, feeding ``consume``; returns (diff_id, walker warnings)."""
    from garrison.layers.decompress import ChunkStream
    from garrison.layers.tar import TarWalker

    name = _layer_name(layer)
    progress = (lambda done, total: task.update(done, total or None)) if task is not None else None
    raw = layer.open_raw(progress)
    chunks: ChunkStream | None = None
    try:
        chunks = ChunkStream(raw, settings.max_layer_bytes, name, prefetch=_PREFETCH)
        walker = TarWalker(chunks, name)
        consume(walker)
        diff_id = walker.finish()
    finally:
        if chunks is not None:
            chunks.close()
        close = getattr(raw, "close", None)
        if close is not None:
            close()
    expected = layer.info.diff_id
    if expected and diff_id != expected:
        raise DigestMismatchError(
            f"{name}: uncompressed content is {diff_id}, but the config says {expected}"
        )
    return diff_id, walker.warnings


def _second_pass(layer: Any, settings: Settings, targets: set[str]) -> dict[str, bytes]:
    """Re-walk a layer to fetch hardlink targets nobody wanted under their first name (rare)."""
    found: dict[str, bytes] = {}

    def grab(entries: Iterable[Entry]) -> None:
        for e in entries:
            if e.kind is EntryKind.FILE and e.path in targets and e.read is not None:
                found[e.path] = e.read(e.size)

    _walk_tar(layer, settings, None, grab)
    return found


def scan_layer(
    layer: Any, analyzers: tuple[Analyzer, ...], settings: Settings, progress: Progress
) -> LayerResult:
    """Analyse one layer (a blob, or the directory of a ``dir:`` source) without any cache."""
    name = _layer_name(layer)
    acc = _LayerAccumulator(analyzers, name)
    if hasattr(layer, "root"):
        from garrison.layers.tree import walk_tree

        skip = _PSEUDO_FS if layer.root == "/" else frozenset()
        acc.consume(walk_tree(layer.root, acc.warnings, skip))
        return acc.result(layer.info.diff_id)
    task = progress.task(name, total=layer.info.size or None)
    try:
        diff_id, warns = _walk_tar(layer, settings, task, acc.consume)
        if acc.pending:
            targets = {t for t, _, _, _ in acc.pending.values()}
            acc.resolve_pending(_second_pass(layer, settings, targets))
    finally:
        task.done()
    return acc.result(diff_id, warns)


def scan_image(
    opened: OpenedImage, analyzers: Sequence[Analyzer], settings: Settings, progress: Progress
) -> Inventory:
    """Inventory of an opened image: cached layers are taken as they are, the others walked once."""
    analyzers = tuple(analyzers)
    names = [a.name for a in analyzers]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate analyzer names: {sorted(n for n in names if names.count(n) > 1)}")
    cache = LayerCache(settings.cache_dir, analyzers, enabled=not settings.no_cache)
    layers = list(opened.layers)
    results: list[LayerResult | None] = [
        cache.get(la.info.diff_id) if la.info.diff_id else None for la in layers
    ]
    todo = [i for i, r in enumerate(results) if r is None]
    if todo:
        todo.sort(key=lambda i: -(layers[i].info.size or 0))  # biggest first: better parallel packing

        def work(i: int) -> LayerResult:
            res = scan_layer(layers[i], analyzers, settings, progress)
            if layers[i].info.diff_id:
                cache.put(res)
            return res

        workers = max(1, min(settings.workers, len(todo)))
        if workers == 1:
            for i in todo:
                results[i] = work(i)
        else:
            from concurrent.futures import ThreadPoolExecutor  # lazy: most warm scans never need it

            with ThreadPoolExecutor(workers, thread_name_prefix="garrison-layer") as pool:
                futures: dict[int, Future[LayerResult]] = {i: pool.submit(work, i) for i in todo}
                try:
                    for i, fut in futures.items():
                        results[i] = fut.result()
                except BaseException:
                    for fut in futures.values():
                        fut.cancel()
                    raise
    done = [r for r in results if r is not None]
    return apply_layers(opened.artifact, done)


def scan_reference(reference: str, settings: Settings, progress: Progress) -> Inventory:
    """Open ``reference`` (any source syntax) and inventory it with the default analyzers."""
    from garrison.inventory.registry import default_analyzers
    from garrison.sources import open_source

    source = open_source(reference, settings)
    with source.open() as opened:
        mode = "dir" if opened.artifact.kind is SourceKind.DIR else "image"
        return scan_image(opened, default_analyzers(mode), settings, progress)
