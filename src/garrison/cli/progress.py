"""A rich progress display for terminals; nothing at all when standard error is not a TTY."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from garrison.progress import NO_PROGRESS, Progress, Task


class _RichTask:
    def __init__(self, bar: Any, task_id: Any) -> None:
        self._bar, self._id = bar, task_id

    def advance(self, amount: int) -> None:
        self._bar.update(self._id, advance=amount)

    def update(self, completed: int, total: int | None = None) -> None:
        if total is not None:
            self._bar.update(self._id, completed=completed, total=total)
        else:
            self._bar.update(self._id, completed=completed)

    def done(self) -> None:
        self._bar.update(self._id, visible=False)


def _amount_columns() -> tuple[Any, Any]:
    """Amount and speed: bytes as a download (``12.3/45.6 MB``, ``40 MB/s``), anything else as
    ``n/total unit`` and ``n unit/s``."""
    from rich.progress import DownloadColumn, ProgressColumn, TransferSpeedColumn
    from rich.text import Text

    class AmountColumn(ProgressColumn):
        def __init__(self) -> None:
            super().__init__()
            self._bytes = DownloadColumn()

        def render(self, task: Any) -> Text:
            unit = task.fields.get("unit", "B")
            if unit == "B":
                return self._bytes.render(task)
            total = f"/{int(task.total)}" if task.total is not None else ""
            return Text(f"{int(task.completed)}{total} {unit}", style="progress.download")

    class SpeedColumn(ProgressColumn):
        def __init__(self) -> None:
            super().__init__()
            self._bytes = TransferSpeedColumn()

        def render(self, task: Any) -> Text:
            unit = task.fields.get("unit", "B")
            if unit == "B":
                return self._bytes.render(task)
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} {unit}/s" if speed else "?", style="progress.data.speed")

    return AmountColumn(), SpeedColumn()


class RichProgress:
    """Progress bars on standard error; used as a context manager around one command."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            *_amount_columns(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )

    def task(self, description: str, total: int | None = None, unit: str = "B") -> Task:
        return _RichTask(self._bar, self._bar.add_task(description, total=total, unit=unit))

    def note(self, message: str) -> None:
        self._bar.console.print(message, style="dim")

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._bar.stop()


class _Quiet:
    def __enter__(self) -> Progress:
        return NO_PROGRESS

    def __exit__(self, *exc: object) -> None:
        pass


def progress_for(quiet: bool) -> Any:
    """A context manager yielding a Progress: bars on a terminal, silence when piped or ``--quiet``."""
    if quiet or not sys.stderr.isatty():
        return _Quiet()
    return RichProgress()
