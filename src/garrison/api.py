"""The documented Python API. The CLI is a thin layer over these functions.

>>> from garrison.api import inventory
>>> inv = inventory("oci:build/debian:12")          # doctest: +SKIP
>>> sorted(p.name for p in inv.packages)[:3]          # doctest: +SKIP
"""

from __future__ import annotations

from garrison.config import Settings
from garrison.model import Inventory
from garrison.progress import NO_PROGRESS, Progress


def inventory(reference: str, settings: Settings | None = None, progress: Progress = NO_PROGRESS) -> Inventory:
    """Open ``reference`` (``oci:DIR[:tag]``, ``docker-archive:FILE``, ``dir:PATH``, ``docker:IMAGE`` or a
    registry reference) and return what is installed in it."""
    from garrison.inventory.scan import scan_reference

    return scan_reference(reference, settings or Settings(), progress)
