"""Inventory coverage on trees of real package files: garrison against trivy and syft, side by side.

Run:  .venv/bin/python bench/bench_inventory_trees.py [ECOSYSTEM ...]     (``-v`` lists the differences)

Builds one folder per ecosystem (deb, apk, rpm, python, npm, go, java, ruby, rust, dotnet, php) from
real package files: this machine's dpkg database, an Alpine ``installed`` layout, an rpm database made
by rpmbuild and rpm, real Python and npm installs, real jars and poms from ``~/.m2``, real Go and Rust
binaries (also inside PE and Mach-O containers, see ``tests/inventory/exe_builders.py``), and the
lock and manifest files of each ecosystem as their tools write them. Then it runs
``garrison sbom dir:TREE``, ``trivy fs`` and ``trivy rootfs`` (counted together as trivy: fs reads
lock files, rootfs installed packages) and ``syft dir:TREE`` on each folder and prints, per
ecosystem, the packages each tool found and garrison's coverage of the union of the other two.

Packages are compared by purl type, namespace, name and version (qualifiers dropped; Python names
PEP 503-normalized; Go versions without their ``v``/``go`` prefix and Go module paths whole, which the
tools write differently; Maven by artifact and version, since for a jar without ``pom.properties``
each tool guesses the group its own way), so the same package reported two ways counts once. The
reference tools run with an empty ``HOME`` (Trivy would resolve ``pom.xml`` through this machine's
``~/.m2``, which is not part of the tree).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.inventory import exe_builders as xb  # noqa: E402  (the PE/Mach-O writers of the tests)

TOOLS = ROOT / "bench" / ".tools" / "venv" / "bin"
#: ``BENCH_GARRISON`` runs another garrison (an older checkout, to compare before and after).
GARRISON = Path(os.environ.get("BENCH_GARRISON", ROOT / ".venv" / "bin" / "garrison"))
M2 = Path.home() / ".m2" / "repository"
APP_LAYER = ROOT / ".cache" / "test-images" / "app-layer" / "upper"

Key = tuple[str, str, str, str]  # purl type, namespace, name, version


# --- the trees ------------------------------------------------------------------------------------

ALPINE_INSTALLED = """C:Q1VXHNBKRiqmlGmp/o6rlx5uqzRfk=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407278
I:667648
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teras <timo.teras@iki.fi>
t:1705338151
c:b1b5d2c1e1b7d0bf5e3a1d3f2c2c0b3e6a4b8f0d
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1hJ1uWq7Tj3D6i+Z3TTzA6b1W2ys=

C:Q1ZGRmRv0gDNKVEfS5KG4LrMRjGbA=
P:{crypto}
V:3.1.4-r5
A:x86_64
S:1711290
I:4448256
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1707910542
D:so:libc.musl-x86_64.so.1
F:usr/lib
R:libcrypto.so.3
Z:Q1ge91t7o5ZF6oVJ4wLZd1LmkaGXQ=

C:Q1oLkp0mHqgSgk2n6D5dR1gE3jQ2U=
P:busybox
V:1.36.1-r15
A:x86_64
S:509021
I:955392
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1703074452
F:bin
R:busybox
a:0:0:755
Z:Q1WUwBY0eOGgzhOxtwVdhLYfjCNs8=

"""


def _os_release(root: Path, text: str) -> None:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/os-release").write_text(text)


def tree_deb(d: Path) -> None:
    """This machine's dpkg database as a root filesystem, plus a second root filesystem below it."""
    status = Path("/var/lib/dpkg/status")
    if not status.exists():
        return
    for root in (d, d / "srv/chroot/bookworm"):
        (root / "var/lib/dpkg/info").mkdir(parents=True)
        shutil.copy(status, root / "var/lib/dpkg/status")
        _os_release(root, Path("/etc/os-release").read_text())
        if Path("/etc/debian_version").exists():  # Trivy identifies Debian by this file
            shutil.copy("/etc/debian_version", root / "etc/debian_version")
    broken = "Package: broken-version\nStatus: install ok installed\nVersion: not-a-version\nArchitecture: amd64\n"
    with open(d / "srv/chroot/bookworm/var/lib/dpkg/status", "a") as fp:
        fp.write("\n" + broken)


def tree_apk(d: Path) -> None:
    """Alpine root filesystems: the classic location at the root, and apk 3's ``usr/lib`` both at the
    root and in a second root filesystem below it."""
    release = 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n'
    for root, db, crypto in (
        (d, "lib/apk/db/installed", "libcrypto3"),
        (d, "usr/lib/apk/db/installed", "libcrypto3-usr"),
        (d / "srv/alpine-edge", "usr/lib/apk/db/installed", "libcrypto3-edge"),
    ):
        (root / db).parent.mkdir(parents=True)
        (root / db).write_text(ALPINE_INSTALLED.replace("{crypto}", crypto))
        _os_release(root, release)


def tree_rpm(d: Path) -> None:
    if shutil.which("rpmbuild") is None or shutil.which("rpm") is None:
        return
    spec = (
        "Name: bench-hello\nVersion: 1.2.3\nRelease: 4\nSummary: s\nLicense: MIT\nBuildArch: noarch\n"
        "%description\nd\n%package libs\nSummary: l\n%description libs\nl\n"
        "%install\nmkdir -p %{buildroot}/usr/share/bh\necho hi > %{buildroot}/usr/share/bh/hi.txt\n"
        "%files\n/usr/share/bh/hi.txt\n%files libs\n"
    )
    with tempfile.TemporaryDirectory() as top:
        t = Path(top)
        (t / "SPECS").mkdir()
        (t / "SPECS/h.spec").write_text(spec)
        subprocess.run(
            ["rpmbuild", "--define", f"_topdir {t}", "-bb", str(t / "SPECS/h.spec")], check=True, capture_output=True
        )
        rpms = sorted(str(p) for p in (t / "RPMS").rglob("*.rpm"))
        for root in (d, d / "var/lib/machines/fedora"):
            base = ["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm"]
            subprocess.run([*base, "--initdb"], check=True, capture_output=True)
            subprocess.run(
                [*base, "-i", "--justdb", "--nodeps", "--nosignature", *rpms], check=True, capture_output=True
            )
            _os_release(root, 'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=39\n')


def tree_python(d: Path) -> None:
    """Real installed distributions (this venv's), an egg zip, requirement files, setup.py/setup.cfg."""
    site = next((ROOT / ".venv/lib").glob("python3*/site-packages"))
    dest = d / "usr/lib/python3/site-packages"
    dest.mkdir(parents=True)
    for info in sorted(site.glob("*.dist-info"))[:25]:
        (dest / info.name).mkdir()
        shutil.copy(info / "METADATA", dest / info.name / "METADATA")
    eggs = d / "opt/legacy/eggs"
    eggs.mkdir(parents=True)
    with zipfile.ZipFile(eggs / "simplejson-3.19.2-py3.11.egg", "w") as z:
        z.writestr(
            "EGG-INFO/PKG-INFO",
            "Metadata-Version: 1.1\nName: simplejson\nVersion: 3.19.2\nSummary: JSON\nLicense: MIT License\n",
        )
        z.writestr("simplejson/__init__.py", "")
    src = d / "src/service"
    src.mkdir(parents=True)
    (src / "requirements.txt").write_text("flask==3.0.0\nrequests==2.31.0  # http\n")
    (src / "test-requirements.txt").write_text("pytest==8.0.0\ncoverage[toml]==7.4.1\n")
    (src / "requirements-dev.txt").write_text("black==24.1.1\nmypy>=1.0\n")
    (src / "setup.py").write_text(
        "from setuptools import setup\n\nsetup(\n    name='service',\n    version='0.1.0',\n"
        "    install_requires=[\n        'click==8.1.7',\n        'jinja2 == 3.1.3',\n        'six>=1.0',\n    ],\n)\n"
    )
    lib = d / "src/lib"
    lib.mkdir(parents=True)
    (lib / "setup.cfg").write_text(
        "[metadata]\nname = lib\nversion = 2.0\n\n[options]\ninstall_requires =\n    attrs==23.2.0\n"
        "    idna==3.6\n    packaging\n"
    )


def tree_npm(d: Path) -> None:
    """The test image's real express app (package.json, lock file, node_modules)."""
    app = APP_LAYER / "app"
    if (app / "node_modules").is_dir():
        shutil.copytree(app / "node_modules", d / "app/node_modules", symlinks=True)
        if (app / "package-lock.json").exists():
            shutil.copy(app / "package-lock.json", d / "app/package-lock.json")
    (d / "app").mkdir(parents=True, exist_ok=True)
    (d / "app/package.json").write_text(
        json.dumps({"name": "bench-express-app", "version": "1.4.0", "dependencies": {"express": "^4.18.2"}})
    )


def tree_go(d: Path) -> None:
    """A real Go binary, its build info in PE and Mach-O containers, a go.mod."""
    real = xb.real_go_binary()
    if real is not None and xb.objcopy() is not None:
        (d / "usr/local/bin").mkdir(parents=True)
        shutil.copy(real, d / "usr/local/bin/tool")
        with tempfile.TemporaryDirectory() as t:
            blob = xb.section_bytes(real, ".go.buildinfo", Path(t) / "bi")
        out = d / "dist"
        out.mkdir()
        pe = xb.pe64([(".text", b"\xc3" * 8192, xb.IMAGE_SCN_CODE), (".data", blob + bytes(64), xb.IMAGE_SCN_DATA_RW)])
        macho = xb.macho64(
            [
                ("__TEXT", xb.VM_PROT_RX, [("__text", b"\xc3" * 8192)]),
                ("__DATA", xb.VM_PROT_RW, [("__go_buildinfo", blob)]),
            ]
        )
        for name, data in (("tool.exe", pe), ("tool-darwin", macho)):
            (out / name).write_bytes(data)
            (out / name).chmod(0o755)
    stamped = xb.go_buildinfo(
        "go1.22.3",
        "path\texample.com/stamped/cmd/stamped\nmod\texample.com/stamped\t(devel)\t\n"
        "dep\tgithub.com/spf13/cobra\tv1.8.0\th1:x=\n"
        'build\t-ldflags="-X example.com/stamped/internal/version.Version=1.4.2"\n',
    )
    xb.write_sparse_elf(d / "usr/local/bin/stamped", stamped, 64 * 1024)
    (d / "src/app").mkdir(parents=True)
    (d / "src/app/go.mod").write_text(
        "module example.com/app\n\ngo 1.22\n\nrequire (\n\tgithub.com/gin-gonic/gin v1.9.1\n"
        "\tgolang.org/x/net v0.23.0 // indirect\n)\n"
    )


def _jar(path: Path, files: dict[str, str | bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)


def tree_java(d: Path) -> None:
    """Real jars and a real pom from ~/.m2, a Spring Boot jar, a Jenkins plugin, manifest-only jars."""
    lib = d / "opt/app/lib"
    lib.mkdir(parents=True)
    picked = 0
    for jar in sorted(M2.rglob("*.jar")) if M2.is_dir() else []:
        if picked >= 15 or "-sources" in jar.name or "-javadoc" in jar.name:
            continue
        shutil.copy(jar, lib / jar.name)
        picked += 1
    poms = sorted(M2.rglob("*.pom")) if M2.is_dir() else []
    if poms:
        (d / "src/service").mkdir(parents=True)
        shutil.copy(poms[len(poms) // 2], d / "src/service/pom.xml")
    inner = d / "tmp-inner.jar"
    _jar(
        inner,
        {
            "META-INF/MANIFEST.MF": "Manifest-Version: 1.0\nImplementation-Title: commons-text\n"
            "Implementation-Version: 1.10.0\n"
        },
    )
    _jar(
        d / "opt/boot/app.jar",
        {
            "META-INF/MANIFEST.MF": "Manifest-Version: 1.0\nMain-Class: org.springframework.boot.loader.JarLauncher\n",
            "BOOT-INF/classes/META-INF/maven/com.example/demo/pom.properties": (
                "groupId=com.example\nartifactId=demo\nversion=0.0.1\n"
            ),
            "BOOT-INF/lib/commons-text-1.10.0.jar": inner.read_bytes(),
        },
    )
    inner.unlink()
    _jar(
        d / "opt/osgi/bundle.jar",
        {
            "META-INF/MANIFEST.MF": (
                "Manifest-Version: 1.0\nBundle-SymbolicName: org.example.widgets;singleton:=true\n"
                "Bundle-Version: 2.3.1\n"
            )
        },
    )
    _jar(
        d / "var/jenkins_home/plugins/git.jpi",
        {
            "META-INF/MANIFEST.MF": "Manifest-Version: 1.0\nShort-Name: git\nExtension-Name: git\n"
            "Group-Id: org.jenkins-ci.plugins\n"
            "Plugin-Version: 5.2.1\nImplementation-Version: 5.2.1\nLong-Name: Jenkins Git plugin\n",
            "WEB-INF/lib/git.jar": b"",
        },
    )


GEMFILE_LOCK = """GIT
  remote: https://github.com/rails/rails.git
  revision: 5b5f4e8a3c1e6f7a8d9b0c1d2e3f4a5b6c7d8e9f
  branch: main
  specs:
    rails (7.2.0.alpha)
      actionpack (= 7.2.0.alpha)
    actionpack (7.2.0.alpha)
      rack (>= 2.2.4)

PATH
  remote: engines/billing
  specs:
    billing (0.3.0)
      rack

GEM
  remote: https://rubygems.org/
  specs:
    nokogiri (1.16.2-x86_64-linux)
      racc (~> 1.4)
    racc (1.7.3)
    rack (3.0.9)

PLATFORMS
  x86_64-linux

DEPENDENCIES
  billing!
  nokogiri
  rails!

BUNDLED WITH
   2.5.6
"""


def tree_ruby(d: Path) -> None:
    (d / "srv/app").mkdir(parents=True)
    (d / "srv/app/Gemfile.lock").write_text(GEMFILE_LOCK)
    spec = d / "usr/local/bundle/specifications"
    spec.mkdir(parents=True)
    for name, version in (("rack", "3.0.9"), ("racc", "1.7.3"), ("puma", "6.4.2")):
        (spec / f"{name}-{version}.gemspec").write_text(
            f"# -*- encoding: utf-8 -*-\n# stub: {name} {version} ruby lib\n\nGem::Specification.new do |s|\n"
            f'  s.name = "{name}".freeze\n  s.version = "{version}".freeze\n  s.licenses = ["MIT".freeze]\nend\n'
        )


def tree_rust(d: Path) -> None:
    (d / "src/tool").mkdir(parents=True)
    (d / "src/tool/Cargo.lock").write_text(
        'version = 3\n\n[[package]]\nname = "anyhow"\nversion = "1.0.86"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\n\n'
        '[[package]]\nname = "tool"\nversion = "0.3.1"\ndependencies = ["anyhow"]\n'
    )
    rustc = shutil.which("rustc") or str(Path.home() / ".cargo/bin/rustc")
    tool = xb.objcopy()
    if not os.path.exists(rustc) or tool is None:
        return
    audit = {
        "packages": [
            {
                "name": "tool",
                "version": "0.3.1",
                "source": "local",
                "kind": "runtime",
                "dependencies": [1],
                "root": True,
            },
            {"name": "anyhow", "version": "1.0.86", "source": "crates.io", "kind": "runtime"},
            {"name": "memchr", "version": "2.7.1", "source": "crates.io", "kind": "runtime"},
        ]
    }
    with tempfile.TemporaryDirectory() as t:
        tp = Path(t)
        (tp / "h.rs").write_text('fn main() { println!("x"); }\n')
        subprocess.run([rustc, "-O", "-o", str(tp / "h"), str(tp / "h.rs")], check=True, capture_output=True)
        (tp / "deps.z").write_bytes(zlib.compress(json.dumps(audit).encode()))
        (d / "usr/local/bin").mkdir(parents=True)
        subprocess.run(
            [tool, "--add-section", f".dep-v0={tp / 'deps.z'}", str(tp / "h"), str(d / "usr/local/bin/tool")],
            check=True,
            capture_output=True,
        )
        (d / "dist").mkdir()
        subprocess.run(
            [tool, "-O", "pei-x86-64", str(d / "usr/local/bin/tool"), str(d / "dist/tool.exe")],
            check=True,
            capture_output=True,
        )
        (d / "dist/tool.exe").chmod(0o755)
        z = zlib.compress(
            json.dumps(
                {"packages": [*audit["packages"][:2], {"name": "libc", "version": "0.2.153", "source": "crates.io"}]}
            ).encode()
        )
        macho = xb.macho64(
            [("__TEXT", xb.VM_PROT_RX, [("__text", b"\xc3" * 8192)]), ("__DATA", xb.VM_PROT_RW, [(".dep-v0", z)])]
        )
        (d / "dist/tool-darwin").write_bytes(macho)
        (d / "dist/tool-darwin").chmod(0o755)


def _deps_json() -> dict[str, object]:
    """A self-contained ``dotnet publish -r linux-x64`` deps.json (abridged): the project, runtime packs,
    a package with runtime files and a compile-only reference package."""
    return {
        "runtimeTarget": {"name": ".NETCoreApp,Version=v8.0/linux-x64", "signature": ""},
        "compilationOptions": {},
        "targets": {
            ".NETCoreApp,Version=v8.0": {},
            ".NETCoreApp,Version=v8.0/linux-x64": {
                "WebApp/1.0.0": {
                    "dependencies": {
                        "Newtonsoft.Json": "13.0.3",
                        "Microsoft.CodeAnalysis.Analyzers": "3.3.4",
                        "Microsoft.NETCore.App.Runtime.linux-x64": "8.0.2",
                        "Microsoft.AspNetCore.App.Runtime.linux-x64": "8.0.2",
                    },
                    "runtime": {"WebApp.dll": {}},
                },
                "Microsoft.NETCore.App.Runtime.linux-x64/8.0.2": {
                    "runtime": {
                        "runtimes/linux-x64/lib/net8.0/System.Private.CoreLib.dll": {
                            "assemblyVersion": "8.0.0.0",
                            "fileVersion": "8.0.224.6711",
                        }
                    },
                    "native": {"runtimes/linux-x64/native/libcoreclr.so": {"fileVersion": "0.0.0.0"}},
                },
                "Microsoft.AspNetCore.App.Runtime.linux-x64/8.0.2": {
                    "runtime": {
                        "runtimes/linux-x64/lib/net8.0/Microsoft.AspNetCore.dll": {
                            "assemblyVersion": "8.0.0.0",
                            "fileVersion": "8.0.224.6804",
                        }
                    }
                },
                "Newtonsoft.Json/13.0.3": {
                    "runtime": {
                        "lib/net6.0/Newtonsoft.Json.dll": {"assemblyVersion": "13.0.0.0", "fileVersion": "13.0.3.27908"}
                    }
                },
                "Microsoft.CodeAnalysis.Analyzers/3.3.4": {},
                "Shared.Lib/1.0.0": {"runtime": {"Shared.Lib.dll": {}}},
            },
        },
        "libraries": {
            "WebApp/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
            "Microsoft.NETCore.App.Runtime.linux-x64/8.0.2": {
                "type": "runtimepack",
                "serviceable": False,
                "sha512": "",
            },
            "Microsoft.AspNetCore.App.Runtime.linux-x64/8.0.2": {
                "type": "runtimepack",
                "serviceable": False,
                "sha512": "",
            },
            "Newtonsoft.Json/13.0.3": {
                "type": "package",
                "serviceable": True,
                "sha512": "sha512-HrC5BXdl00IP9zeV+0Z848QWPAoCr9P3bDEZguI+gkLcBKAOxix/"
                "tLEAAHC+UvDNPv4a2d18lOReHMOagPa+zQ==",
                "path": "newtonsoft.json/13.0.3",
                "hashPath": "newtonsoft.json.13.0.3.nupkg.sha512",
            },
            "Microsoft.CodeAnalysis.Analyzers/3.3.4": {
                "type": "package",
                "serviceable": True,
                "sha512": "sha512-AxkxcPR+rheX0SmvpLVIGLhOUXAKG56a64kV9VQZ4y7gR9ZBR8ljKAr9ozfMHL8"
                "GhNmUfMhzB0+E5sXfbz0rGg"
                "==",
                "path": "microsoft.codeanalysis.analyzers/3.3.4",
                "hashPath": "microsoft.codeanalysis.analyzers.3.3.4.nupkg.sha512",
            },
            "Shared.Lib/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
        },
    }


def tree_dotnet(d: Path) -> None:
    (d / "app").mkdir(parents=True)
    (d / "app/WebApp.deps.json").write_text(json.dumps(_deps_json(), indent=2))
    (d / "src/WebApp").mkdir(parents=True)
    (d / "src/WebApp/packages.lock.json").write_text(
        json.dumps(
            {
                "version": 1,
                "dependencies": {
                    "net8.0": {
                        "Newtonsoft.Json": {
                            "type": "Direct",
                            "requested": "[13.0.3, )",
                            "resolved": "13.0.3",
                            "contentHash": "x",
                        },
                        "Serilog": {"type": "Transitive", "resolved": "3.1.1", "contentHash": "y"},
                    }
                },
            }
        )
    )


def tree_php(d: Path) -> None:
    pkgs = [
        {"name": "monolog/monolog", "version": "3.5.0", "type": "library", "license": ["MIT"]},
        {"name": "psr/log", "version": "3.0.0", "type": "library", "license": ["MIT"]},
    ]
    (d / "var/www/vendor/composer").mkdir(parents=True)
    (d / "var/www/vendor/composer/installed.json").write_text(json.dumps({"packages": pkgs, "dev": True}))
    (d / "var/www/composer.lock").write_text(
        json.dumps({"packages": pkgs, "packages-dev": [{"name": "phpunit/phpunit", "version": "10.5.10"}]})
    )


TREES: dict[str, Callable[[Path], None]] = {
    "deb": tree_deb,
    "apk": tree_apk,
    "rpm": tree_rpm,
    "python": tree_python,
    "npm": tree_npm,
    "go": tree_go,
    "java": tree_java,
    "ruby": tree_ruby,
    "rust": tree_rust,
    "dotnet": tree_dotnet,
    "php": tree_php,
}


# --- the tools ------------------------------------------------------------------------------------


def _norm_key(purl: str) -> Key | None:
    m = re.match(r"^pkg:([^/]+)/(.+?)(?:\?[^#]*)?(?:#.*)?$", purl)
    if not m:
        return None
    ptype, rest = m.group(1).lower(), m.group(2)
    subpath = purl.split("#", 1)[1] if "#" in purl else ""
    path, _, version = rest.rpartition("@") if "@" in rest else (rest, "", "")
    parts = [unquote(p) for p in path.split("/")]
    name = parts[-1]
    namespace = "/".join(parts[:-1])
    version = unquote(version)
    if ptype == "pypi":
        name = re.sub(r"[-_.]+", "-", name).lower()
    if ptype in ("deb", "apk", "rpm"):
        namespace = ""  # distro namespaces differ (debian vs ubuntu guesses on an unknown root)
        epoch = re.search(r"[?&]epoch=(\d+)", purl)
        if epoch and epoch.group(1) != "0" and ":" not in version:
            version = f"{epoch.group(1)}:{version}"  # Trivy writes the epoch as a qualifier
        if ptype == "rpm" and version.startswith("0:"):
            version = version[2:]
    if ptype == "golang":
        # Module paths whole (Syft moves deep ones into the purl subpath) and lower-case (Trivy's purls).
        name, namespace = "/".join(p for p in (namespace, name, subpath) if p).lower(), ""
        # Syft writes stdlib as go1.22.3 and an -ldflags stamp as v1.4.2; Trivy as v1.22.3 and 1.4.2.
        version = version.removeprefix("go").removeprefix("v")
    if ptype == "maven":
        namespace = ""  # without a pom.properties every tool guesses the group id its own way
    if ptype == "nuget" or ptype == "composer":
        name, namespace = name.lower(), namespace.lower()
    return (ptype, namespace, name, version)


def _env(home: Path) -> dict[str, str]:
    """The reference tools run with an empty home: Trivy resolves pom.xml dependencies through
    ``~/.m2``, which belongs to this machine, not to the tree."""
    home.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "HOME": str(home), "SYFT_CHECK_FOR_APP_UPDATE": "false"}


def garrison(tree: Path, cache: Path) -> set[Key]:
    out = subprocess.run(
        [str(GARRISON), "sbom", "-q", "-f", "json", "--no-cache", "--cache-dir", str(cache), f"dir:{tree}"],
        check=True,
        capture_output=True,
    ).stdout
    return {k for p in json.loads(out)["packages"] if (k := _norm_key(p["purl"]))}


def trivy(tree: Path, cache: Path) -> set[Key]:
    keys: set[Key] = set()
    for mode in ("fs", "rootfs"):
        out = subprocess.run(
            [
                str(TOOLS / "trivy"),
                mode,
                "--quiet",
                "--offline-scan",
                "--skip-db-update",
                "--scanners",
                "",
                "--list-all-pkgs",
                "--format",
                "json",
                "--cache-dir",
                str(cache),
                str(tree),
            ],
            check=True,
            capture_output=True,
            env=_env(cache / "home"),
        ).stdout
        for res in json.loads(out).get("Results", []):
            for p in res.get("Packages") or []:
                purl = (p.get("Identifier") or {}).get("PURL", "")
                if purl and (k := _norm_key(purl)):
                    keys.add(k)
    return keys


def syft(tree: Path, cache: Path) -> set[Key]:
    env = {**_env(cache / "home"), "SYFT_CACHE_DIR": str(cache)}
    out = subprocess.run(
        [str(TOOLS / "syft"), "scan", f"dir:{tree}", "-o", "json", "-q"], check=True, capture_output=True, env=env
    ).stdout
    return {k for a in json.loads(out).get("artifacts", []) if a.get("purl") and (k := _norm_key(a["purl"]))}


def main(argv: list[str]) -> None:
    verbose = "-v" in argv
    wanted = [a for a in argv if not a.startswith("-")] or list(TREES)
    with tempfile.TemporaryDirectory(prefix="garrison-bench-trees-") as tmp:
        base = Path(tmp)
        cache = base / ".cache"
        rows = []
        total = {"garrison": 0, "trivy": 0, "syft": 0, "union": 0, "covered": 0}
        for eco in wanted:
            tree = base / eco
            tree.mkdir()
            TREES[eco](tree)
            if not any(tree.iterdir()):
                print(f"{eco}: nothing to build on this machine, skipped")
                continue
            g, t, s = garrison(tree, cache / "g"), trivy(tree, cache / "t"), syft(tree, cache / "s")
            union = t | s
            covered = len(union & g)
            rows.append((eco, len(g), len(t), len(s), len(union), covered))
            for k, v in (
                ("garrison", len(g)),
                ("trivy", len(t)),
                ("syft", len(s)),
                ("union", len(union)),
                ("covered", covered),
            ):
                total[k] += v
            if verbose:
                for label, missing in (("trivy", t - g), ("syft", s - g)):
                    for key in sorted(missing):
                        print(f"  {eco}: found by {label}, not garrison: {key}")
                for key in sorted(g - union):
                    print(f"  {eco}: found by garrison only: {key}")
        print(f"\n{'ecosystem':10} {'garrison':>9} {'trivy':>7} {'syft':>6} {'union t+s':>10} {'garrison covers':>16}")
        for eco, g_n, t_n, s_n, u_n, c in rows:
            pct = f"{100 * c / u_n:5.1f}%" if u_n else "    -"
            print(f"{eco:10} {g_n:9d} {t_n:7d} {s_n:6d} {u_n:10d} {c:9d} {pct}")
        u = total["union"]
        pct = f"{100 * total['covered'] / u:5.1f}%" if u else "-"
        g_all, t_all, s_all, c_all = total["garrison"], total["trivy"], total["syft"], total["covered"]
        print(f"{'all':10} {g_all:9d} {t_all:7d} {s_all:6d} {u:10d} {c_all:9d} {pct}")


if __name__ == "__main__":
    main(sys.argv[1:])
