"""Where a report goes (``-o PATH``), without ever replacing what stands at PATH.

- nothing or ``-``: standard output;
- a regular file (also through symlinks, to their final target): written to a temporary file beside the
  target and renamed over it, so a failed run never leaves half a report; an existing file keeps its
  permission bits (and, as root, its owner); a new one gets ``0666 & ~umask`` like any file a shell creates;
  a file with several hard links is written in place, so the links stay one file;
- a FIFO, a character device (``/dev/stdout``, a terminal, ``/dev/null``), a block device or a socket path
  it cannot replace: written into directly, never renamed over (renaming over ``/dev/null`` as root would
  turn the machine's ``/dev/null`` into a regular file);
- a directory: a usage error, before any work is done.

:func:`output_target` checks the path when the command starts; :func:`open_output` writes it at the end.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from garrison._files import create_beside
from garrison.errors import UsageError

Mode = Literal["stdout", "atomic", "direct"]

#: The file buffer of a report written to a file: reports are written in many small pieces (a JSON line
#: per finding), and 8 KiB writes cost ~2 ms of a 3 MB report (1,000 posture objects) against 1 MiB ones.
_BUFFER = 1 << 20


@dataclass(frozen=True)
class OutputTarget:
    """What ``-o`` names, resolved: how it will be written and the path that is really written."""

    mode: Mode
    #: The path as given.
    given: Path | None = None
    #: The path written (symlinks resolved); ``None`` for standard output.
    path: Path | None = None
    #: The permission bits to give the file (``None`` for direct writes and standard output).
    perms: int | None = None
    #: Owner to keep when replacing an existing file (uid, gid), or ``None``.
    owner: tuple[int, int] | None = None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def output_target(path: Path | str | None) -> OutputTarget:
    """Resolve ``-o PATH``; :class:`UsageError` for a directory or a path whose folder cannot exist."""
    if path is None or str(path) == "-":
        return OutputTarget("stdout")
    given = Path(path)
    # Follow symlinks to the file they finally name (a dangling one names a file to create).
    real = Path(os.path.realpath(given))
    try:
        st = os.stat(real)
    except FileNotFoundError:
        parent = real.parent
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"cannot write {given}: {parent} is not a directory") from None
        return OutputTarget("atomic", given, real, perms=0o666 & ~_umask())
    except OSError as exc:
        raise UsageError(f"cannot write {given}: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"cannot write {given}: it is a directory (give a file name, e.g. {given}/report.json)")
    if stat.S_ISSOCK(st.st_mode):
        raise UsageError(f"cannot write {given}: it is a socket")
    if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
        owner = (st.st_uid, st.st_gid) if os.geteuid() == 0 else None
        return OutputTarget("atomic", given, real, perms=stat.S_IMODE(st.st_mode), owner=owner)
    return OutputTarget("direct", given, real)


@contextlib.contextmanager
def open_output(target: OutputTarget) -> Iterator[IO[str]]:
    """A text stream for the report; on success it ends up at the target, on failure nothing changed
    (for atomic targets: direct ones may hold what was written before the failure). The path is looked
    at again first: what stands there may have changed during the scan."""
    if target.given is not None:
        target = output_target(target.given)
    if target.mode == "stdout" or target.path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    if target.mode == "direct":
        # Truncating is harmless on devices and FIFOs and right for a hard-linked regular file.
        with open(target.path, "w", encoding="utf-8", buffering=_BUFFER) as f:
            yield f
        return
    path = target.path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_beside(path)
    try:
        if target.owner is not None:
            with contextlib.suppress(OSError):
                os.fchown(fd, *target.owner)
        if target.perms is not None:
            os.fchmod(fd, target.perms)
        with os.fdopen(fd, "w", encoding="utf-8", buffering=_BUFFER) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
