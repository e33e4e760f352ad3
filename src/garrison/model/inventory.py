"""The result of the first half of the pipeline: what is installed in an artifact."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from garrison.model.artifact import Artifact
from garrison.model.package import OSInfo, Package

if TYPE_CHECKING:
    from garrison.model.secret import Secret


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything the walk over an artifact found: what is installed and, when the secret scanner ran,
    the secrets in its files (both come from the one pass over each layer)."""

    #: The scanned image or tree.
    artifact: Artifact
    #: The detected operating system (None for ``dir:`` trees and images without a release file).
    os: OSInfo | None
    #: Installed (or, in ``dir:`` mode, declared) packages, de-duplicated, with the layer that added each.
    packages: tuple[Package, ...]
    #: Recoverable problems (a skipped file, an unparsable entry), one line each.
    warnings: tuple[str, ...] = ()
    #: Secrets found in the files of every layer, deleted ones included (empty unless the secret scanner ran).
    secrets: tuple[Secret, ...] = ()
