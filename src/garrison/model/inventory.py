"""The result of the first half of the pipeline: what is installed in an artifact."""

from __future__ import annotations

from dataclasses import dataclass

from garrison.model.artifact import Artifact
from garrison.model.package import OSInfo, Package


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything the inventory stage found. Warnings are recoverable problems (a skipped file…)."""

    artifact: Artifact
    os: OSInfo | None
    packages: tuple[Package, ...]
    warnings: tuple[str, ...] = ()
