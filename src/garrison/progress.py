"""Progress reporting seam. The core reports through a :class:`Progress`; the CLI supplies a rich
implementation on terminals and :data:`NO_PROGRESS` when piped."""

from __future__ import annotations

from typing import Protocol


class Task(Protocol):
    def advance(self, amount: int) -> None: ...

    def update(self, completed: int, total: int | None = None) -> None: ...

    def done(self) -> None: ...


class Progress(Protocol):
    def task(self, description: str, total: int | None = None, unit: str = "B") -> Task:
        """Start a task (a layer download, a database build…); ``total`` counts ``unit``: bytes
        (``"B"``, shown as MB and MB/s) or items such as ``"records"``."""
        ...

    def note(self, message: str) -> None:
        """A one-line status message (warnings go to the result, not here)."""
        ...


class _NullTask:
    def advance(self, amount: int) -> None:
        pass

    def update(self, completed: int, total: int | None = None) -> None:
        pass

    def done(self) -> None:
        pass


class _NullProgress:
    def task(self, description: str, total: int | None = None, unit: str = "B") -> Task:
        return _NullTask()

    def note(self, message: str) -> None:
        pass


NO_PROGRESS: Progress = _NullProgress()
