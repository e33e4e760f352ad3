"""The ``k8s_audit`` source for files and stdin: JSON lines, one audit ``Event`` per line (an
``EventList`` per line is accepted too), as kube-apiserver's log backend writes them.

Bad input never stops a read: a line that is not JSON or not an audit event is counted as *malformed* and
skipped; a line longer than the limit is counted as *oversized* and skipped without being decoded.
:class:`ReadStats` says how many of each, and the first few reasons with their line numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from garrison.runtime.k8saudit import AuditEvent, NotAnAuditEvent, parse_event, parse_single

#: Longest line (one event) read by default: kube-apiserver's own default limit for a logged event is
#: far below this; RequestResponse events of large objects stay well under it.
DEFAULT_MAX_EVENT_BYTES: Final = 4 * 1024 * 1024
#: How many malformed or oversized lines are described in :attr:`ReadStats.problems`.
_PROBLEMS_KEPT: Final = 20


@dataclass(slots=True)
class ReadStats:
    """What a read saw. ``lines = events_lines + malformed + oversized + blank``."""

    lines: int = 0
    blank: int = 0
    #: Audit events read (an ``EventList`` line counts each of its items).
    events: int = 0
    malformed: int = 0
    oversized: int = 0
    #: ``line N: reason`` for the first problems.
    problems: list[str] = field(default_factory=list)

    def problem(self, line: int, reason: str) -> None:
        if len(self.problems) < _PROBLEMS_KEPT:
            self.problems.append(f"line {line}: {reason}")

    def summary(self) -> str:
        """One line for a warning, "" when nothing was wrong."""
        parts = []
        if self.malformed:
            parts.append(f"{self.malformed} malformed line(s) skipped")
        if self.oversized:
            parts.append(f"{self.oversized} oversized line(s) skipped")
        if not parts:
            return ""
        first = f" (first: {self.problems[0]})" if self.problems else ""
        return ", ".join(parts) + first


def _lines(stream: BinaryIO, max_bytes: int) -> Iterator[bytes | None]:
    """Lines without their newline; ``None`` for a line longer than ``max_bytes`` (read past, not kept)."""
    while True:
        line = stream.readline(max_bytes + 1)
        if not line:
            return
        if len(line) > max_bytes and not line.endswith(b"\n"):
            # Skip the rest of the oversized line in bounded pieces.
            while True:
                rest = stream.readline(1024 * 1024)
                if not rest or rest.endswith(b"\n"):
                    break
            yield None
            continue
        yield line


def read_events(
    stream: BinaryIO | Iterable[bytes],
    stats: ReadStats,
    *,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    cluster: str = "",
) -> Iterator[AuditEvent]:
    """The audit events of a JSON-lines stream, counting into ``stats`` as it goes."""
    lines: Iterable[bytes | None]
    lines = _lines(stream, max_event_bytes) if hasattr(stream, "readline") else stream  # type: ignore[arg-type]
    limit = max_event_bytes + 1
    n = events = 0
    try:
        for raw in lines:
            n += 1
            if raw is None or len(raw) > limit:
                stats.oversized += 1
                stats.problem(stats.lines + n, f"longer than {max_event_bytes} bytes")
                continue
            event = parse_single(raw, cluster)
            if event is not None:
                # The common case, one Event on the line, without a list.
                events += 1
                yield event
                continue
            line = raw.strip()
            if not line:
                stats.blank += 1
                continue
            try:
                parsed = parse_event(line, cluster=cluster)
            except NotAnAuditEvent as e:
                stats.malformed += 1
                stats.problem(stats.lines + n, str(e))
                continue
            events += len(parsed)
            yield from parsed
    finally:
        stats.lines += n
        stats.events += events
