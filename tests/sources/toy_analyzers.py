"""Two tiny, real analyzers for pipeline tests, independent of the production analyzers.

``ToyOS`` reads os-release files. ``ToyPkgs`` reads ``var/lib/toy/status`` (an OS package database:
``name version`` lines, then ``files:`` lines naming system files) and ``*.pyinfo`` files (one language
package each).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from garrison.inventory.base import AnalysisResult, FileInput
from garrison.model import OSInfo, Package, PackageType


@dataclass(frozen=True)
class ToyOS:
    name: str = "toy-os"
    version: int = 1
    max_bytes: int = 64 * 1024

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path in ("etc/os-release", "usr/lib/os-release")

    def analyze(self, file: FileInput) -> AnalysisResult:
        kv = dict(line.split("=", 1) for line in file.content.decode().splitlines() if "=" in line)
        return AnalysisResult(
            os=OSInfo(family=kv.get("ID", "").strip('"'), version_id=kv.get("VERSION_ID", "").strip('"'))
        )


@dataclass
class ToyPkgs:
    name: str = "toy-pkgs"
    version: int = 1
    max_bytes: int = 1024 * 1024
    #: Paths analysed, to prove what was (not) read.
    seen: list[str] = field(default_factory=list)

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path == "var/lib/toy/status" or path.endswith(".pyinfo")

    def analyze(self, file: FileInput) -> AnalysisResult:
        self.seen.append(file.path)
        text = file.content.decode()
        if file.path.endswith(".pyinfo"):
            name, version = text.split()[:2]
            return AnalysisResult(packages=(Package(name, version, PackageType.PYTHON, locations=(file.path,)),))
        pkgs, files, in_files = [], [], False
        for line in text.splitlines():
            if line == "files:":
                in_files = True
            elif in_files:
                files.append(line)
            elif line.strip():
                n, v = line.split()
                pkgs.append(Package(n, v, PackageType.DEB, locations=(file.path,)))
        return AnalysisResult(packages=tuple(pkgs), system_files=tuple(files))

    __hash__ = object.__hash__
