"""Lock files and manifests, read in ``dir`` mode only (they declare, they do not prove installation).

Each format is a pure function ``text → [(name, version)]``; :data:`LOCKFILE_ANALYZERS` ties each to
the file names it reads and the package type, and marks every package ``from_lockfile=True``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from garrison.inventory import purl
from garrison.inventory.base import AnalysisResult, FileInput, MiB
from garrison.inventory.lang.php import packages_from_list
from garrison.inventory.lang.spec import FileAnalyzer, result, text_of
from garrison.model import Package, PackageType

Pair = tuple[str, str]

_PURL: dict[PackageType, Callable[[str, str], str]] = {
    PackageType.PYTHON: purl.pypi,
    PackageType.NPM: purl.npm,
    PackageType.GO: purl.golang,
    PackageType.CARGO: purl.cargo,
    PackageType.GEM: purl.gem,
    PackageType.NUGET: purl.nuget,
}

# --- Python -------------------------------------------------------------------------------------

_REQ_PINNED = re.compile(
    r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([^\s;#,]+)\s*(?:[;#].*)?$"
)


def _toml_loads(text: str) -> dict[str, Any]:
    import tomllib  # lazy: lock files are read in dir: mode only

    return tomllib.loads(text)


def _yaml_load(text: str) -> Any:
    import yaml  # lazy, as above

    return yaml.safe_load(text)


def parse_requirements(text: str) -> Iterator[Pair]:
    """Only exact pins (``name==1.2.3``, ``name[extra]===1.2.3``); ranges say nothing installable."""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        m = _REQ_PINNED.match(line)
        if m and "*" not in m.group(2):
            yield m.group(1), m.group(2)


def parse_poetry_lock(text: str) -> Iterator[Pair]:
    for pkg in _toml_loads(text).get("package", []):
        if isinstance(pkg, dict) and pkg.get("name") and pkg.get("version"):
            yield str(pkg["name"]), str(pkg["version"])


def parse_pipfile_lock(text: str) -> Iterator[Pair]:
    doc = json.loads(text)
    for section in ("default", "develop"):
        for name, spec in (doc.get(section) or {}).items():
            version = spec.get("version", "") if isinstance(spec, dict) else ""
            if isinstance(version, str) and version.startswith("=="):
                yield name, version[2:]


# --- JavaScript ---------------------------------------------------------------------------------


def parse_package_lock(text: str) -> Iterator[Pair]:
    """npm lockfile v2/v3 (``packages`` keyed by install path) or v1 (nested ``dependencies``)."""
    doc = json.loads(text)
    packages = doc.get("packages")
    if isinstance(packages, dict):
        for key, entry in packages.items():
            if not key or not isinstance(entry, dict) or entry.get("link"):
                continue
            name = entry.get("name") or key.rsplit("node_modules/", 1)[-1]
            version = entry.get("version")
            if isinstance(name, str) and isinstance(version, str) and version:
                yield name, version
        return
    stack: list[dict[str, Any]] = [doc.get("dependencies") or {}]
    while stack:
        deps = stack.pop()
        for name, entry in deps.items():
            if not isinstance(entry, dict):
                continue
            version = entry.get("version")
            if isinstance(version, str) and version and not version.startswith(("file:", "link:")):
                yield name, version
            if isinstance(entry.get("dependencies"), dict):
                stack.append(entry["dependencies"])


def _spec_name(spec: str) -> str:
    """``@babel/core@^7.0.0`` / ``lodash@npm:^4`` → the package name."""
    spec = spec.strip().strip('"')
    at = spec.find("@", 1)
    return spec[:at] if at > 0 else spec


_YARN_VERSION = re.compile(r'^\s+version:?\s+"?([^"\s]+)"?\s*$')


def parse_yarn_lock(text: str) -> Iterator[Pair]:
    """Yarn v1 (``version "1.2.3"``) and berry (``version: 1.2.3``) blocks; workspaces are skipped."""
    name = ""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if not line[0].isspace():
            header = line.rstrip(":").strip()
            first = header.split(",")[0]
            name = "" if header == "__metadata" or "@workspace:" in first else _spec_name(first)
            continue
        if name:
            m = _YARN_VERSION.match(line)
            if m:
                if m.group(1) != "0.0.0-use.local":
                    yield name, m.group(1)
                name = ""


_PNPM_PEER = re.compile(r"\(.*$")


def _pnpm_key(key: str, slash_versions: bool) -> Pair | None:
    key = _PNPM_PEER.sub("", key.lstrip("/"))
    if slash_versions:  # lockfile v5: /name/1.2.3_peer@x or /@scope/name/1.2.3
        name, _, version = key.rpartition("/")
        version = version.split("_", 1)[0]
    else:  # v6: /name@1.2.3(peer) ; v9: name@1.2.3
        at = key.rfind("@")
        if at <= 0:
            return None
        name, version = key[:at], key[at + 1 :]
    return (name, version) if name and version else None


def parse_pnpm_lock(text: str) -> Iterator[Pair]:
    doc = _yaml_load(text)
    if not isinstance(doc, dict):
        return
    slash = str(doc.get("lockfileVersion", "")).startswith("5")
    for key, entry in (doc.get("packages") or {}).items():
        entry = entry if isinstance(entry, dict) else {}
        if entry.get("name") and entry.get("version"):
            yield str(entry["name"]), str(entry["version"])
            continue
        pair = _pnpm_key(str(key), slash)
        if pair and not pair[1].startswith(("link:", "file:")):
            yield pair


# --- Go, Rust, Ruby, .NET -----------------------------------------------------------------------

_GOMOD_REQ = re.compile(r"^(\S+)\s+(v\S+)")


def parse_go_mod(text: str) -> Iterator[Pair]:
    """``require`` lines and blocks, with ``replace`` directives applied."""
    requires: dict[str, str] = {}
    replaces: dict[str, Pair] = {}
    block = ""  # the verb of an open "require (" / "replace (" block
    for raw in text.splitlines():
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if block:
            if line == ")":
                block = ""
            else:
                _handle_go_line(block, line, requires, replaces)
            continue
        verb, _, body = line.partition(" ")
        body = body.strip()
        if body == "(":
            block = verb
        else:
            _handle_go_line(verb, body, requires, replaces)
    for mod, version in requires.items():
        yield replaces.get(mod, (mod, version))


def _handle_go_line(verb: str, body: str, requires: dict[str, str], replaces: dict[str, Pair]) -> None:
    if verb == "require":
        m = _GOMOD_REQ.match(body)
        if m:
            requires[m.group(1)] = m.group(2)
    elif verb == "replace" and "=>" in body:
        left, right = (s.split() for s in body.split("=>", 1))
        if left and len(right) == 2:  # a path replacement (no version) keeps the required version
            replaces[left[0]] = (right[0], right[1])


def parse_cargo_lock(text: str) -> Iterator[Pair]:
    for pkg in _toml_loads(text).get("package", []):
        if isinstance(pkg, dict) and pkg.get("name") and pkg.get("version"):
            yield str(pkg["name"]), str(pkg["version"])


_GEM_SPEC = re.compile(r"^    ([^\s(]+) \(([^)]+)\)$")


def parse_gemfile_lock(text: str) -> Iterator[Pair]:
    """``GEM`` → ``specs:`` entries at four spaces; platform suffixes (``-x86_64-linux``) are dropped."""
    in_gem = False
    for line in text.splitlines():
        if line and not line[0].isspace():
            in_gem = line.strip() == "GEM"
            continue
        if in_gem:
            m = _GEM_SPEC.match(line)
            if m:
                yield m.group(1), m.group(2).split("-", 1)[0]


def parse_nuget_lock(text: str) -> Iterator[Pair]:
    doc = json.loads(text)
    seen: set[Pair] = set()
    for framework in (doc.get("dependencies") or {}).values():
        if not isinstance(framework, dict):
            continue
        for name, entry in framework.items():
            if isinstance(entry, dict) and entry.get("type") != "Project" and entry.get("resolved"):
                pair = (name, str(entry["resolved"]))
                if pair not in seen:
                    seen.add(pair)
                    yield pair


# --- The declared analyzers ---------------------------------------------------------------------


def _pairs_parser(
    parse: Callable[[str], Iterator[Pair]], pkg_type: PackageType
) -> Callable[[FileInput], AnalysisResult]:
    make_purl = _PURL[pkg_type]

    def run(file: FileInput) -> AnalysisResult:
        seen: set[Pair] = set()
        packages: list[Package] = []
        for name, version in parse(text_of(file)):
            if (name, version) in seen:
                continue
            seen.add((name, version))
            packages.append(
                Package(
                    name=name,
                    version=version,
                    type=pkg_type,
                    purl=make_purl(name, version),
                    locations=(file.path,),
                    from_lockfile=True,
                )
            )
        return result(packages)

    return run


def parse_composer_lock(file: FileInput) -> AnalysisResult:
    doc = json.loads(file.content)
    packages = packages_from_list(doc.get("packages"), file.path, from_lockfile=True)
    packages += packages_from_list(doc.get("packages-dev"), file.path, from_lockfile=True)
    return result(packages)


def _is_requirements(path: str) -> bool:
    return path[path.rfind("/") + 1 :].startswith("requirements")


def _not_in_node_modules(path: str) -> bool:
    """A lock file inside an installed package belongs to that package's development, not the app."""
    return "node_modules/" not in path


def _lock(
    name: str, parse: Callable[[str], Iterator[Pair]], pkg_type: PackageType, *files: str
) -> FileAnalyzer:
    return FileAnalyzer(
        name=name,
        version=1,
        parse=_pairs_parser(parse, pkg_type),
        basenames=frozenset(files),
        path_ok=_not_in_node_modules,
        max_bytes=64 * MiB,
    )


LOCKFILE_ANALYZERS: tuple[FileAnalyzer, ...] = (
    FileAnalyzer(
        name="python-requirements",
        version=1,
        parse=_pairs_parser(parse_requirements, PackageType.PYTHON),
        suffixes=(".txt",),
        path_ok=_is_requirements,
        max_bytes=8 * MiB,
    ),
    _lock("python-poetry-lock", parse_poetry_lock, PackageType.PYTHON, "poetry.lock"),
    _lock("python-pipfile-lock", parse_pipfile_lock, PackageType.PYTHON, "Pipfile.lock"),
    _lock("npm-package-lock", parse_package_lock, PackageType.NPM, "package-lock.json"),
    _lock("yarn-lock", parse_yarn_lock, PackageType.NPM, "yarn.lock"),
    _lock("pnpm-lock", parse_pnpm_lock, PackageType.NPM, "pnpm-lock.yaml"),
    _lock("go-mod", parse_go_mod, PackageType.GO, "go.mod"),
    _lock("cargo-lock", parse_cargo_lock, PackageType.CARGO, "Cargo.lock"),
    _lock("gemfile-lock", parse_gemfile_lock, PackageType.GEM, "Gemfile.lock"),
    _lock("nuget-lock", parse_nuget_lock, PackageType.NUGET, "packages.lock.json"),
    FileAnalyzer(
        name="composer-lock",
        version=1,
        parse=parse_composer_lock,
        basenames=frozenset(("composer.lock",)),
        path_ok=_not_in_node_modules,
        max_bytes=64 * MiB,
    ),
)
