"""What language inventory used to miss: the application itself, .NET runtime packs, eggs, more
requirement files and setup files, Gemfile.lock git and path gems, Java beyond ``META-INF/maven``.

Each case is a tree of package files as the ecosystem's tools write them, scanned the way a user
would (``dir:``) or handed to the one analyzer that reads it. ``bench/bench_inventory_trees.py``
runs Trivy and Syft on the same kind of trees; the expectations here follow what they report.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from tests.inventory.invutil import names_versions, run

from garrison.api import inventory
from garrison.config import Settings
from garrison.inventory.lang import dotnet, java, python
from garrison.inventory.lang.lockfiles import LOCKFILE_ANALYZERS
from garrison.model import Package, PackageType

BY_NAME = {a.name: a for a in LOCKFILE_ANALYZERS}


def _scan(tree: Path, tmp_path: Path) -> list[Package]:
    return list(inventory(f"dir:{tree}", Settings(cache_dir=tmp_path / ".cache", no_cache=True)).packages)


def _zip(files: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------- npm


def test_node_app_root_manifest(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    (tree / "srv/app/node_modules/ms/test/fixture").mkdir(parents=True)
    (tree / "srv/app/package.json").write_text(
        json.dumps({"name": "billing-api", "version": "2.3.0", "license": "UNLICENSED", "dependencies": {"ms": "^2"}})
    )
    (tree / "srv/app/node_modules/ms/package.json").write_text(json.dumps({"name": "ms", "version": "2.1.3"}))
    fixture = json.dumps({"name": "fixture", "version": "0.0.0"})
    (tree / "srv/app/node_modules/ms/test/fixture/package.json").write_text(fixture)
    (tree / "srv/tool").mkdir()
    (tree / "srv/tool/package.json").write_text(json.dumps({"private": True, "scripts": {}}))  # no name: nothing
    got = {(p.name, p.version, p.locations) for p in _scan(tree, tmp_path)}
    assert got == {
        ("billing-api", "2.3.0", ("srv/app/package.json",)),
        ("ms", "2.1.3", ("srv/app/node_modules/ms/package.json",)),
    }


# -------------------------------------------------------------------------------------------- .NET

RID = ".NETCoreApp,Version=v8.0/linux-x64"


def _deps_json() -> bytes:
    """``dotnet publish -r linux-x64 --self-contained`` output, abridged: the project and a project it
    references, the two runtime packs, a package with an assembly, and an analyzer package (compile only)."""
    asm = {"assemblyVersion": "8.0.0.0", "fileVersion": "8.0.224.6711"}
    doc = {
        "runtimeTarget": {"name": RID, "signature": ""},
        "compilationOptions": {},
        "targets": {
            ".NETCoreApp,Version=v8.0": {},
            RID: {
                "Orders.Api/1.0.0": {
                    "dependencies": {"Orders.Core": "1.0.0", "Newtonsoft.Json": "13.0.3"},
                    "runtime": {"Orders.Api.dll": {}},
                },
                "Microsoft.NETCore.App.Runtime.linux-x64/8.0.2": {
                    "runtime": {"runtimes/linux-x64/lib/net8.0/System.Private.CoreLib.dll": asm},
                    "native": {"runtimes/linux-x64/native/libcoreclr.so": {"fileVersion": "0.0.0.0"}},
                },
                "Microsoft.AspNetCore.App.Runtime.linux-x64/8.0.2": {
                    "runtime": {"runtimes/linux-x64/lib/net8.0/Microsoft.AspNetCore.dll": asm}
                },
                "Newtonsoft.Json/13.0.3": {"runtime": {"lib/net6.0/Newtonsoft.Json.dll": asm}},
                "Microsoft.CodeAnalysis.NetAnalyzers/8.0.0": {},
                "Orders.Core/1.0.0": {"runtime": {"Orders.Core.dll": {}}},
            },
        },
        "libraries": {
            "Orders.Api/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
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
            "Microsoft.CodeAnalysis.NetAnalyzers/8.0.0": {
                "type": "package",
                "serviceable": True,
                "sha512": "sha512-DxAy3oVh4oHDEXMkbWnrs7fmqGcvyoe6+7QW2HvfRQOI4Qe8FYHE3pfU3QEGnS/"
                "sPE/tnkbtfw+yHK3eKFdwEg==",
                "path": "microsoft.codeanalysis.netanalyzers/8.0.0",
            },
            "Orders.Core/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
        },
    }
    return json.dumps(doc, indent=2).encode()


def test_deps_json_projects_runtime_packs_and_no_compile_only() -> None:
    result = run(dotnet.ANALYZER, "app/Orders.Api.deps.json", _deps_json())
    assert names_versions(result) == {
        ("Orders.Api", "1.0.0"),
        ("Orders.Core", "1.0.0"),
        ("Microsoft.NETCore.App.Runtime.linux-x64", "8.0.2"),
        ("Microsoft.AspNetCore.App.Runtime.linux-x64", "8.0.2"),
        ("Newtonsoft.Json", "13.0.3"),
    }
    runtime = next(p for p in result.packages if p.name.startswith("Microsoft.NETCore.App.Runtime"))
    assert runtime.purl == "pkg:nuget/Microsoft.NETCore.App.Runtime.linux-x64@8.0.2"
    assert result.warnings == ()


def test_deps_json_without_targets_keeps_every_library() -> None:
    """Nothing says which libraries ship: none is dropped."""
    doc = json.loads(_deps_json())
    del doc["targets"]
    result = run(dotnet.ANALYZER, "app/Orders.Api.deps.json", json.dumps(doc).encode())
    assert ("Microsoft.CodeAnalysis.NetAnalyzers", "8.0.0") in names_versions(result)


# ------------------------------------------------------------------------------------------ Python

PKG_INFO = b"""Metadata-Version: 1.1
Name: simplejson
Version: 3.19.2
Summary: Simple, fast, extensible JSON encoder/decoder for Python
Home-page: https://github.com/simplejson/simplejson
License: MIT License
Classifier: License :: OSI Approved :: MIT License
"""


def test_egg_zip_and_egg_folder() -> None:
    egg = _zip({"EGG-INFO/PKG-INFO": PKG_INFO, "EGG-INFO/top_level.txt": "simplejson\n", "simplejson/__init__.py": ""})
    path = "usr/lib/python3/site-packages/simplejson-3.19.2-py3.11.egg"
    (pkg,) = run(python.ANALYZER, path, egg).packages
    assert (pkg.name, pkg.version, pkg.purl, pkg.licenses) == (
        "simplejson",
        "3.19.2",
        "pkg:pypi/simplejson@3.19.2",
        ("MIT License",),
    )
    folder = "usr/lib/python3/site-packages/simplejson-3.19.2-py3.11.egg/EGG-INFO/PKG-INFO"
    assert names_versions(run(python.ANALYZER, folder, PKG_INFO)) == {("simplejson", "3.19.2")}
    assert not python.ANALYZER.wants("src/EGG-INFO/PKG-INFO", 10, 0o644)  # not inside an egg
    broken = run(python.ANALYZER, "opt/x.egg", b"PK\x03\x04 not really a zip")
    assert broken.packages == () and broken.warnings


def test_real_egg_from_setuptools(tmp_path: Path) -> None:
    """An egg built by setuptools' own ``bdist_egg``."""
    probe = subprocess.run([sys.executable, "-c", "import setuptools"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("setuptools not installed")
    (tmp_path / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='egg-demo', version='1.2.3', py_modules=['m'])\n"
    )
    (tmp_path / "m.py").write_text("x = 1\n")
    proc = subprocess.run([sys.executable, "setup.py", "-q", "bdist_egg"], cwd=tmp_path, capture_output=True)
    eggs = list((tmp_path / "dist").glob("*.egg"))
    if proc.returncode != 0 or not eggs:
        pytest.skip(f"bdist_egg unavailable: {proc.stderr[-200:]!r}")
    result = run(python.ANALYZER, f"opt/eggs/{eggs[0].name}", eggs[0].read_bytes())
    assert names_versions(result) == {("egg-demo", "1.2.3")}


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("requirements.txt", True),
        ("svc/test-requirements.txt", True),
        ("svc/requirements-dev.txt", True),
        ("svc/dev_requirements.txt", True),
        ("svc/requirements/base.txt", False),
        ("svc/notes.txt", False),
        ("app/node_modules/x/requirements.txt", False),
    ],
)
def test_any_requirements_txt_name(path: str, wanted: bool) -> None:
    assert BY_NAME["python-requirements"].wants(path, 10, 0o644) is wanted


SETUP_PY = b"""import os
from setuptools import find_packages, setup

here = os.path.abspath(os.path.dirname(__file__))

setup(
    name="inventory-service",
    version="0.4.0",
    packages=find_packages(exclude=["tests"]),
    install_requires=[
        "click==8.1.7",
        'Jinja2 == 3.1.3',
        "requests>=2.31",  # a range: nothing to report
        "PyYAML==6.0.1; python_version >= '3.8'",
    ],
    extras_require={"dev": ["pytest==8.0.0"]},
)
"""

SETUP_CFG = b"""[metadata]
name = inventory-lib
version = 2.0.0

[options]
packages = find:
python_requires = >=3.9
install_requires =
    attrs==23.2.0
    idna==3.6
    packaging

[options.extras_require]
test = pytest==8.0.0
"""


def test_setup_py_and_setup_cfg_pins(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    (tree / "src/service").mkdir(parents=True)
    (tree / "src/service/setup.py").write_bytes(SETUP_PY)
    (tree / "src/service/setup.cfg").write_bytes(SETUP_CFG)
    (tree / "src/service/test-requirements.txt").write_text("pytest==8.0.0\ncoverage[toml]==7.4.1\n")
    pkgs = [p for p in _scan(tree, tmp_path) if p.type is PackageType.PYTHON]
    got = {(p.name, p.version, p.locations[0].rsplit("/", 1)[-1]) for p in pkgs}
    assert got == {
        ("click", "8.1.7", "setup.py"),
        ("Jinja2", "3.1.3", "setup.py"),
        ("PyYAML", "6.0.1", "setup.py"),
        ("attrs", "23.2.0", "setup.cfg"),
        ("idna", "3.6", "setup.cfg"),
        ("pytest", "8.0.0", "test-requirements.txt"),
        ("coverage", "7.4.1", "test-requirements.txt"),
    }
    assert all(p.from_lockfile for p in pkgs)


# -------------------------------------------------------------------------------------------- Ruby

GEMFILE_LOCK = b"""GIT
  remote: https://github.com/rails/rails.git
  revision: 5b5f4e8a3c1e6f7a8d9b0c1d2e3f4a5b6c7d8e9f
  branch: main
  specs:
    actionpack (7.2.0.alpha)
      rack (>= 2.2.4)
    rails (7.2.0.alpha)
      actionpack (= 7.2.0.alpha)

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


def test_gemfile_lock_git_and_path_sections() -> None:
    result = run(BY_NAME["gemfile-lock"], "srv/app/Gemfile.lock", GEMFILE_LOCK)
    assert names_versions(result) == {
        ("actionpack", "7.2.0.alpha"),
        ("rails", "7.2.0.alpha"),
        ("billing", "0.3.0"),
        ("nokogiri", "1.16.2"),
        ("racc", "1.7.3"),
        ("rack", "3.0.9"),
    }


def test_real_bundler_lockfile(tmp_path: Path) -> None:
    """``bundle lock`` writes the GIT/PATH sections itself (a local path gem; no network needed)."""
    if shutil.which("bundle") is None:
        pytest.skip("bundler not installed")
    eng = tmp_path / "engines/widget"
    eng.mkdir(parents=True)
    (eng / "widget.gemspec").write_text(
        'Gem::Specification.new do |s|\n  s.name = "widget"\n  s.version = "0.9.1"\n  s.summary = "w"\n'
        '  s.authors = ["a"]\n  s.files = []\nend\n'
    )
    (tmp_path / "Gemfile").write_text('gem "widget", path: "engines/widget"\n')
    proc = subprocess.run(["bundle", "lock", "--local"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.skip(f"bundle lock failed: {proc.stderr[-300:]}")
    lock = (tmp_path / "Gemfile.lock").read_bytes()
    assert b"PATH" in lock
    assert ("widget", "0.9.1") in names_versions(run(BY_NAME["gemfile-lock"], "Gemfile.lock", lock))


# -------------------------------------------------------------------------------------------- Java


def test_pom_properties_anywhere_in_the_archive() -> None:
    boot = _zip(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\nMain-Class: org.springframework.boot.loader.JarLauncher\n",
            "BOOT-INF/classes/META-INF/maven/com.example/orders/pom.properties": (
                b"#Created by Apache Maven 3.9.6\ngroupId=com.example\nartifactId=orders\nversion=1.7.0\n"
            ),
            "BOOT-INF/classes/application.properties": b"server.port=8080\n",
        }
    )
    result = run(java.ANALYZER, "app/orders.jar", boot)
    assert {(p.name, p.version, p.purl) for p in result.packages} == {
        ("com.example:orders", "1.7.0", "pkg:maven/com.example/orders@1.7.0")
    }


@pytest.mark.parametrize(
    ("filename", "manifest", "expected"),
    [
        # No version in the file name: the manifest names the artifact.
        ("app.jar", "Implementation-Title: order-service\nImplementation-Version: 3.1.0\n", ("order-service", "3.1.0")),
        (
            "widgets.jar",
            "Bundle-SymbolicName: org.example.widgets;singleton:=true\nBundle-Version: 2.3.1\n",
            ("org.example:widgets", "2.3.1"),
        ),
        # Prose titles are not artifact ids; the file name is kept.
        (
            "commons-text-1.10.0.jar",
            "Implementation-Title: Apache Commons Text\nImplementation-Version: 1.10.0\n"
            "Bundle-SymbolicName: org.apache.commons.commons-text\n",
            ("org.apache.commons:commons-text", "1.10.0"),
        ),
    ],
)
def test_manifest_names_without_a_pom(filename: str, manifest: str, expected: tuple[str, str]) -> None:
    jar = _zip({"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\n" + manifest})
    assert names_versions(run(java.ANALYZER, f"opt/lib/{filename}", jar)) == {expected}


def test_jenkins_plugins() -> None:
    manifest = (
        b"Manifest-Version: 1.0\nShort-Name: git\nLong-Name: Jenkins Git plugin\nGroup-Id: org.jenkins-ci.plugins\n"
        b"Plugin-Version: 5.2.1\nJenkins-Version: 2.401.3\nImplementation-Version: 5.2.1\n"
    )
    inner = _zip(
        {
            "META-INF/maven/org.eclipse.jgit/org.eclipse.jgit/pom.properties": (
                b"groupId=org.eclipse.jgit\nartifactId=org.eclipse.jgit\nversion=6.7.0.202309050840-r\n"
            )
        }
    )
    hpi = _zip({"META-INF/MANIFEST.MF": manifest, "WEB-INF/lib/org.eclipse.jgit-6.7.0.jar": inner})
    for path in ("var/jenkins_home/plugins/git.jpi", "usr/share/jenkins/ref/plugins/git.hpi"):
        assert java.ANALYZER.wants(path, len(hpi), 0o644)
        assert names_versions(run(java.ANALYZER, path, hpi)) == {
            ("org.jenkins-ci.plugins:git", "5.2.1"),
            ("org.eclipse.jgit:org.eclipse.jgit", "6.7.0.202309050840-r"),
        }


POM = b"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <parent>
    <groupId>com.example</groupId>
    <artifactId>platform-parent</artifactId>
    <version>5.0.0</version>
  </parent>
  <artifactId>orders</artifactId>
  <properties>
    <jackson.version>2.16.1</jackson.version>
    <log4j.version>2.22.1</log4j.version>
  </properties>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>org.apache.logging.log4j</groupId>
        <artifactId>log4j-core</artifactId>
        <version>${log4j.version}</version>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>com.fasterxml.jackson.core</groupId>
      <artifactId>jackson-databind</artifactId>
      <version>${jackson.version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
    </dependency>
    <dependency>
      <groupId>${project.groupId}</groupId>
      <artifactId>orders-model</artifactId>
      <version>${project.version}</version>
    </dependency>
    <dependency>
      <groupId>org.springframework</groupId>
      <artifactId>spring-core</artifactId>
      <!-- managed by the parent: not knowable from this file -->
    </dependency>
    <dependency>
      <groupId>junit</groupId>
      <artifactId>junit</artifactId>
      <version>4.13.2</version>
      <scope>test</scope>
    </dependency>
  </dependencies>
</project>
"""


def test_pom_xml_in_dir_mode(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    (tree / "src/orders").mkdir(parents=True)
    (tree / "src/orders/pom.xml").write_bytes(POM)
    got = {(p.name, p.version, p.purl) for p in _scan(tree, tmp_path) if p.type is PackageType.JAVA}
    assert got == {
        ("com.example:orders", "5.0.0", "pkg:maven/com.example/orders@5.0.0"),
        (
            "com.fasterxml.jackson.core:jackson-databind",
            "2.16.1",
            "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.16.1",
        ),
        ("org.apache.logging.log4j:log4j-core", "2.22.1", "pkg:maven/org.apache.logging.log4j/log4j-core@2.22.1"),
        ("com.example:orders-model", "5.0.0", "pkg:maven/com.example/orders-model@5.0.0"),
    }


def test_pom_xml_refuses_entities() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE project [<!ENTITY a "aaaaaaaa">]><project>&a;</project>'
    result = run(BY_NAME["maven-pom"], "pom.xml", bomb)
    assert result.packages == () and "DTD" in result.warnings[0]


def test_real_poms_from_the_local_repository() -> None:
    """Every pom Maven itself downloaded into ~/.m2 parses: its own coordinates come out."""
    poms = sorted((Path.home() / ".m2/repository").rglob("*.pom"))[:40]
    if not poms:
        pytest.skip("no ~/.m2 repository on this machine")
    for pom in poms:
        version_dir = pom.parent
        artifact, version = version_dir.parent.name, version_dir.name
        result = run(BY_NAME["maven-pom"], "pom.xml", pom.read_bytes())
        assert result.warnings == (), (pom, result.warnings)
        assert any(p.name.endswith(":" + artifact) and p.version == version for p in result.packages), pom
