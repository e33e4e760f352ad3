"""Go and Rust build data in PE and Mach-O executables, and binaries read without holding them whole.

The executables come from :mod:`tests.inventory.exe_builders` (real build data in real or
byte-by-byte containers; see there for why).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from tests.inventory import exe_builders as xb
from tests.inventory.invutil import run
from tests.support.imagewriter import File, Hardlink, Layer, build_image

from garrison.inventory.base import AnalysisResult, FileInput
from garrison.inventory.lang.gobinary import ANALYZER as GO
from garrison.inventory.lang.gobinary import parse_modinfo
from garrison.inventory.lang.rust import ANALYZER as RUST


@pytest.fixture(scope="module")
def go_real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """(a real Go ELF binary, its ``.go.buildinfo`` section as objcopy cuts it out)."""
    binary = xb.real_go_binary()
    if binary is None or xb.objcopy() is None:
        pytest.skip("no real Go binary or no objcopy on this machine")
    d = tmp_path_factory.mktemp("go")
    return binary, xb.section_bytes(binary, ".go.buildinfo", d / "buildinfo.bin")


@pytest.fixture(scope="module")
def go_elf_packages(go_real: tuple[Path, bytes]) -> set[tuple[str, str]]:
    binary, _ = go_real
    fi = FileInput("usr/bin/tool", b"", 0o755, binary.stat().st_size, _FileReader(binary))
    result = GO.analyze(fi)
    pkgs = {(p.name, p.version) for p in result.packages}
    assert len(pkgs) > 10 and any(n == "stdlib" for n, _ in pkgs), pkgs
    return pkgs


class _FileReader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read_at(self, offset: int, n: int) -> bytes:
        with open(self.path, "rb") as fp:
            fp.seek(offset)
            return fp.read(n)


def _pkgs(result: AnalysisResult) -> set[tuple[str, str]]:
    assert result.warnings == (), result.warnings
    return {(p.name, p.version) for p in result.packages}


def test_go_pe_from_objcopy(go_real: tuple[Path, bytes], go_elf_packages: set[tuple[str, str]], tmp_path: Path) -> None:
    """``objcopy -O pei-x86-64`` of a real ELF holding the real build info: ``.go.buildinfo`` is longer
    than eight bytes, so its name is in the COFF string table."""
    rustc = shutil.which("rustc") or str(Path.home() / ".cargo/bin/rustc")
    if not os.path.exists(rustc):
        pytest.skip("rustc not installed")
    _, blob = go_real
    (tmp_path / "h.rs").write_text("fn main() {}\n")
    subprocess.run([rustc, "-o", str(tmp_path / "h"), str(tmp_path / "h.rs")], check=True, capture_output=True)
    (tmp_path / "bi").write_bytes(blob)
    tool = xb.objcopy()
    assert tool
    subprocess.run(
        [
            tool,
            "--add-section",
            f".go.buildinfo={tmp_path / 'bi'}",
            "--set-section-flags",
            ".go.buildinfo=contents,alloc,load,data",
            str(tmp_path / "h"),
            str(tmp_path / "h-go"),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [tool, "-O", "pei-x86-64", str(tmp_path / "h-go"), str(tmp_path / "h.exe")], check=True, capture_output=True
    )
    data = (tmp_path / "h.exe").read_bytes()
    assert data[:2] == b"MZ"
    assert _pkgs(run(GO, "app/tool.exe", data, 0o755)) == go_elf_packages


def test_go_pe_data_section(go_real: tuple[Path, bytes], go_elf_packages: set[tuple[str, str]]) -> None:
    """The Go linker's PE layout: no section of its own, the build info opens ``.data``."""
    _, blob = go_real
    pe = xb.pe64(
        [
            (".text", b"\xc3" * 64, xb.IMAGE_SCN_CODE),
            (".rdata", b"GO RDATA" * 8, xb.IMAGE_SCN_DATA_RO),
            (".data", blob + b"\x01" * 100, xb.IMAGE_SCN_DATA_RW),
        ]
    )
    assert _pkgs(run(GO, "app/tool.exe", pe, 0o755)) == go_elf_packages


def test_go_macho_and_fat(go_real: tuple[Path, bytes], go_elf_packages: set[tuple[str, str]]) -> None:
    _, blob = go_real
    image = xb.macho64(
        [
            ("__TEXT", xb.VM_PROT_RX, [("__text", b"\xc3" * 64)]),
            ("__DATA", xb.VM_PROT_RW, [("__go_buildinfo", blob), ("__data", b"\0" * 32)]),
        ]
    )
    assert _pkgs(run(GO, "usr/local/bin/tool", image, 0o755)) == go_elf_packages
    arm = xb.macho64(
        [("__TEXT", xb.VM_PROT_RX, [("__text", b"\0" * 64)]), ("__DATA", xb.VM_PROT_RW, [("__go_buildinfo", blob)])],
        cputype=xb.CPU_TYPE_ARM64,
    )
    universal = xb.fat([(xb.CPU_TYPE_ARM64, arm), (xb.CPU_TYPE_X86_64, image)])
    assert _pkgs(run(GO, "usr/local/bin/tool", universal, 0o755)) == go_elf_packages
    # Without the named section, the first read-write segment is searched (Go's own fallback).
    bare = xb.macho64(
        [("__TEXT", xb.VM_PROT_RX, [("__text", b"\0" * 64)]), ("__DATA", xb.VM_PROT_RW, [("__data", blob)])]
    )
    assert _pkgs(run(GO, "usr/local/bin/tool", bare, 0o755)) == go_elf_packages


def test_java_class_file_is_not_a_fat_binary() -> None:
    """``CAFEBABE`` also opens every Java class file; its version sits where a fat header's count is."""
    cls = b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + bytes(5000)
    assert run(GO, "opt/App.class", cls, 0o755) == AnalysisResult()
    assert run(RUST, "opt/App.class", cls, 0o755) == AnalysisResult()


def test_main_module_version_from_ldflags() -> None:
    modinfo = (
        "path\texample.com/cli/cmd/cli\nmod\texample.com/cli\t(devel)\t\n"
        "dep\tgithub.com/spf13/cobra\tv1.8.0\th1:x=\n"
        "build\t-ldflags=\"-s -w -X 'example.com/cli/internal/version.Version=1.4.2' -X main.commit=abc\"\n"
    )
    pkgs = {(p.name, p.version) for p in parse_modinfo("go1.22.3", modinfo, "bin/cli")}
    assert pkgs == {("example.com/cli", "1.4.2"), ("github.com/spf13/cobra", "v1.8.0"), ("stdlib", "v1.22.3")}
    # A stamp that is not a version leaves the main module without one.
    devel = modinfo.replace("Version=1.4.2", "Version=dev")
    assert ("example.com/cli", "") in {(p.name, p.version) for p in parse_modinfo("go1.22.3", devel, "x")}


# ------------------------------------------------------------------ Rust

AUDIT = {
    "packages": [
        {"name": "tool", "version": "0.3.1", "source": "local", "kind": "runtime", "dependencies": [1], "root": True},
        {"name": "anyhow", "version": "1.0.86", "source": "crates.io", "kind": "runtime"},
    ]
}
WANT_RUST = {("tool", "0.3.1"), ("anyhow", "1.0.86")}


def test_rust_pe_from_objcopy(tmp_path: Path) -> None:
    rustc = shutil.which("rustc") or str(Path.home() / ".cargo/bin/rustc")
    tool = xb.objcopy()
    if not os.path.exists(rustc) or tool is None:
        pytest.skip("rustc or objcopy not installed")
    (tmp_path / "h.rs").write_text('fn main() { println!("x"); }\n')
    subprocess.run([rustc, "-o", str(tmp_path / "h"), str(tmp_path / "h.rs")], check=True, capture_output=True)
    (tmp_path / "deps.z").write_bytes(zlib.compress(json.dumps(AUDIT).encode()))
    subprocess.run(
        [tool, "--add-section", f".dep-v0={tmp_path / 'deps.z'}", str(tmp_path / "h"), str(tmp_path / "ha")],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [tool, "-O", "pei-x86-64", str(tmp_path / "ha"), str(tmp_path / "ha.exe")], check=True, capture_output=True
    )
    data = (tmp_path / "ha.exe").read_bytes()
    assert data[:2] == b"MZ"
    assert _pkgs(run(RUST, "app/tool.exe", data, 0o755)) == WANT_RUST


def test_rust_macho_and_pe_layouts() -> None:
    z = zlib.compress(json.dumps(AUDIT).encode())
    macho = xb.macho64(
        [("__TEXT", xb.VM_PROT_RX, [("__text", b"\xc3" * 64)]), ("__DATA", xb.VM_PROT_RW, [(".dep-v0", z)])]
    )
    assert _pkgs(run(RUST, "usr/local/bin/tool", macho, 0o755)) == WANT_RUST
    pe = xb.pe64([(".text", b"\xc3" * 8192, xb.IMAGE_SCN_CODE), (".dep-v0", z, xb.IMAGE_SCN_DATA_RO)])
    assert _pkgs(run(RUST, "app/tool.exe", pe, 0o755)) == WANT_RUST
    plain = xb.pe64([(".text", b"\xc3" * 8192, xb.IMAGE_SCN_CODE)])
    assert run(RUST, "app/other.exe", plain, 0o755) == AnalysisResult()


# ------------------------------------------------------------------ reading without holding the file

BIG = 512 * 1024 * 1024
MODINFO = "path\texample.com/big\nmod\texample.com/big\tv1.2.3\t\ndep\tgolang.org/x/net\tv0.23.0\th1:y=\n"
WANT_BIG = {("example.com/big", "v1.2.3"), ("golang.org/x/net", "v0.23.0"), ("stdlib", "v1.22.3")}


def _peak_scan(ref: str, cache: Path) -> tuple[int, dict[str, set[tuple[str, str]]]]:
    """Inventory ``ref`` in a child process; (peak RSS in MB, packages found by location)."""
    code = (
        "import json\n"
        "from pathlib import Path\n"
        "from garrison.api import inventory\n"
        "from garrison.config import Settings\n"
        f"inv = inventory({ref!r}, Settings(cache_dir=Path({str(cache)!r}), no_cache=True))\n"
        "print(json.dumps(sorted([p.name, p.version, loc] for p in inv.packages for loc in p.locations)))\n"
        # VmHWM: the high-water mark of this process's own address space (ru_maxrss survives execve).
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print(int(hwm.split()[1]) // 1024)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    found: dict[str, set[tuple[str, str]]] = {}
    for name, version, loc in json.loads(lines[-2]):
        found.setdefault(loc, set()).add((name, version))
    return int(lines[-1]), found


@pytest.fixture(scope="module")
def big_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("big")
    root = d / "rootfs"
    (root / "usr/local/bin").mkdir(parents=True)
    xb.write_sparse_elf(root / "usr/local/bin/big", xb.go_buildinfo("go1.22.3", MODINFO), BIG)
    return root


def test_large_binary_in_dir_is_read_in_place(big_binary: Path, tmp_path: Path) -> None:
    assert (big_binary / "usr/local/bin/big").stat().st_size == BIG
    peak, pkgs = _peak_scan(f"dir:{big_binary}", tmp_path / "cache")
    assert pkgs == {"usr/local/bin/big": WANT_BIG}
    assert peak < 200, f"peak RSS {peak} MB for a {BIG >> 20} MiB binary"


@pytest.mark.slow  # writes a 512 MiB executable into a gzip layer
@pytest.mark.slow  # builds an image
def test_large_binary_in_layer_is_spooled(big_binary: Path, tmp_path: Path) -> None:
    """A 512 MiB executable in a gzip layer: its first chunk is checked, then it is spooled to a
    temporary file and parsed from headers, tables and one section. A hard link to it (whose target
    content was never kept) is spooled again by the layer's second pass, not read whole."""
    layer = Layer(
        entries=[
            File("usr/local/bin/big", big_binary / "usr/local/bin/big", 0o755),
            Hardlink("usr/bin/big-link", "usr/local/bin/big"),
        ]
    )
    build_image([layer], work=tmp_path / "work", oci_dir=tmp_path / "img", compression="gzip")
    peak, pkgs = _peak_scan(f"oci:{tmp_path / 'img'}:latest", tmp_path / "cache")
    assert pkgs == {"usr/local/bin/big": WANT_BIG, "usr/bin/big-link": WANT_BIG}
    assert peak < 200, f"peak RSS {peak} MB for a {BIG >> 20} MiB binary"


@pytest.fixture(scope="module")
def big_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 320 MiB fat jar: the application's pom.properties, a nested library jar and one big stored
    member (a bundled data file)."""
    import zipfile

    root = tmp_path_factory.mktemp("bigjar") / "rootfs"
    (root / "opt/app").mkdir(parents=True)
    lib = io.BytesIO()
    with zipfile.ZipFile(lib, "w") as z:
        z.writestr(
            "META-INF/maven/org.yaml/snakeyaml/pom.properties", "groupId=org.yaml\nartifactId=snakeyaml\nversion=2.2\n"
        )
    with zipfile.ZipFile(root / "opt/app/app.jar", "w", zipfile.ZIP_STORED) as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nMain-Class: com.example.Main\n")
        z.writestr(
            "META-INF/maven/com.example/app/pom.properties", "groupId=com.example\nartifactId=app\nversion=4.0.1\n"
        )
        with z.open("data/model.bin", "w", force_zip64=True) as fp:
            chunk = bytes(1 << 20)
            for _ in range(320):
                fp.write(chunk)
        z.writestr("lib/snakeyaml-2.2.jar", lib.getvalue())
    return root


WANT_JAR = {"opt/app/app.jar": {("com.example:app", "4.0.1"), ("org.yaml:snakeyaml", "2.2")}}


@pytest.mark.slow  # builds an image
def test_large_jar_is_not_read_whole(big_jar: Path, tmp_path: Path) -> None:
    assert (big_jar / "opt/app/app.jar").stat().st_size > 320 << 20
    peak, pkgs = _peak_scan(f"dir:{big_jar}", tmp_path / "cache")
    assert pkgs == WANT_JAR
    assert peak < 200, f"peak RSS {peak} MB for a 320 MiB jar"
    layer = Layer(entries=[File("opt/app/app.jar", big_jar / "opt/app/app.jar", 0o644)])
    build_image([layer], work=tmp_path / "work", oci_dir=tmp_path / "img", compression="gzip")
    peak, pkgs = _peak_scan(f"oci:{tmp_path / 'img'}:latest", tmp_path / "cache")
    assert pkgs == WANT_JAR
    assert peak < 200, f"peak RSS {peak} MB for a 320 MiB jar in a layer"
