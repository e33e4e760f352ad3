"""Compiled binaries: Go build info and cargo-auditable dependency lists.

Go: this machine has real Go ≥ 1.18 binaries (kubectl from the Cloud SDK reports its own Go version,
Debian's skopeo was built in GOPATH mode) but no Go toolchain and no pre-1.18 binary, so the old
pointer format is checked on a minimal ELF assembled here byte by byte per the Go linker's layout.

Rust: crates.io is unreachable, so ``cargo auditable`` cannot be installed; a real binary is compiled
with ``rustc`` and the ``.dep-v0`` section (zlib-compressed JSON in cargo-auditable's schema) is added
with ``objcopy``, the way cargo-auditable's linker step embeds it.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from tests.inventory.invutil import run

from garrison.inventory.base import AnalysisResult, FileInput
from garrison.inventory.lang import gobinary, rust
from garrison.inventory.lang.gobinary import ANALYZER as GO_ANALYZER
from garrison.inventory.lang.gobinary import BuildInfoError, read_build_info
from garrison.inventory.lang.rust import ANALYZER as RUST_ANALYZER

KUBECTL = Path("/usr/lib/google-cloud-sdk/bin/kubectl")
SKOPEO = Path("/usr/bin/skopeo")


def _binary(path: Path) -> bytes:
    if not path.exists():
        pytest.skip(f"{path} not on this machine")
    return path.read_bytes()


def test_real_go_binary_with_modules() -> None:
    data = _binary(KUBECTL)
    goversion = json.loads(
        subprocess.run([str(KUBECTL), "version", "--client", "-o", "json"], capture_output=True, text=True).stdout
    )["clientVersion"]["goVersion"]
    result = run(GO_ANALYZER, "usr/local/bin/kubectl", data, mode=0o755)
    pkgs = {p.name: p for p in result.packages}
    assert pkgs["stdlib"].version == "v" + goversion.removeprefix("go")
    assert pkgs["stdlib"].purl == f"pkg:golang/stdlib@{pkgs['stdlib'].version}"
    assert "github.com/spf13/cobra" in pkgs and pkgs["github.com/spf13/cobra"].version.startswith("v1.")
    assert pkgs["k8s.io/kubernetes"].version == ""  # main module built as (devel)
    assert len(pkgs) > 50
    assert all(p.locations == ("usr/local/bin/kubectl",) and p.type.value == "golang" for p in result.packages)


def test_real_go_binary_without_modules() -> None:
    """Debian builds Go in GOPATH mode: no mod/dep lines, only the toolchain."""
    result = run(GO_ANALYZER, "usr/bin/skopeo", _binary(SKOPEO), mode=0o755)
    assert [(p.name, p.version[:3]) for p in result.packages] == [("stdlib", "v1.")]


def _old_format_elf(version: bytes, modinfo: bytes) -> bytes:
    """A minimal ELF64 LE: one PT_LOAD mapping the whole file at 0x400000, holding a pre-1.18 buildinfo
    header whose two pointers lead to Go string headers (data pointer, length)."""
    base = 0x400000
    ehdr_size, phdr_size = 64, 56
    blob = bytearray(4096)
    binfo = 0x100  # 16-byte aligned
    str_hdrs = 0x140
    data_at = 0x180
    v_at, m_at = data_at, data_at + len(version)
    blob[v_at : v_at + len(version)] = version
    blob[m_at : m_at + len(modinfo)] = modinfo
    struct.pack_into("<QQ", blob, str_hdrs, base + v_at, len(version))
    struct.pack_into("<QQ", blob, str_hdrs + 16, base + m_at, len(modinfo))
    blob[binfo : binfo + 16] = gobinary.MAGIC + bytes([8, 0])
    struct.pack_into("<QQ", blob, binfo + 16, base + str_hdrs, base + str_hdrs + 16)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, base, ehdr_size, 0, 0, ehdr_size, phdr_size, 1, 64, 0, 0)
    blob[0:64] = ehdr
    struct.pack_into("<IIQQQQQQ", blob, ehdr_size, 1, 5, 0, base, base, len(blob), len(blob), 0x1000)
    return bytes(blob)


SENTINEL_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
SENTINEL_END = bytes.fromhex("f932433186182072008242104116d8f2")


def test_old_pointer_format() -> None:
    modinfo = (
        b"path\texample.com/app\nmod\texample.com/app\tv1.0.0\th1:abc=\n"
        b"dep\tgithub.com/old/lib\tv1.2.0\th1:x=\n=>\tgithub.com/fork/lib\tv1.2.1\th1:y=\n"
        b"dep\tgolang.org/x/text\tv0.3.0\th1:z=\n"
    )
    data = _old_format_elf(b"go1.16.15", SENTINEL_START + modinfo + SENTINEL_END)
    result = run(GO_ANALYZER, "app/server", data, mode=0o755)
    assert [(p.name, p.version) for p in result.packages] == [
        ("example.com/app", "v1.0.0"),
        ("github.com/fork/lib", "v1.2.1"),
        ("golang.org/x/text", "v0.3.0"),
        ("stdlib", "v1.16.15"),
    ]
    assert result.packages[2].purl == "pkg:golang/golang.org/x/text@v0.3.0"


def test_go_wants_and_non_go_files() -> None:
    a = GO_ANALYZER
    assert not a.wants("usr/bin/app", 10_000_000, 0o644)  # not executable
    assert not a.wants("usr/bin/tiny", 100, 0o755)  # too small to be a Go binary
    ls = Path("/bin/ls").read_bytes()
    assert run(a, "bin/ls", ls, mode=0o755) == AnalysisResult()  # an ELF, but not Go
    script = b"#!/bin/sh\necho '\xff Go buildinf:'\n" + b"#" * 5000
    assert run(a, "usr/bin/script", script, mode=0o755).packages == ()


def test_go_truncated_build_info_warns() -> None:
    data = b"\x7fELF" + bytes(60) + gobinary.MAGIC + bytes([8, 2]) + bytes(16) + b"\xff\xff\xff\xff\xff\xff"
    data += bytes(5000)
    result = GO_ANALYZER.analyze(FileInput("bin/x", data, 0o755, len(data)))
    assert result.packages == () and result.warnings
    with pytest.raises(BuildInfoError, match="truncated"):
        read_build_info(FileInput("bin/x", b"\x7fELF no build info here"))


# ------------------------------------------------------------------ Rust

AUDIT_JSON = {
    "packages": [
        {
            "name": "hello",
            "version": "0.1.0",
            "source": "local",
            "kind": "runtime",
            "dependencies": [1, 2],
            "root": True,
        },
        {"name": "serde", "version": "1.0.130", "source": "crates.io", "kind": "runtime"},
        {"name": "smallvec", "version": "1.6.0", "source": "crates.io", "kind": "runtime"},
        {"name": "no-version", "source": "crates.io"},
    ]
}


@pytest.fixture(scope="module")
def rust_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rustc = shutil.which("rustc") or str(Path.home() / ".cargo/bin/rustc")
    if not os.path.exists(rustc) or shutil.which("objcopy") is None:
        pytest.skip("rustc or objcopy not installed")
    d = tmp_path_factory.mktemp("rust")
    (d / "hello.rs").write_text('fn main() { println!("hello"); }\n')
    subprocess.run([rustc, "-O", "-o", str(d / "hello"), str(d / "hello.rs")], check=True, capture_output=True)
    (d / "deps.z").write_bytes(zlib.compress(json.dumps(AUDIT_JSON).encode()))
    subprocess.run(
        ["objcopy", "--add-section", f".dep-v0={d / 'deps.z'}", str(d / "hello"), str(d / "hello-audited")],
        check=True,
        capture_output=True,
    )
    return d


def test_cargo_auditable_section(rust_binary: Path) -> None:
    data = (rust_binary / "hello-audited").read_bytes()
    result = run(RUST_ANALYZER, "usr/local/bin/hello", data, mode=0o755)
    assert [(p.name, p.version, p.purl) for p in result.packages] == [
        ("hello", "0.1.0", "pkg:cargo/hello@0.1.0"),
        ("serde", "1.0.130", "pkg:cargo/serde@1.0.130"),
        ("smallvec", "1.6.0", "pkg:cargo/smallvec@1.6.0"),
    ]
    assert result.warnings == ()


def test_rust_binary_without_section(rust_binary: Path) -> None:
    data = (rust_binary / "hello").read_bytes()
    assert run(RUST_ANALYZER, "usr/local/bin/hello", data, mode=0o755) == AnalysisResult()


def test_rust_zlib_bomb_and_garbage(rust_binary: Path, tmp_path: Path) -> None:
    bomb = zlib.compress(b'{"packages": [' + b" " * (rust.MAX_JSON + 10) + b"]}", 9)
    (tmp_path / "bomb.z").write_bytes(bomb)
    out = tmp_path / "bombed"
    subprocess.run(
        ["objcopy", "--add-section", f".dep-v0={tmp_path / 'bomb.z'}", str(rust_binary / "hello"), str(out)],
        check=True,
        capture_output=True,
    )
    result = run(RUST_ANALYZER, "bin/bombed", out.read_bytes(), mode=0o755)
    assert result.packages == () and result.warnings
    corrupt = b"\x7fELF" + bytes([2, 1]) + b"\xff" * 6000
    assert RUST_ANALYZER.analyze(FileInput("bin/x", corrupt, 0o755)).warnings
