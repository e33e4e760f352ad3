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

_REQ_PINNED = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([^\s;#,]+)\s*(?:[;#].*)?$")


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


_SETUP_PY_REQUIRES = re.compile(r"install_requires\s*=\s*\[(.*?)\]", re.S)
_QUOTED = re.compile(r"""(?:'([^'\n]*)'|"([^"\n]*)")""")


def parse_setup_py(text: str) -> Iterator[Pair]:
    """Exact pins in the ``install_requires=[...]`` list of a ``setup.py`` (string literals only; the
    file is never run)."""
    for block in _SETUP_PY_REQUIRES.findall(text):
        for single, double in _QUOTED.findall(block):
            yield from parse_requirements(single or double)


def parse_setup_cfg(text: str) -> Iterator[Pair]:
    """Exact pins in ``[options] install_requires`` of a ``setup.cfg`` (one requirement a line)."""
    import configparser  # lazy: dir: mode only

    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.read_string(text)
    if cp.has_option("options", "install_requires"):
        yield from parse_requirements(cp.get("options", "install_requires"))


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
    """The module itself (without a version, as Trivy reports it), then ``require`` lines and blocks
    with ``replace`` directives applied."""
    requires: dict[str, str] = {}
    module = ""
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
        elif verb == "module" and body:
            module = body.strip('"')
        else:
            _handle_go_line(verb, body, requires, replaces)
    if module:
        yield module, ""
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


#: Sections whose ``specs:`` list resolved gems: from a gem server, a git checkout, a local path.
_GEM_SOURCES = frozenset(("GEM", "GIT", "PATH"))


def parse_gemfile_lock(text: str) -> Iterator[Pair]:
    """``specs:`` entries at four spaces of the ``GEM``, ``GIT`` and ``PATH`` sections; platform
    suffixes (``-x86_64-linux``) are dropped."""
    in_gem = False
    for line in text.splitlines():
        if line and not line[0].isspace():
            in_gem = line.strip() in _GEM_SOURCES
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


# --- Maven --------------------------------------------------------------------------------------

_POM_PROPERTY = re.compile(r"\$\{([^}]+)\}")


def _pom_children(elem: Any, ns: str) -> dict[str, str]:
    return {c.tag[len(ns) :]: (c.text or "").strip() for c in elem if isinstance(c.tag, str)}


def parse_pom(file: FileInput) -> AnalysisResult:
    """A ``pom.xml``: the project itself and its dependencies whose versions the file settles (literal,
    a ``${property}`` of its own or of the project, or its ``dependencyManagement``), as Trivy reads a
    pom without a repository. ``test`` and ``provided`` scopes are not part of the application."""
    import xml.etree.ElementTree as ET  # lazy: dir: mode only

    if b"<!DOCTYPE" in file.content or b"<!ENTITY" in file.content:
        # A pom has no DTD; refusing one leaves no entity to expand (no billion laughs, no XXE).
        return AnalysisResult(warnings=(f"{file.path}: pom.xml with a DTD skipped",))
    try:
        root = ET.fromstring(file.content)  # noqa: S314  (no DTD, checked above)
    except ET.ParseError as exc:
        return AnalysisResult(warnings=(f"{file.path}: invalid pom.xml: {exc}",))
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    if root.tag != ns + "project":
        return AnalysisResult()
    top = _pom_children(root, ns)
    parent_elem = root.find(ns + "parent")
    parent = _pom_children(parent_elem, ns) if parent_elem is not None else {}
    props_elem = root.find(ns + "properties")
    props = _pom_children(props_elem, ns) if props_elem is not None else {}
    group = top.get("groupId") or parent.get("groupId", "")
    version = top.get("version") or parent.get("version", "")
    props.update(
        {
            "project.groupId": group,
            "project.artifactId": top.get("artifactId", ""),
            "project.version": version,
            "pom.version": version,
            "version": version,
            "project.parent.version": parent.get("version", ""),
            "project.parent.groupId": parent.get("groupId", ""),
        }
    )

    def resolve(value: str) -> str:
        for _ in range(8):  # properties may refer to properties; never loop forever
            new = _POM_PROPERTY.sub(lambda m: props.get(m.group(1), m.group(0)), value)
            if new == value:
                break
            value = new
        return "" if "${" in value else value

    managed: dict[tuple[str, str], str] = {}
    for dep in root.iterfind(f"{ns}dependencyManagement/{ns}dependencies/{ns}dependency"):
        d = _pom_children(dep, ns)
        managed[(resolve(d.get("groupId", "")), resolve(d.get("artifactId", "")))] = resolve(d.get("version", ""))
    packages: list[Package] = []
    seen: set[tuple[str, str, str]] = set()

    def add(g: str, a: str, v: str) -> None:
        if a and v and (g, a, v) not in seen:
            seen.add((g, a, v))
            packages.append(
                Package(
                    name=f"{g}:{a}" if g else a,
                    version=v,
                    type=PackageType.JAVA,
                    purl=purl.maven(g, a, v),
                    locations=(file.path,),
                    namespace=g,
                    from_lockfile=True,
                )
            )

    add(resolve(group), resolve(top.get("artifactId", "")), resolve(version))
    for dep in root.iterfind(f"{ns}dependencies/{ns}dependency"):
        d = _pom_children(dep, ns)
        if d.get("scope") in ("test", "provided", "system") or d.get("optional") == "true":
            continue
        g, a = resolve(d.get("groupId", "")), resolve(d.get("artifactId", ""))
        add(g, a, resolve(d.get("version", "")) or managed.get((g, a), ""))
    return result(packages)


# --- The declared analyzers ---------------------------------------------------------------------


def _pairs_parser(
    parse: Callable[[str], Iterator[Pair]], pkg_type: PackageType
) -> Callable[[FileInput], AnalysisResult]:
    make_purl = _PURL[pkg_type]

    def run(file: FileInput) -> AnalysisResult:
        if b"\0" in file.content:
            # Every format here is text; a NUL byte means this is something else under that name.
            return AnalysisResult(warnings=(f"{file.path}: binary content, not a {pkg_type.value} lock file",))
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
    """Any ``*requirements*.txt`` (``requirements.txt``, ``test-requirements.txt``, ``requirements-dev.txt``)."""
    return "requirements" in path[path.rfind("/") + 1 :] and "node_modules/" not in path


def _not_in_node_modules(path: str) -> bool:
    """A lock file inside an installed package belongs to that package's development, not the app."""
    return "node_modules/" not in path


def _lock(
    name: str, parse: Callable[[str], Iterator[Pair]], pkg_type: PackageType, *files: str, version: int = 1
) -> FileAnalyzer:
    return FileAnalyzer(
        name=name,
        version=version,
        parse=_pairs_parser(parse, pkg_type),
        basenames=frozenset(files),
        path_ok=_not_in_node_modules,
        max_bytes=64 * MiB,
    )


LOCKFILE_ANALYZERS: tuple[FileAnalyzer, ...] = (
    FileAnalyzer(
        name="python-requirements",
        version=2,
        parse=_pairs_parser(parse_requirements, PackageType.PYTHON),
        suffixes=(".txt",),
        path_ok=_is_requirements,
        max_bytes=8 * MiB,
    ),
    _lock("python-setup-py", parse_setup_py, PackageType.PYTHON, "setup.py"),
    _lock("python-setup-cfg", parse_setup_cfg, PackageType.PYTHON, "setup.cfg"),
    _lock("python-poetry-lock", parse_poetry_lock, PackageType.PYTHON, "poetry.lock"),
    _lock("python-pipfile-lock", parse_pipfile_lock, PackageType.PYTHON, "Pipfile.lock"),
    _lock("npm-package-lock", parse_package_lock, PackageType.NPM, "package-lock.json"),
    _lock("yarn-lock", parse_yarn_lock, PackageType.NPM, "yarn.lock"),
    _lock("pnpm-lock", parse_pnpm_lock, PackageType.NPM, "pnpm-lock.yaml"),
    _lock("go-mod", parse_go_mod, PackageType.GO, "go.mod", version=2),
    _lock("cargo-lock", parse_cargo_lock, PackageType.CARGO, "Cargo.lock"),
    _lock("gemfile-lock", parse_gemfile_lock, PackageType.GEM, "Gemfile.lock", version=2),
    _lock("nuget-lock", parse_nuget_lock, PackageType.NUGET, "packages.lock.json"),
    FileAnalyzer(
        name="maven-pom",
        version=1,
        parse=parse_pom,
        basenames=frozenset(("pom.xml",)),
        path_ok=_not_in_node_modules,
        max_bytes=8 * MiB,
    ),
    FileAnalyzer(
        name="composer-lock",
        version=1,
        parse=parse_composer_lock,
        basenames=frozenset(("composer.lock",)),
        path_ok=_not_in_node_modules,
        max_bytes=64 * MiB,
    ),
)
