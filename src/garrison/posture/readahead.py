"""Read-ahead: an assessment's manifest files parsed by two processes, the second one starting while
the first imports the engine and loads the controls.

``garrison posture DIR`` on 1,000 objects spent ~50 ms importing the engine, the findings model and
the renderers, then ~45 ms parsing YAML, and neither needs the other. On a machine with a second CPU,
right after reading its arguments the CLI lists the files of the local sources (files, folders,
``snapshot:FILE``: :func:`~garrison.posture.inputs.local_files`) and forks (:func:`start`). The child
reads the first files with :func:`~garrison.posture.inputs.load_file` and writes what it read,
marshalled (plain dicts, lists, strings and numbers: what YAML and JSON parse to), into an anonymous
memory file; the parent, once it has its engine, reads the last files itself, then takes the child's
(:meth:`ReadAhead.take`). The split is by bytes, so that both finish together: the parent starts later
by about its import time, which is worth ~:data:`IMPORT_BYTES` of parsing; a small assessment is read
by the child alone, a large one about half and half.

The result is the serial one: each file is read by the same function, the results are joined in the
serial order, and whatever the child did not deliver (a file whose reading raised, a value marshal
cannot hold, a child that died) the parent reads itself, in order, so errors and warnings are the ones
a serial run gives. Only the input is read here, and nothing outlives the run: the memory file is the
two processes' own, the child exits when it has written, and :meth:`ReadAhead.close` (always called)
kills and reaps it when the parent stops first (an error, Ctrl-C). Without a second CPU, ``fork`` or
``memfd_create`` the sources are read in line, as before.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from garrison.posture.inputs import Loaded

#: What the parent's imports and control loading are worth in bytes of YAML parsing (~45 ms at ~180 ns
#: a byte, measured on the 2-core build machine): the child's head start.
IMPORT_BYTES = 250_000
#: Below this much input a second process costs more than it saves.
MIN_BYTES = 32_000

#: One file's result as the child writes it: (documents, files, skipped, warnings, resources as
#: (obj, source, line, document, cluster, host)), or None for "read it yourself".
_Sent = tuple[int, int, int, list[str], list[tuple[Any, str, int, int, str, str]]] | None


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may run on (taskset, cgroup cpusets)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _child_share(sizes: Sequence[int], head_start: int) -> int:
    """How many of the files (from the first) the child reads: both should finish together."""
    total = sum(sizes)
    budget = min(total, (head_start + total) / 2)
    n = 0
    done = 0
    for size in sizes:
        if done >= budget:
            break
        done += size
        n += 1
    return n


class ReadAhead:
    """The child reading the first files; :meth:`take` each source's result, :meth:`close` at the end."""

    def __init__(
        self,
        pid: int,
        pipe: int,
        memfd: int,
        specs: tuple[str, ...],
        files: list[list[tuple[Path, str]] | None],
        child_files: int,
    ) -> None:
        self._pid = pid
        self._pipe = pipe
        self._memfd = memfd
        self._specs = specs
        self._files = files
        #: How many of the files (from the first, across the sources) the child reads.
        self._child_n = child_files
        self._results: list[tuple[str, Loaded | None]] | None = None

    def take(self, spec: str) -> Loaded | None:
        """What was read for (the next occurrence of) ``spec``, or None: read it yourself."""
        if self._results is None:
            self._results = self._read_all()
        for i, (s, loaded) in enumerate(self._results):
            if s == spec:
                del self._results[i]
                return loaded
        return None

    def _read_all(self) -> list[tuple[str, Loaded | None]]:
        from garrison.posture.inputs import Loaded, load_file

        if self._pipe < 0:  # closed before anything was taken
            return []
        flat = [(p, shown) for files in self._files if files is not None for p, shown in files]
        n = self._child_n
        try:
            # The parent's share first, while the child reads its own; an error is kept for its turn,
            # so that the first file to fail in the serial order is the one that is reported.
            mine: list[Loaded | Exception] = []
            for p, shown in flat[n:]:
                try:
                    mine.append(load_file(p, shown))
                except Exception as exc:  # raised again below, in order
                    mine.append(exc)
            sent = self._collect(n)
        finally:
            self.close()
        per_file: list[Loaded | Exception | None] = [*(_loaded(s) for s in sent), *mine]
        out: list[tuple[str, Loaded | None]] = []
        i = 0
        for spec, files in zip(self._specs, self._files, strict=True):
            if files is None:
                out.append((spec, None))
                continue
            loaded = Loaded()
            for p, shown in files:
                got = per_file[i]
                i += 1
                if got is None:
                    got = load_file(p, shown)
                elif isinstance(got, Exception):
                    raise got
                loaded.extend(got)
            out.append((spec, loaded))
        return out

    def _collect(self, n: int) -> list[_Sent]:
        """The child's results for its ``n`` files (None for each it did not deliver)."""
        nothing: list[_Sent] = [None] * n
        head = b""
        while len(head) < 8:  # the child writes the size of what it wrote when it is done
            chunk = os.read(self._pipe, 8 - len(head))
            if not chunk:
                return nothing
            head += chunk
        if self._reap() != 0:
            return nothing
        size = int.from_bytes(head, "little")
        import marshal

        try:
            data = os.pread(self._memfd, size, 0)
            # Written by our own child a moment ago, into a memory file only the two of us hold.
            got = marshal.loads(data)  # noqa: S302
        except (OSError, ValueError, EOFError, TypeError):
            return nothing
        return got if isinstance(got, list) and len(got) == n else nothing

    def _reap(self) -> int:
        pid, self._pid = self._pid, 0
        if not pid:
            return -1
        _, status = os.waitpid(pid, 0)
        return status

    def close(self) -> None:
        """Stop the child (if it still runs) and release it; safe to call more than once."""
        for name in ("_pipe", "_memfd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)
        if self._pid:
            import contextlib
            import signal

            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            self._reap()


def _loaded(sent: _Sent) -> Loaded | None:
    if sent is None:
        return None
    from garrison.posture.inputs import Loaded
    from garrison.posture.resources import Resource

    documents, files, skipped, warnings, resources = sent
    return Loaded(
        resources=[
            Resource(obj=obj, source=source, line=line, document=document, cluster=cluster, host=host)
            for obj, source, line, document, cluster, host in resources
        ],
        warnings=list(warnings),
        documents=documents,
        files=files,
        skipped=skipped,
    )


def start(specs: Sequence[str], *, min_bytes: int = MIN_BYTES, head_start: int = IMPORT_BYTES) -> ReadAhead | None:
    """Fork the reader for the local sources among ``specs`` (None when it would not pay or cannot run);
    ``head_start``: the bytes of parsing the child does before the parent starts on its share."""
    if not hasattr(os, "fork") or not hasattr(os, "memfd_create") or _cpus() < 2:
        return None
    import sys

    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return None  # a fork copies one thread: a lock another one holds would never be released
    from garrison.posture.inputs import local_files

    specs = tuple(specs)
    files = [local_files(s) for s in specs]
    flat = [p for fs in files if fs is not None for p, _ in fs]
    try:
        sizes = [os.stat(p).st_size for p in flat]
    except OSError:
        return None  # a file that went away: the serial path reports it
    if not flat or sum(sizes) < min_bytes:
        return None
    n = _child_share(sizes, head_start)
    try:
        memfd = os.memfd_create("garrison-readahead", os.MFD_CLOEXEC)
    except OSError:
        return None
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        for fd in (r, w, memfd):
            os.close(fd)
        return None
    if pid == 0:  # the child: never returns
        os.close(r)
        _child([fs for fs in files if fs is not None], n, w, memfd)
    os.close(w)
    return ReadAhead(pid, r, memfd, specs, files, n)


def _child(files: list[list[tuple[Path, str]]], n: int, w: int, memfd: int) -> None:
    code = 1
    try:
        import signal

        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends the child quietly; the parent reports it
        import gc

        gc.disable()  # the parsed documents hold no cycles (as in the parent's assessment)
        import marshal

        from garrison.posture.inputs import load_file

        sent: list[_Sent] = []
        for p, shown in [f for fs in files for f in fs][:n]:
            try:
                got = load_file(p, shown)
            except Exception:  # the parent reads it again and reports the error as a serial run does
                sent.append(None)
                continue
            resources = [(x.obj, x.source, x.line, x.document, x.cluster, x.host) for x in got.resources]
            sent.append((got.documents, got.files, got.skipped, got.warnings, resources))
        try:
            blob = marshal.dumps(sent)
        except ValueError:  # a value marshal cannot hold: the parent reads everything itself
            blob = marshal.dumps([None] * n)
        view = memoryview(blob)
        while view:
            view = view[os.write(memfd, view) :]
        os.write(w, len(blob).to_bytes(8, "little"))
        code = 0
    except BaseException:  # noqa: S110 - nothing to report from here: the parent reads the files itself
        pass
    finally:
        os._exit(code)
