"""Posture inputs: where resources come from. Each source yields :class:`Loaded` (resources plus a
message per document that could not be used); nothing here raises for a bad document, only for a
source that cannot be read at all.

Sources (``garrison posture SOURCE…``):

- a file or a folder (walked recursively, hidden folders skipped, symlinks not followed): YAML
  (``.yaml``/``.yml``, multi-document) and JSON (``.json``) files; ``List`` kinds are unpacked;
  Dockerfiles found by name (``Dockerfile``, ``Dockerfile.*``, ``*.Dockerfile``, ``Containerfile``) go
  to the Dockerfile input;
- ``-``: standard input (``helm template …|garrison posture -``, ``kustomize build``);
- ``snapshot:FILE``: the output of ``kubectl get … -A -o json`` (a ``List``), or YAML;
- ``cluster[:CONTEXT]`` and ``docker[:HOST]``: the live inputs, in their own modules
  (:data:`LIVE_SOURCES`).

Bad input is bounded: a file above :data:`MAX_FILE_BYTES` and a document above :data:`MAX_DOC_BYTES`
are refused, nesting deeper than :data:`MAX_DEPTH` is refused before parsing (the YAML composer
recurses), and a document whose aliases expand beyond :data:`MAX_NODES` nodes ("billion laughs") is
refused after a budgeted walk — each with a message naming the file, document and line, and the rest of
the input is still assessed.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.errors import NotFoundError, UsageError
from garrison.posture.resources import Resource

MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_DOC_BYTES = 32 * 1024 * 1024
#: Deepest bracket or indentation nesting accepted (Kubernetes objects nest about 15 deep).
MAX_DEPTH = 200
#: Most nodes one document may expand to once aliases are followed.
MAX_NODES = 2_000_000
YAML_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".json",)

#: Live sources: prefix → "module:function" taking (source text after the prefix, options dict) and
#: returning :class:`Loaded`. Imported when used, so that their dependencies stay optional.
LIVE_SOURCES = {
    "cluster": "garrison.posture.cluster:load",
    "docker": "garrison.posture.docker_host:load",
    "node": "garrison.posture.nodefiles:load",
}
#: The Dockerfile input: "module:function" taking (text, source path) and returning resources.
DOCKERFILE_PARSER = "garrison.posture.dockerfile:resources_from_dockerfile"


@dataclass
class Loaded:
    """What one or more sources gave: the resources, a message per document that was skipped, and
    counts for the report."""

    resources: list[Resource] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Documents read (including skipped ones).
    documents: int = 0
    #: Files read.
    files: int = 0
    #: Documents skipped (not an object, too large, too deep, not parseable).
    skipped: int = 0

    def extend(self, other: Loaded) -> None:
        self.resources.extend(other.resources)
        self.warnings.extend(other.warnings)
        self.documents += other.documents
        self.files += other.files
        self.skipped += other.skipped

    def kinds(self) -> Counter[str]:
        return Counter(r.kind for r in self.resources)


# ---------------------------------------------------------------------------------------------- documents

_DOC_START = re.compile(r"^---(?:[ \t].*)?$|^\.\.\.[ \t]*$", re.M)
_DEEP_INDENT = re.compile(rf"^[ \t]{{{MAX_DEPTH * 4 + 1}}}", re.M)
_DEEP_BLANKS = " " * (MAX_DEPTH * 4 + 1)
_BRACKETS = re.compile(r"[\[\]{}]")
#: A line that is neither blank nor a comment: a chunk without one is no document.
_CONTENT = re.compile(r"^[ \t]*[^#\s]", re.M)


def _doc_starts(text: str) -> list[re.Match[str]]:
    """``_DOC_START.finditer(text)``, found faster: a ``^`` pattern is tried at every character, while
    ``str.find`` jumps to the lines that start with ``---`` or ``...`` (the pattern then decides)."""
    found: list[re.Match[str]] = []
    for marker in ("---", "..."):
        after_newline = "\n" + marker
        at = 0 if text.startswith(marker) else text.find(after_newline) + 1 or -1
        while at >= 0:
            m = _DOC_START.match(text, at)
            if m is not None:
                found.append(m)
            at = text.find(after_newline, at) + 1 or -1
    if len(found) > 1:
        found.sort(key=lambda m: m.start())
    return found


def split_documents(text: str) -> Iterator[tuple[int, str]]:
    """(1-based first line, text) of each YAML document, split on ``---`` and ``...`` lines. What
    follows ``---`` on its line belongs to the next document (``--- !tag`` or ``--- {a: 1}``)."""
    pos = 0
    line = 1
    for m in _doc_starts(text):
        chunk = text[pos : m.start()]
        if _CONTENT.search(chunk):
            yield line, chunk
        line += chunk.count("\n")
        pos = m.start() + 3 if m.group().startswith("---") else m.end()
    chunk = text[pos:]
    if _CONTENT.search(chunk):
        yield line, chunk


def _too_deep(doc: str) -> str:
    """Why ``doc`` nests too deep to parse safely ("" when it does not)."""
    # Nesting never exceeds the number of opening brackets, and a deep indent needs a run of blanks
    # that long: both counted by C loops first (the Python loop was a tenth of a fast parse).
    if doc.count("[") + doc.count("{") > MAX_DEPTH:
        depth = top = 0
        for b in _BRACKETS.findall(doc):
            depth = depth + 1 if b in "[{" else max(0, depth - 1)
            top = max(top, depth)
            if top > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
    if ("\t" in doc or _DEEP_BLANKS in doc) and _DEEP_INDENT.search(doc):
        return f"indented deeper than {MAX_DEPTH * 4} columns"
    return ""


def _expanded_size(value: Any) -> int:
    """Nodes of ``value`` counting each alias again (as every consumer walking it would), stopping
    once the budget is spent."""
    budget = MAX_NODES
    stack = [value]
    n = 0
    while stack:
        v = stack.pop()
        n += 1
        if n > budget:
            return n
        if isinstance(v, dict):
            stack.extend(v.values())
            n += len(v)
        elif isinstance(v, list):
            stack.extend(v)
    return n


def _yaml_loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml_doc(doc: str) -> Any:
    import yaml

    return yaml.load(doc, Loader=_yaml_loader())  # noqa: S506 - CSafeLoader/SafeLoader


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    """The objects of a document: itself, or the items of a ``List`` kind (``kubectl get -o json``)."""
    if not isinstance(value, dict):
        return
    kind = value.get("kind")
    items = value.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        for item in items:
            if isinstance(item, dict):
                yield from _objects(item)
        return
    yield value


def _is_object(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("kind"), str) and bool(value.get("kind"))


def parse_text(text: str, source: str, *, json_hint: bool = False, cluster: str = "") -> Loaded:
    """Every object of a YAML or JSON text, with a message per document that is not one."""
    out = Loaded(files=1)
    stripped = text.lstrip()
    if json_hint or stripped.startswith(("{", "[")):
        try:
            value = json.loads(text)
        except RecursionError:
            out.documents, out.skipped = 1, 1
            out.warnings.append(f"{source}: nested too deep to read, skipped")
            return out
        except json.JSONDecodeError as exc:
            if json_hint or not stripped.startswith(("{", "[")):
                out.documents, out.skipped = 1, 1
                out.warnings.append(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}), skipped")
                return out
        else:
            out.documents = 1
            _add(out, value, source, 1, 0, cluster)
            return out
    docs = list(split_documents(text))
    fast = _fast_load(text, docs)
    if fast is not None:
        for index, ((line, doc), value) in enumerate(zip(docs, fast, strict=True)):
            out.documents += 1
            _add(out, value, source, _first_content_line(doc, line), index, cluster)
        return out
    for index, (line, doc) in enumerate(docs):
        out.documents += 1
        where = f"{source}: document {index + 1} (line {line})"
        if len(doc) > MAX_DOC_BYTES:
            out.skipped += 1
            out.warnings.append(f"{where}: larger than {MAX_DOC_BYTES // (1024 * 1024)} MiB, skipped")
            continue
        why = _too_deep(doc)
        if why:
            out.skipped += 1
            out.warnings.append(f"{where}: {why}, skipped")
            continue
        try:
            value = _load_yaml_doc(doc)
        except RecursionError:
            out.skipped += 1
            out.warnings.append(f"{where}: nested too deep to read, skipped")
            continue
        except Exception as exc:  # any parser error is one bad document
            out.skipped += 1
            msg = " ".join(str(exc).split())[:300]
            out.warnings.append(f"{where}: not valid YAML ({msg}), skipped")
            continue
        if value is None:
            out.documents -= 1
            continue
        if _ANCHOR.search(doc) and _expanded_size(value) > MAX_NODES:
            out.skipped += 1
            out.warnings.append(
                f"{where}: expands to more than {MAX_NODES:,} nodes through aliases (a YAML alias bomb?), skipped"
            )
            continue
        _add(out, value, source, _first_content_line(doc, line), index, cluster)
    return out


#: YAML 1.1 spellings that Kubernetes (go-yaml) reads as booleans or octal numbers and a YAML 1.2
#: parser does not, merge keys, anchors and tags: any of them sends the text to PyYAML.
_NEEDS_PYYAML = re.compile(
    # The lookahead (the alternatives' first characters) only makes the common miss fail sooner.
    r"[:\-\[,][ \t]*(?=[yYnNoO0-9+\-])"
    r"(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|0[0-7]+|0o[0-7]+|[-+]?\d[\d_]*:[0-5]?\d)"
    r"[ \t]*(?:[,\]}#]|$)",
    re.M,
)
_ANCHOR = re.compile(r"(?:^|[\s\[{,:-])&[^\s]")


def _fast_parser() -> Any:
    try:
        import ryaml  # optional: a Rust YAML parser, 3x faster than PyYAML with libyaml
    except ImportError:
        return None
    return ryaml


def _fast_load(text: str, docs: list[tuple[int, str]]) -> list[Any] | None:
    """Every document at once with the fast parser, when it is installed and gives exactly what
    PyYAML would: no YAML 1.1 booleans/octals, merge keys, anchors or tags, every document within
    the limits and one value per document. None = take the careful path (a message per document)."""
    parser = _fast_parser()
    if parser is None:
        return _pyyaml_all(text, docs)
    if "<<" in text or " &" in text or " !" in text or "\t" in text or _NEEDS_PYYAML.search(text):
        return None
    if any(len(d) > MAX_DOC_BYTES for _, d in docs) or _too_deep(text):
        return None
    try:
        values = [v for v in parser.loads_all(text) if v is not None]
    except Exception:  # any failure: the careful path reports it per document
        return None
    return values if len(values) == len(docs) else None


def _pyyaml_all(text: str, docs: list[tuple[int, str]]) -> list[Any] | None:
    """Without the fast parser: the whole text in one PyYAML pass (one loader, not one per document)
    when nothing in it needs a per-document limit; None = the careful path."""
    if _ANCHOR.search(text) or any(len(d) > MAX_DOC_BYTES for _, d in docs) or _too_deep(text):
        return None
    import yaml

    try:
        values = [v for v in yaml.load_all(text, Loader=_yaml_loader()) if v is not None]
    except Exception:  # any failure: the careful path reports it per document
        return None
    return values if len(values) == len(docs) else None


def _first_content_line(doc: str, line: int) -> int:
    m = _CONTENT.search(doc)
    return line + doc.count("\n", 0, m.start()) if m else line


def _add(out: Loaded, value: Any, source: str, line: int, index: int, cluster: str) -> None:
    found = False
    for obj in _objects(value):
        if not _is_object(obj):
            continue
        found = True
        out.resources.append(Resource(obj=obj, source=source, line=line, document=index, cluster=cluster))
    if not found:
        what = (
            "a list" if isinstance(value, list) else "a mapping without kind" if isinstance(value, dict) else "a scalar"
        )
        if isinstance(value, dict) and isinstance(value.get("items"), list):
            what = "an empty list"
            return
        out.skipped += 1
        out.warnings.append(f"{source}: document {index + 1} (line {line}): not a Kubernetes object ({what}), skipped")


# ---------------------------------------------------------------------------------------------- files


def _is_dockerfile(name: str) -> bool:
    return name in ("Dockerfile", "Containerfile") or name.startswith("Dockerfile.") or name.endswith(".Dockerfile")


def _read(path: Path, shown: str) -> tuple[str | None, str]:
    """(text, "") or (None, message)."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, f"{shown}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, skipped"
        data = path.read_bytes()
    except OSError as exc:
        return None, f"{shown}: cannot read ({exc.strerror}), skipped"
    if b"\0" in data[:8192]:
        return None, f"{shown}: a binary file, skipped"
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError as exc:
        return None, f"{shown}: not UTF-8 text (byte {exc.start}), skipped"


def _dockerfile(text: str, source: str) -> Loaded:
    out = Loaded(files=1, documents=1)
    mod_name, _, fn_name = DOCKERFILE_PARSER.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError:
        out.skipped = 1
        out.warnings.append(f"{source}: Dockerfile checks are not available in this build, skipped")
        return out
    try:
        out.resources.extend(getattr(mod, fn_name)(text, source))
    except ValueError as exc:  # the parser's DockerfileError names the file and line
        out.skipped = 1
        out.warnings.append(f"{exc}, skipped")
    return out


def load_file(path: Path, shown: str | None = None, *, cluster: str = "") -> Loaded:
    """One file (YAML, JSON or a Dockerfile by name)."""
    shown = shown or str(path)
    text, why = _read(path, shown)
    if text is None:
        return Loaded(files=1, documents=1, skipped=1, warnings=[why])
    if _is_dockerfile(path.name):
        return _dockerfile(text, shown)
    return parse_text(text, shown, json_hint=path.suffix.lower() in JSON_SUFFIXES, cluster=cluster)


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.is_symlink():
                continue
            if name.lower().endswith(YAML_SUFFIXES + JSON_SUFFIXES) or _is_dockerfile(name):
                yield p


def load_path(path: Path) -> Loaded:
    """A file, or every manifest below a folder."""
    if not path.exists():
        raise NotFoundError(f"{path}: no such file or directory")
    if path.is_dir():
        out = Loaded()
        for p in _walk(path):
            out.extend(load_file(p))
        return out
    return load_file(path)


def _live(spec: str) -> bool:
    """Is ``spec`` a live source (``cluster[:CONTEXT]``, ``docker[:HOST]``, ``node:…``), not a path?"""
    prefix, sep, _ = spec.partition(":")
    return prefix in LIVE_SOURCES and bool(sep or spec == prefix) and not Path(spec).exists()


def is_local(spec: str) -> bool:
    """Is ``spec`` read from local files only (a file, a folder, ``snapshot:FILE``): not standard input,
    not a live source? (What :mod:`garrison.posture.readahead` may read in a second process.)"""
    return spec != "-" and (spec.startswith("snapshot:") or not _live(spec))


def local_files(spec: str) -> list[tuple[Path, str]] | None:
    """The files a local source is read from, in the order :func:`load_source` reads them, each with the
    name its findings and messages use; None when ``spec`` is not local or not there (then
    :func:`load_source` says why). Reading each with :func:`load_file` and joining the results in this
    order gives what :func:`load_source` gives."""
    if not is_local(spec):
        return None
    prefix, sep, rest = spec.partition(":")
    if sep and prefix == "snapshot":
        return [(Path(rest), rest)] if rest and Path(rest).is_file() else None
    path = Path(spec)
    if not path.exists():
        return None
    if path.is_dir():
        return [(p, str(p)) for p in _walk(path)]
    return [(path, str(path))]


def load_source(spec: str, options: dict[str, Any] | None = None) -> Loaded:
    """One SOURCE as the user typed it."""
    if spec == "-":
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            return Loaded(
                files=1,
                documents=1,
                skipped=1,
                warnings=[f"-: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, skipped"],
            )
        if b"\0" in data[:8192]:
            return Loaded(files=1, documents=1, skipped=1, warnings=["-: binary input, skipped"])
        return parse_text(data.decode("utf-8-sig", errors="replace"), "-")
    prefix, sep, rest = spec.partition(":")
    if sep and prefix == "snapshot":
        if not rest:
            raise UsageError("snapshot: needs a file (snapshot:FILE, the output of kubectl get … -A -o json)")
        p = Path(rest)
        if not p.is_file():
            raise NotFoundError(f"{spec}: no such file")
        return load_file(p, rest)
    if _live(spec):
        mod_name, _, fn_name = LIVE_SOURCES[prefix].partition(":")
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError:
            raise UsageError(f"{spec}: the {prefix} input is not available in this build") from None
        loaded: Loaded = getattr(mod, fn_name)(rest, options or {})
        return loaded
    return load_path(Path(spec))
