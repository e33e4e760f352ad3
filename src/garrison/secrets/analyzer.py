"""The secret analyzer: the layer walk's view of the secret scanner.

It wants every text-sized file that no global allow rule skips (binaries are turned away by their suffix
before they are read, and by a NUL byte in their first 8 KiB after), plus dpkg's ``info/*.list`` file
lists, whose paths it reports as ``system_files`` so that the applier can drop secrets in files the OS
package manager installed even when the package analyzers are not running (``--scanners secret``).

Its ``version`` is derived from the rule set's digest: any change to the built-in rules, their version or
the user's rule file changes the per-layer cache key, so cached layers never hide new rules' findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from garrison.inventory.base import EMPTY, AnalysisResult, FileInput, MiB
from garrison.model.secret import Secret
from garrison.secrets.engine import SecretScanner
from garrison.secrets.rules import SecretRules, load_rules

#: Files larger than this are not read for secrets (Trivy warns above the same size and reads on).
DEFAULT_MAX_BYTES = 10 * MiB
#: Smaller files cannot hold a secret worth reporting (Trivy skips them too).
MIN_BYTES = 10
#: Bytes looked at for a NUL to tell a binary from text.
BINARY_PROBE = 8192
_DPKG_INFO = "var/lib/dpkg/info/"
#: Suffixes of files that are never text (archives, images, fonts, compiled code, media, databases).
BINARY_SUFFIXES = frozenset(
    [
        "7z",
        "a",
        "bin",
        "bmp",
        "bz2",
        "class",
        "dat",
        "db",
        "deb",
        "dll",
        "dylib",
        "eot",
        "exe",
        "gif",
        "gz",
        "gzip",
        "ico",
        "jar",
        "jpeg",
        "jpg",
        "ko",
        "lz4",
        "mo",
        "mp3",
        "mp4",
        "node",
        "o",
        "ogg",
        "otf",
        "pdf",
        "png",
        "pyc",
        "pyo",
        "rpm",
        "sqlite",
        "sqlite3",
        "so",
        "tar",
        "tgz",
        "ttf",
        "war",
        "wasm",
        "wav",
        "webp",
        "whl",
        "woff",
        "woff2",
        "xz",
        "zip",
        "zst",
    ]
)


def _suffix(path: str) -> str:
    base = path[path.rfind("/") + 1 :]
    dot = base.rfind(".")
    if dot <= 0:
        return ""
    ext = base[dot + 1 :].lower()
    if ext.isdigit():  # libfoo.so.6, libbar.so.1.2.3
        head = base[:dot]
        while "." in head and head[head.rfind(".") + 1 :].isdigit():
            head = head[: head.rfind(".")]
        return head[head.rfind(".") + 1 :].lower() if "." in head else ext
    return ext


@dataclass(frozen=True)
class SecretAnalyzer:
    """Finds secrets in the text files of every layer (see the module docstring)."""

    rules: SecretRules = field(default_factory=load_rules)
    max_bytes: int = DEFAULT_MAX_BYTES
    name: str = "secrets"
    _scanner: SecretScanner = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_scanner", SecretScanner(self.rules))

    @property
    def version(self) -> int:
        """Changes with the rule set (31 bits of its digest) and with the size limit."""
        return (int(self.rules.digest[:8], 16) ^ (self.max_bytes & 0x7FFFFFFF)) & 0x7FFFFFFF

    def wants(self, path: str, size: int, mode: int) -> bool:
        if path.startswith(_DPKG_INFO):
            return path.endswith(".list")
        if size < MIN_BYTES or size > self.max_bytes:
            return False
        if _suffix(path) in BINARY_SUFFIXES:
            return False
        return not self.rules.path_allowed(path)

    def analyze(self, file: FileInput) -> AnalysisResult:
        content = file.content
        if file.path.startswith(_DPKG_INFO):
            from garrison.inventory.os.dpkg import parse_file_list

            return AnalysisResult(system_files=parse_file_list(content.decode("utf-8", "replace")))
        if b"\0" in content[:BINARY_PROBE]:
            return EMPTY
        found = self._scanner.scan(file.path, content)
        return AnalysisResult(secrets=tuple(found)) if found else EMPTY


def secret_analyzer(user_file: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> SecretAnalyzer:
    """The analyzer for a scan: the built-in rules changed by ``user_file`` (``--secret-config``), files
    up to ``max_bytes``. Raises :class:`~garrison.errors.InputError` for a bad rule file."""
    return SecretAnalyzer(load_rules(user_file), max_bytes)


def scan_bytes(path: str, content: bytes, rules: SecretRules | None = None) -> list[Secret]:
    """Secrets in one file's bytes (binaries give none): the engine without the layer walk."""
    if b"\0" in content[:BINARY_PROBE]:
        return []
    return SecretScanner(rules or load_rules()).scan(path, content)
