"""``dir:ROOTFS``: a directory tree scanned in place as a single layer."""

from __future__ import annotations

import os
from dataclasses import dataclass

from garrison.config import Settings
from garrison.errors import NotFoundError
from garrison.model import Artifact, LayerInfo, SourceKind
from garrison.sources.base import OpenedImage, ProgressFn


@dataclass
class TreeLayerImpl:
    """The one layer of a ``dir:`` source; it has no digest, so it is never cached."""

    info: LayerInfo
    root: str


@dataclass
class RootfsSource:
    path: str
    settings: Settings
    name: str = ""

    def open(self, progress: ProgressFn | None = None) -> OpenedImage:
        what = self.name or f"dir:{self.path}"
        if not os.path.isdir(self.path):
            if os.path.exists(self.path):
                archive = self.path.endswith((".tar", ".tar.gz", ".tgz"))
                hint = f" (for a docker save archive use docker-archive:{self.path})" if archive else ""
                raise NotFoundError(f"{what}: is a file, not a directory; dir: scans a directory{hint}")
            raise NotFoundError(f"{what}: no such directory")
        root = os.path.realpath(self.path)
        layer = TreeLayerImpl(LayerInfo(index=0, digest="", diff_id=""), root)
        artifact = Artifact(name=what, kind=SourceKind.DIR, layers=(layer.info,))
        return OpenedImage(artifact=artifact, layers=[layer])
