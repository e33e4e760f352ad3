"""The inventory scan: open a source, analyse each layer once (or take it from the cache), merge.

Each layer is walked exactly once. For every file the analyzers are asked ``wants(path, size, mode)``;
wanted files are read once, up to the largest ``max_bytes`` among the analyzers that want them, and
handed to each of those analyzers. A large file wanted only by analyzers that read through
``FileInput.read_at`` (the binary analyzers) is not read into memory: its first chunk is checked
against the formats they read, and then it is read in place (``dir:``) or spooled to a temporary
file (see :mod:`garrison.inventory.reader`). Layers are independent, so they run in parallel threads (ISA-L and
hashlib release the GIL while they work) and are cached by diff_id.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from garrison.config import Settings
from garrison.errors import DigestMismatchError
from garrison.inventory.apply import LayerResult, apply_layers
from garrison.inventory.base import AnalysisResult, Analyzer, FileInput
from garrison.inventory.cache import LayerCache
from garrison.inventory.reader import CHUNK, SPOOL_ABOVE, FdReader, open_file, spool
from garrison.layers.entry import Entry, EntryKind
from garrison.model import Inventory, OSInfo, Package, SourceKind
from garrison.model.secret import Secret
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
        results = [r for r in results if r.packages or r.os or r.system_files or r.warnings or r.secrets]
        if not results:
            return AnalysisResult()
    if len(results) == 1:
        return results[0]
    pkgs: list[Package] = []
    os_info: OSInfo | None = None
    system: list[str] = []
    warns: list[str] = []
    secrets: list[Secret] = []
    for r in results:
        pkgs.extend(r.packages)
        os_info = os_info or r.os
        system.extend(r.system_files)
        warns.extend(r.warnings)
        secrets.extend(r.secrets)
    return AnalysisResult(tuple(pkgs), os_info, tuple(system), tuple(warns), tuple(secrets))


def _reads_at(analyzer: Analyzer) -> bool:
    return getattr(analyzer, "random_access", False) is True


def _safe(analyzer: Analyzer, file: FileInput) -> AnalysisResult:
    try:
        return analyzer.analyze(file)
    except Exception as exc:  # an analyzer bug must not lose the whole scan
        return AnalysisResult(warnings=(f"{file.path}: analyzer {analyzer.name} failed: {exc!r}",))


_EXEC_BITS = 0o111


class _Gate:
    """One analyzer's dispatch hints (see :mod:`garrison.inventory.base`); ``None`` = not declared.

    A plain class: it is created once per layer walk, and a dataclass would cost more to define (at
    import, on every start) than it saves."""

    __slots__ = (
        "analyzer",
        "basenames",
        "by_path",
        "exec_min",
        "index",
        "infixes",
        "paths",
        "prefixes",
        "suffixes",
    )

    def __init__(
        self,
        index: int,
        analyzer: Analyzer,
        paths: frozenset[str] | None,
        prefixes: tuple[str, ...] | None,
        basenames: frozenset[str] | None,
        suffixes: tuple[str, ...] | None,
        exec_min: int | None,
        by_path: bool,
        infixes: tuple[str, ...] | None = None,
    ) -> None:
        self.index = index
        self.analyzer = analyzer
        self.paths = paths
        self.prefixes = prefixes
        self.basenames = basenames
        self.suffixes = suffixes
        self.infixes = infixes
        #: ``executables_only``: the smallest size asked about; None when not declared.
        self.exec_min = exec_min
        #: Any path hint declared (``paths``, ``path_prefixes`` or ``basenames``/``suffixes``).
        self.by_path = by_path

    def open_for(self, path: str, base: str, size: int, mode: int) -> bool:
        if self.by_path and not (
            (self.paths is not None and path in self.paths)
            or (self.prefixes is not None and path.startswith(self.prefixes))
            or (self.basenames is not None and (base in self.basenames or base.endswith(self.suffixes or ())))
            or (self.infixes is not None and any(x in path for x in self.infixes))
        ):
            return False
        return self.exec_min is None or (bool(mode & _EXEC_BITS) and size >= self.exec_min)


def _gate(i: int, a: Analyzer) -> _Gate:
    paths = getattr(a, "paths", None)
    prefixes = getattr(a, "path_prefixes", None)
    bases = getattr(a, "basenames", None)
    sfx = getattr(a, "suffixes", None)
    infixes = getattr(a, "path_infixes", None)
    exe = getattr(a, "executables_only", False)
    if not isinstance(bases, frozenset | set) or not isinstance(sfx, tuple):
        bases = sfx = None
    paths = frozenset(paths) if isinstance(paths, frozenset | set) else None
    if not isinstance(prefixes, tuple) or not all(isinstance(x, str) for x in prefixes):
        prefixes = None
    if not isinstance(infixes, tuple) or not all(isinstance(x, str) for x in infixes):
        infixes = None
    return _Gate(
        index=i,
        analyzer=a,
        paths=paths,
        prefixes=prefixes,
        basenames=frozenset(bases) if bases is not None else None,
        suffixes=sfx,
        exec_min=int(getattr(a, "min_size", 0) or 0) if exe is True else None,
        by_path=paths is not None or prefixes is not None or bases is not None or infixes is not None,
        infixes=infixes,
    )


class Dispatch:
    """One precomputed ``wants`` for all analyzers, called once per file.

    Analyzers declare cheap dispatch hints (exact ``paths``, ``path_prefixes``, ``basenames``/``suffixes``,
    ``executables_only``; see :mod:`garrison.inventory.base`). A file that matches no analyzer's hints
    is rejected with one set lookup, one ``startswith`` and one ``endswith`` over tuples and a mode
    test, without calling any ``wants``; otherwise only the analyzers whose hints match are asked.
    Analyzers without hints are asked every time. The answer keeps the analyzers' declared order.
    """

    def __init__(self, analyzers: Sequence[Analyzer]) -> None:
        from garrison.inventory.registry import loaded

        # Registry entries are imported here, once the layer's reader threads are already inflating
        # and hashing, and the per-file calls then go straight to the real analyzers.
        self.analyzers = loaded(analyzers)
        self._gates = tuple(_gate(i, a) for i, a in enumerate(self.analyzers))
        self._always = any(not g.by_path and g.exec_min is None for g in self._gates)
        #: Analyzers (by id) that read through ``FileInput.read_at`` only, with the leading bytes they
        #: accept (empty: any); see :mod:`garrison.inventory.reader`.
        self.random: dict[int, tuple[bytes, ...]] = {}
        for a in self.analyzers:
            if getattr(a, "random_access", False) is True:
                magics = getattr(a, "magics", ())
                self.random[id(a)] = tuple(magics) if isinstance(magics, tuple) else ()
        exact: set[str] = set()
        prefixes: list[str] = []
        tails: list[str] = []
        infixes: list[str] = []
        exec_min: int | None = None
        for g in self._gates:
            if g.by_path:
                exact |= g.paths or frozenset()
                exact |= g.basenames or frozenset()  # a base name at the image root is the whole path
                prefixes += g.prefixes or ()
                # base == b  ⇒  path ends with "/" + b (or is b);  base.endswith(s)  ⇒  path.endswith(s)
                tails += ["/" + b for b in sorted(g.basenames or ())]
                tails += g.suffixes or ()
                infixes += g.infixes or ()
            elif g.exec_min is not None:
                exec_min = g.exec_min if exec_min is None else min(exec_min, g.exec_min)
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)
        self._tails = tuple(tails)
        self._infixes = tuple(infixes)
        # No executable-only analyzer: a size no file reaches, so the mode test never passes.
        self._exec_min = exec_min if exec_min is not None else 1 << 62

    def reads_randomly(self, analyzers: Sequence[Analyzer]) -> bool:
        """Whether every one of ``analyzers`` reads through ``read_at`` only."""
        random = self.random
        return all(id(a) in random for a in analyzers)

    def accepts_head(self, analyzers: Sequence[Analyzer], head: bytes) -> bool:
        """Whether some analyzer may want a file starting with ``head`` (random-access ones only)."""
        for a in analyzers:
            magics = self.random.get(id(a))
            if not magics or head.startswith(magics):
                return True
        return False

    def __call__(self, path: str, size: int, mode: int) -> list[Analyzer]:
        if (
            self._always
            or path in self._exact
            or path.startswith(self._prefixes)
            or path.endswith(self._tails)
            or (mode & _EXEC_BITS and size >= self._exec_min)
            or (self._infixes and any(x in path for x in self._infixes))
        ):
            base = path[path.rfind("/") + 1 :]
            return [
                g.analyzer
                for g in self._gates
                if g.open_for(path, base, size, mode) and g.analyzer.wants(path, size, mode)
            ]
        return []


@dataclass
class _LayerAccumulator:
    """Consumes one layer's entries and remembers what the analyzers said about them."""

    analyzers: tuple[Analyzer, ...]
    name: str
    #: The directory of a ``dir:`` layer: large files are read in place rather than spooled.
    root: str | None = None
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
                if size > SPOOL_ABOVE and wanted.reads_randomly(wanting):
                    files[path] = self._analyze_randomly(e, wanting, wanted)
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

    def _fits(self, e: Entry, wanting: list[Analyzer]) -> list[Analyzer]:
        fits = [a for a in wanting if e.size <= a.max_bytes]
        for a in wanting:
            if e.size > a.max_bytes:
                self.warnings.append(
                    f"{self.name}: {e.path} skipped by {a.name}: {e.size} bytes exceeds its {a.max_bytes} limit"
                )
        return fits

    def _analyze_randomly(self, e: Entry, wanting: list[Analyzer], wanted: Dispatch) -> AnalysisResult:
        """A large file for analyzers that read through ``read_at``: read in place (``dir:``) or
        spooled to a temporary file, never held in memory."""
        fits = self._fits(e, wanting)
        if not fits or e.read is None:
            return AnalysisResult()
        reader: FdReader | None = None
        try:
            if self.root is not None:
                reader = open_file(os.path.join(self.root, e.path))
                head = reader.read_at(0, 64)
            else:
                head = e.read(CHUNK)
            if not wanted.accepts_head(fits, head):
                return AnalysisResult()  # not an executable format anyone reads: the rest is skipped
            if reader is None:
                reader = spool(e.read, e.size - len(head), head)
            return _run(fits, FileInput(e.path, b"", e.mode, e.size, reader))
        except OSError as exc:
            self.warnings.append(f"{self.name}: cannot read {e.path}: {exc.strerror or exc}")
            return AnalysisResult()
        finally:
            if reader is not None:
                reader.close()

    def _read(self, e: Entry, wanting: list[Analyzer]) -> bytes | None:
        fits = self._fits(e, wanting)
        if not fits or e.read is None:
            return None
        try:
            data = e.read(e.size)
        except OSError as exc:  # dir: sources: unreadable or swapped for a link
            self.warnings.append(f"{self.name}: cannot read {e.path}: {exc.strerror or exc}")
            return None
        wanting[:] = fits
        return data

    def resolve_pending(self, contents: dict[str, bytes | FdReader]) -> None:
        """Analyse hardlinks whose targets were read (or, when large, spooled) in a second pass."""
        for link, (target, size, mode, wanting) in self.pending.items():
            data = contents.get(target)
            if data is None:
                self.warnings.append(f"{self.name}: hardlink {link} points at missing {target}")
                continue
            fits = [a for a in wanting if size <= a.max_bytes]
            if not fits:
                continue
            if isinstance(data, bytes):
                file = FileInput(link, data, mode, size)
            elif all(_reads_at(a) for a in fits):
                file = FileInput(link, b"", mode, size, data)
            else:  # a large target some analyzer wants whole (no such analyzer today)
                file = FileInput(link, data.read_at(0, size), mode, size)
            self.files[link] = _run(fits, file)
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
        raise DigestMismatchError(f"{name}: uncompressed content is {diff_id}, but the config says {expected}")
    return diff_id, walker.warnings


def _second_pass(layer: Any, settings: Settings, targets: set[str]) -> dict[str, bytes | FdReader]:
    """Re-walk a layer to fetch hardlink targets whose content was not kept (rare); large ones are
    spooled to temporary files, which the caller closes."""
    found: dict[str, bytes | FdReader] = {}

    def grab(entries: Iterable[Entry]) -> None:
        for e in entries:
            if e.kind is EntryKind.FILE and e.path in targets and e.read is not None:
                found[e.path] = spool(e.read, e.size) if e.size > SPOOL_ABOVE else e.read(e.size)

    _walk_tar(layer, settings, None, grab)
    return found


def scan_layer(layer: Any, analyzers: tuple[Analyzer, ...], settings: Settings, progress: Progress) -> LayerResult:
    """Analyse one layer (a blob, or the directory of a ``dir:`` source) without any cache."""
    name = _layer_name(layer)
    if hasattr(layer, "root"):
        from garrison.layers.tree import walk_tree

        acc = _LayerAccumulator(analyzers, name, root=layer.root)
        skip = _PSEUDO_FS if layer.root == "/" else frozenset()
        acc.consume(walk_tree(layer.root, acc.warnings, skip))
        return acc.result(layer.info.diff_id)
    acc = _LayerAccumulator(analyzers, name)
    task = progress.task(name, total=layer.info.size or None)
    try:
        diff_id, warns = _walk_tar(layer, settings, task, acc.consume)
        if acc.pending:
            targets = {t for t, _, _, _ in acc.pending.values()}
            contents = _second_pass(layer, settings, targets)
            try:
                acc.resolve_pending(contents)
            finally:
                for data in contents.values():
                    if not isinstance(data, bytes):
                        data.close()
    finally:
        task.done()
    return acc.result(diff_id, warns)


def scan_image(opened: OpenedImage, analyzers: Sequence[Analyzer], settings: Settings, progress: Progress) -> Inventory:
    """Inventory of an opened image: cached layers are taken as they are, the others walked once."""
    analyzers = tuple(analyzers)
    names = [a.name for a in analyzers]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate analyzer names: {sorted(n for n in names if names.count(n) > 1)}")
    cache = LayerCache(settings.cache_dir, analyzers, enabled=not settings.no_cache)
    layers = list(opened.layers)
    results: list[LayerResult | None] = [cache.get(la.info.diff_id) if la.info.diff_id else None for la in layers]
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


def scan_reference(
    reference: str,
    settings: Settings,
    progress: Progress,
    *,
    packages: bool = True,
    extra: Sequence[Analyzer] = (),
) -> Inventory:
    """Open ``reference`` (any source syntax) and walk it once with the package analyzers for its mode
    (unless ``packages`` is false) plus ``extra`` ones (the secret analyzer): each layer is read once
    whatever the scanners asked for."""
    from garrison.inventory.registry import declared_analyzers
    from garrison.sources import open_source

    source = open_source(reference, settings)
    with source.open() as opened:
        mode = "dir" if opened.artifact.kind is SourceKind.DIR else "image"
        analyzers = (declared_analyzers(mode) if packages else ()) + tuple(extra)
        return scan_image(opened, analyzers, settings, progress)
