"""Installed language packages: Python dist-info/egg-info, npm node_modules, gems, .NET deps, Composer.

Python and npm use this machine's real installed trees (the test venv's site-packages, Debian's
dist-packages, the npm that ships with node); the others use real-format files written inline.
"""

from __future__ import annotations

import json
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
from tests.inventory.invutil import names_versions, run

from garrison.inventory.base import FileInput
from garrison.inventory.lang import dotnet, npm, php, python, ruby
from garrison.model import PackageType

# ------------------------------------------------------------------ Python


def test_real_dist_info_in_site_packages() -> None:
    """Every dist-info METADATA of the test venv, against what importlib.metadata says."""
    purelib = Path(sysconfig.get_paths()["purelib"])
    checked = 0
    for dist in metadata.distributions(path=[str(purelib)]):
        meta = Path(str(dist._path)) / "METADATA"  # type: ignore[attr-defined]
        if not meta.exists() or not str(meta.parent).endswith(".dist-info"):
            continue
        rel = str(meta.relative_to("/"))
        result = run(python.ANALYZER, rel, meta.read_bytes())
        (pkg,) = result.packages
        assert (pkg.name, pkg.version) == (dist.metadata["Name"], dist.version)
        assert pkg.type is PackageType.PYTHON and pkg.locations == (rel,)
        checked += 1
    assert checked > 10


def test_known_dist_purl_and_license() -> None:
    meta = Path(sysconfig.get_paths()["purelib"]) / "packageurl_python-0.17.6.dist-info" / "METADATA"
    if not meta.exists():
        pytest.skip("packageurl-python 0.17.6 not in this venv")
    (pkg,) = run(
        python.ANALYZER,
        "usr/lib/python3/site-packages/" + str(meta.relative_to(meta.parents[1])),
        meta.read_bytes(),
    ).packages
    assert pkg.purl == "pkg:pypi/packageurl-python@0.17.6"
    assert pkg.licenses


def test_real_egg_info() -> None:
    """Debian's python3 packages install egg-info directories (PKG-INFO inside)."""
    found = sorted(Path("/usr/lib/python3/dist-packages").glob("*.egg-info/PKG-INFO"))
    if not found:
        pytest.skip("no egg-info in /usr/lib/python3/dist-packages on this machine")
    for p in found[:20]:
        result = run(python.ANALYZER, str(p.relative_to("/")), p.read_bytes())
        (pkg,) = result.packages
        assert pkg.name and pkg.version
        assert p.parent.name.lower().replace("-", "_").startswith(pkg.name.lower().replace("-", "_")[:3])


PKG_INFO = b"""Metadata-Version: 1.1
Name: Jinja2
Version: 2.10
Summary: A small but fast and easy to use stand-alone template engine written in pure python.
License: BSD
Description: Jinja2
        ~~~~~~
        Jinja2 is a template engine written in pure Python.

Platform: UNKNOWN
"""


@pytest.mark.parametrize(
    "path",
    [
        "usr/lib/python3/dist-packages/Jinja2-2.10.egg-info",
        "usr/lib/python3/dist-packages/Jinja2-2.10.egg-info/PKG-INFO",
        "app/.venv/lib/python3.11/site-packages/Jinja2-2.10.dist-info/METADATA",
    ],
)
def test_metadata_layouts(path: str) -> None:
    (pkg,) = run(python.ANALYZER, path, PKG_INFO).packages
    assert (pkg.name, pkg.version, pkg.purl, pkg.licenses) == (
        "Jinja2",
        "2.10",
        "pkg:pypi/jinja2@2.10",
        ("BSD",),
    )


def test_python_name_normalized_in_purl_and_classifier_license() -> None:
    meta = (
        b"Metadata-Version: 2.1\nName: Foo_Bar.baz\nVersion: 1.0\nClassifier: License :: OSI Approved :: MIT License\n"
    )
    (pkg,) = run(python.ANALYZER, "x/Foo_Bar.baz-1.0.dist-info/METADATA", meta).packages
    assert pkg.purl == "pkg:pypi/foo-bar-baz@1.0"
    assert pkg.licenses == ("MIT License",)


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("a/b.dist-info/METADATA", True),
        ("a/METADATA", False),
        ("a/b.egg-info/PKG-INFO", True),
        ("a/PKG-INFO", False),
        ("a/b.egg-info", True),
        ("a/b.dist-info/RECORD", False),
    ],
)
def test_python_wants(path: str, wanted: bool) -> None:
    assert python.ANALYZER.wants(path, 10, 0o644) is wanted


def test_python_garbage() -> None:
    r = python.ANALYZER.analyze(FileInput("a/b.dist-info/METADATA", b"\xff\xfe\x00garbage"))
    assert r.packages == () and r.warnings


# ------------------------------------------------------------------ npm

NPM_ROOT = Path("/usr/lib/node_modules/npm")


def test_real_node_modules_tree() -> None:
    """npm's own bundled node_modules: every package.json directly in a package dir, scoped ones too."""
    if not (NPM_ROOT / "node_modules").is_dir():
        pytest.skip("npm's bundled node_modules not found")
    expected = set()
    seen = 0
    for pj in NPM_ROOT.rglob("package.json"):
        rel = str(pj.relative_to("/"))
        if not npm.ANALYZER.wants(rel, pj.stat().st_size, 0o644):
            continue
        seen += 1
        doc = json.loads(pj.read_text())
        result = npm.ANALYZER.analyze(FileInput(rel, pj.read_bytes()))
        if doc.get("name") and doc.get("version"):
            expected.add((doc["name"], doc["version"]))
            assert names_versions(result) == {(doc["name"], doc["version"])}
        else:
            assert result.packages == ()
    assert seen > 50
    scoped = [n for n, _ in expected if n.startswith("@")]
    assert scoped, "npm bundles @npmcli/* packages"
    agent = NPM_ROOT / "node_modules/@npmcli/agent/package.json"
    if agent.exists():
        (pkg,) = run(npm.ANALYZER, str(agent.relative_to("/")), agent.read_bytes()).packages
        assert pkg.purl.startswith("pkg:npm/%40npmcli/agent@")


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("app/node_modules/lodash/package.json", True),
        ("app/node_modules/@babel/core/package.json", True),
        ("app/node_modules/a/node_modules/b/package.json", True),
        ("app/package.json", True),  # the application itself, as Trivy and Syft report it
        ("app/node_modules/lodash/test/fixtures/package.json", False),
        ("app/node_modules/@babel/package.json", False),
        ("app/node_modules/package.json", False),
    ],
)
def test_npm_wants(path: str, wanted: bool) -> None:
    assert npm.ANALYZER.wants(path, 10, 0o644) is wanted


@pytest.mark.parametrize(
    "content",
    [b'{"name": "x"}', b'{"version": "1.0.0"}', b"[1, 2]", b"{not json", b'{"name": 5, "version": "1"}'],
)
def test_npm_incomplete_manifests_are_skipped(content: bytes) -> None:
    assert npm.ANALYZER.analyze(FileInput("node_modules/x/package.json", content)).packages == ()


def test_npm_license_forms() -> None:
    doc = b'{"name": "minimist", "version": "1.2.0", "license": {"type": "MIT"}}'
    (pkg,) = run(npm.ANALYZER, "node_modules/minimist/package.json", doc).packages
    assert (pkg.purl, pkg.licenses) == ("pkg:npm/minimist@1.2.0", ("MIT",))


# ------------------------------------------------------------------ Ruby

# What RubyGems writes to specifications/ on install (rack 2.2.3, abridged).
GEMSPEC = b"""# -*- encoding: utf-8 -*-
# stub: rack 2.2.3 ruby lib

Gem::Specification.new do |s|
  s.name = "rack".freeze
  s.version = "2.2.3"

  s.required_rubygems_version = Gem::Requirement.new(">= 0".freeze)
  s.require_paths = ["lib".freeze]
  s.authors = ["Leah Neukirchen".freeze]
  s.licenses = ["MIT".freeze]
  s.summary = "a modular Ruby webserver interface".freeze
end
"""


def test_gemspec() -> None:
    path = "usr/local/bundle/specifications/rack-2.2.3.gemspec"
    (pkg,) = run(ruby.ANALYZER, path, GEMSPEC).packages
    assert (pkg.name, pkg.version, pkg.purl, pkg.licenses) == (
        "rack",
        "2.2.3",
        "pkg:gem/rack@2.2.3",
        ("MIT",),
    )
    assert not ruby.ANALYZER.wants("src/rack/rack.gemspec", 10, 0o644)
    assert not ruby.ANALYZER.wants("src/nospecifications/rack.gemspec", 10, 0o644)
    assert ruby.ANALYZER.wants("usr/local/lib/ruby/gems/3.2.0/specifications/default/json-2.6.3.gemspec", 10, 0o644)
    versioned = GEMSPEC.replace(b's.version = "2.2.3"', b's.version = Gem::Version.new("2.2.3")')
    assert run(ruby.ANALYZER, path, versioned).packages[0].version == "2.2.3"
    assert ruby.ANALYZER.analyze(FileInput(path, b"garbage")).warnings


# ------------------------------------------------------------------ .NET

DEPS_JSON = b"""{
  "runtimeTarget": {"name": ".NETCoreApp,Version=v6.0", "signature": ""},
  "targets": {".NETCoreApp,Version=v6.0": {"app/1.0.0": {"dependencies": {"Newtonsoft.Json": "13.0.1"}}}},
  "libraries": {
    "app/1.0.0": {"type": "project", "serviceable": false, "sha512": ""},
    "Newtonsoft.Json/13.0.1": {"type": "package", "serviceable": true,
      "sha512": "sha512-ppPFpBcvxdsfUonNcvITKqLl3bqxWbDCZIzDWHzjpdAHRFfZe0Dw9HmA0+za13IdyrgJ",
      "path": "newtonsoft.json/13.0.1", "hashPath": "newtonsoft.json.13.0.1.nupkg.sha512"},
    "System.Text.Json/4.7.0": {"type": "package", "serviceable": true}
  }
}"""


def test_deps_json() -> None:
    result = run(dotnet.ANALYZER, "app/app.deps.json", DEPS_JSON)
    assert names_versions(result) == {("Newtonsoft.Json", "13.0.1"), ("System.Text.Json", "4.7.0")}
    assert {p.purl for p in result.packages} >= {"pkg:nuget/Newtonsoft.Json@13.0.1"}
    assert dotnet.ANALYZER.analyze(FileInput("a.deps.json", b"{oops")).warnings


# ------------------------------------------------------------------ PHP

INSTALLED_V2 = b"""{
    "packages": [
        {"name": "guzzlehttp/guzzle", "version": "7.4.0", "version_normalized": "7.4.0.0", "type": "library",
         "license": ["MIT"]},
        {"name": "monolog/monolog", "version": "2.3.5", "type": "library"},
        {"name": "broken"}
    ],
    "dev": true,
    "dev-package-names": []
}"""
INSTALLED_V1 = b"""[
    {"name": "symfony/http-foundation", "version": "v5.4.0", "type": "library", "license": ["MIT"]}
]"""


def test_composer_installed_v1_and_v2() -> None:
    path = "var/www/vendor/composer/installed.json"
    v2 = run(php.ANALYZER, path, INSTALLED_V2)
    assert names_versions(v2) == {("guzzlehttp/guzzle", "7.4.0"), ("monolog/monolog", "2.3.5")}
    guzzle = next(p for p in v2.packages if p.name == "guzzlehttp/guzzle")
    assert (guzzle.purl, guzzle.licenses) == ("pkg:composer/guzzlehttp/guzzle@7.4.0", ("MIT",))
    v1 = run(php.ANALYZER, path, INSTALLED_V1)
    assert names_versions(v1) == {("symfony/http-foundation", "v5.4.0")}
    assert not php.ANALYZER.wants("var/www/installed.json", 10, 0o644)
