"""Posture controls: versioned YAML records in ``garrison/rules/posture/`` (one file per family),
validated by ``schema.json`` in the tests and compiled once into :class:`Control` values.

:func:`builtin_controls` loads every family file; :func:`load_controls` loads any list of files (the
other inputs' families, a user's own). :func:`select` applies ``--framework``/``--control`` and refuses
names that do not exist, so a typo can never turn into an empty assessment that passes a gate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from garrison.errors import InputError, UsageError
from garrison.model.common import Severity
from garrison.posture.expr import Compiler, ExprError, Fn
from garrison.posture.predicates import PREDICATES

#: The frameworks ``--framework`` accepts. ``pss-restricted`` includes ``pss-baseline`` (as Kubernetes
#: defines the levels).
FRAMEWORKS = ("pss-baseline", "pss-restricted", "cis-kubernetes", "cis-docker", "nsa", "mitre", "garrison")
#: The Kubernetes version pod security checks default to.
LATEST = (1, 37)


def parse_version(text: str) -> tuple[int, int]:
    """``1.25``, ``v1.25`` or ``latest`` → (1, 25)."""
    t = str(text).strip().lower()
    if t in ("", "latest"):
        return LATEST
    m = re.fullmatch(r"v?(\d+)\.(\d+)", t)
    if not m:
        raise UsageError(f"Kubernetes version {text!r}: expected latest or v1.N (e.g. v1.30)")
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True, slots=True)
class Check:
    """One compiled check of a control (a control has one, or one per version range)."""

    fails: tuple[tuple[str, Fn], ...]
    for_each: Fn | None = None
    #: Per condition (same order as ``fails``): the elements that condition visits on its own (a
    #: ``{for, fail}`` item), or None to use the check's ``for`` (or the object).
    visits: tuple[Fn | None, ...] = ()
    when: Fn | None = None
    since: tuple[int, int] = (0, 0)
    until: tuple[int, int] = (999, 999)
    expected: str = ""

    def applies_to(self, version: tuple[int, int]) -> bool:
        return self.since <= version <= self.until


@dataclass(frozen=True, slots=True)
class Control:
    """One control, compiled."""

    id: str
    title: str
    severity: Severity
    description: str
    remediation: str
    expected: str
    #: Kinds it applies to (``Workload`` = any object with a pod template, ``*`` = any).
    kinds: frozenset[str]
    #: Framework → section references.
    frameworks: dict[str, tuple[str, ...]]
    #: Tool → equivalent ids.
    equivalents: dict[str, tuple[str, ...]]
    params: dict[str, Any]
    #: The check records as written (compiled into :attr:`checks` on first use).
    check_records: tuple[dict[str, Any], ...]
    family: str
    #: The family file's version.
    version: str
    #: Where the control is defined (file name), for errors.
    origin: str = ""
    source: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)
    _compiled: list[tuple[Check, ...]] = field(default_factory=list, repr=False, compare=False, hash=False)
    _one: dict[int, Check] = field(default_factory=dict, repr=False, compare=False, hash=False)
    #: What is derived from the record and asked for at each evaluation (the check by version, the
    #: framework and equivalent references): the admission webhook evaluates one object at a time, 200
    #: times a second, and rebuilding these per call was a tenth of its CPU.
    _memo: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    @property
    def checks(self) -> tuple[Check, ...]:
        """The compiled checks. Built-in controls compile on first use (an assessment of manifests
        never compiles the 180 Docker, Dockerfile and node-file controls); a user's control file is
        compiled when it is loaded, so that its errors show at once (:func:`compile_control`)."""
        if not self._compiled:
            where = f"{self.origin}: control {self.id}"
            compiler = _compiler()
            self._compiled.append(tuple(_compile_check(c, compiler, where) for c in self.check_records))
        return self._compiled[0]

    def check_for(self, version: tuple[int, int]) -> Check | None:
        """The check that applies at ``version`` (the latest range that holds it), or None. Only that
        one is compiled (a pod security control has up to five version ranges)."""
        key = ("check", version)
        if key in self._memo:
            return self._memo[key]  # type: ignore[no-any-return]
        got = self._check_for(version)
        self._memo[key] = got
        return got

    def _check_for(self, version: tuple[int, int]) -> Check | None:
        if self._compiled:
            best: Check | None = None
            for c in self.checks:
                if c.applies_to(version) and (best is None or c.since >= best.since):
                    best = c
            return best
        pick: int | None = None
        pick_since = (0, 0)
        for i, raw in enumerate(self.check_records):
            since, until = _range(raw)
            if since <= version <= until and (pick is None or since >= pick_since):
                pick, pick_since = i, since
        if pick is None:
            return None
        got = self._one.get(pick)
        if got is None:
            got = self._one[pick] = _compile_check(
                self.check_records[pick], _compiler(), f"{self.origin}: control {self.id}"
            )
        return got

    def in_framework(self, name: str) -> bool:
        if name == "pss-restricted":
            return "pss-restricted" in self.frameworks or "pss-baseline" in self.frameworks
        return name in self.frameworks

    def framework_refs(self) -> tuple[str, ...]:
        """``framework`` or ``framework:section`` strings, for findings."""
        got = self._memo.get("frameworks")
        if got is None:
            got = self._memo["frameworks"] = tuple(
                f"{fw}:{ref}" if ref else fw for fw, refs in self.frameworks.items() for ref in (refs or ("",))
            )
        return got  # type: ignore[no-any-return]

    def equivalent_ids(self) -> tuple[str, ...]:
        got = self._memo.get("equivalents")
        if got is None:
            got = tuple(f"{tool}:{i}" for tool, ids in self.equivalents.items() for i in ids)
            self._memo["equivalents"] = got
        return got  # type: ignore[no-any-return]


def _refs(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        return {}
    return {str(k): tuple(str(x) for x in (v if isinstance(v, list) else [v] if v else [])) for k, v in value.items()}


def _range(raw: dict[str, Any]) -> tuple[tuple[int, int], tuple[int, int]]:
    """(since, until) of a check record."""
    since = parse_version(raw["since"]) if raw.get("since") else (0, 0)
    until = parse_version(raw["until"]) if raw.get("until") else (999, 999)
    return since, until


def _compile_check(raw: dict[str, Any], compiler: Compiler, where: str) -> Check:
    fails_raw = raw.get("fail")
    texts = fails_raw if isinstance(fails_raw, list) else [fails_raw]
    try:
        fails_list: list[tuple[str, Fn]] = []
        visits_list: list[Fn | None] = []
        for t in texts:
            if isinstance(t, dict):
                if raw.get("for"):
                    raise InputError(f"{where}: a condition with its own 'for' cannot be in a check with 'for'")
                if not t.get("for") or not t.get("fail") or set(t) - {"for", "fail"}:
                    raise InputError(f"{where}: a condition mapping needs exactly 'for' and 'fail'")
                fails_list.append((str(t["fail"]), compiler.compile(str(t["fail"]))))
                visits_list.append(compiler.compile(str(t["for"])))
            elif t:
                fails_list.append((str(t), compiler.compile(str(t))))
                visits_list.append(None)
        fails = tuple(fails_list)
        for_each = compiler.compile(str(raw["for"])) if raw.get("for") else None
        when = compiler.compile(str(raw["when"])) if raw.get("when") else None
    except ExprError as exc:
        raise InputError(f"{where}: {exc}") from None
    if not fails:
        raise InputError(f"{where}: a check needs 'fail'")
    return Check(
        fails=fails,
        for_each=for_each,
        visits=tuple(visits_list) if any(v is not None for v in visits_list) else (),
        when=when,
        since=_range(raw)[0],
        until=_range(raw)[1],
        expected=str(raw.get("expected") or ""),
    )


@cache
def _compiler() -> Compiler:
    return Compiler(PREDICATES)


def compile_control(
    raw: dict[str, Any], family: str, version: str, origin: str, compiler: Compiler | None = None, *, lazy: bool = False
) -> Control:
    """One control record → :class:`Control`. Raises :class:`InputError` naming the control; with
    ``lazy`` (the built-in controls) the checks compile on first use instead of now."""
    cid = str(raw.get("id") or "?")
    where = f"{origin}: control {cid}"
    for key in ("id", "title", "severity", "remediation", "kinds"):
        if not raw.get(key):
            raise InputError(f"{where}: missing {key!r}")
    try:
        severity = Severity.parse(str(raw["severity"]))
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None
    raw_checks = raw.get("checks") or ([raw["check"]] if raw.get("check") else [])
    if not raw_checks:
        raise InputError(f"{where}: needs 'check' or 'checks'")
    if not all(isinstance(c, dict) for c in raw_checks):
        raise InputError(f"{where}: each check must be a mapping")
    frameworks = _refs(raw.get("frameworks"))
    unknown = set(frameworks) - set(FRAMEWORKS)
    if unknown:
        raise InputError(f"{where}: unknown framework {sorted(unknown)[0]!r}")
    control = Control(
        id=cid,
        title=str(raw["title"]),
        severity=severity,
        description=str(raw.get("description") or ""),
        remediation=str(raw["remediation"]),
        expected=str(raw.get("expected") or ""),
        kinds=frozenset(str(k) for k in raw["kinds"]),
        frameworks=frameworks,
        equivalents=_refs(raw.get("equivalents")),
        params=dict(raw.get("params") or {}),
        check_records=tuple(raw_checks),
        family=family,
        version=version,
        origin=origin,
        source=raw,
    )
    if not lazy:
        control._compiled.append(tuple(_compile_check(c, compiler or _compiler(), where) for c in raw_checks))
    return control


def _load_yaml(text: str, origin: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise InputError(f"{origin}: not valid YAML ({' '.join(str(exc).split())})") from None


def _load_builtin_yaml(text: str, origin: str) -> Any:
    """A built-in family file through ryaml when it is installed (a third of PyYAML's time, and no
    PyYAML import on the way to an assessment); the tests check that both read every built-in file
    alike (the files keep clear of YAML 1.1 spellings)."""
    try:
        import ryaml
    except ImportError:
        return _load_yaml(text, origin)
    parser: Any = ryaml
    return parser.loads(text)


def parse_control_file(text: str, origin: str, *, builtin: bool = False) -> list[Control]:
    """A family file's YAML → its controls (compiled now; a built-in file's on first use)."""
    data = _load_builtin_yaml(text, origin) if builtin else _load_yaml(text, origin)
    return _controls_of(data, origin, builtin=builtin)


def _controls_of(data: Any, origin: str, *, builtin: bool) -> list[Control]:
    """A family file's parsed YAML → its controls."""
    if not isinstance(data, dict) or not isinstance(data.get("controls"), list):
        raise InputError(f"{origin}: expected a mapping with 'version', 'family' and 'controls'")
    family = str(data.get("family") or Path(origin).stem)
    version = str(data.get("version") or "")
    compiler = _compiler()
    return [
        compile_control(c, family, version, origin, compiler, lazy=builtin)
        for c in data["controls"]
        if isinstance(c, dict)
    ]


def _check_unique(controls: Sequence[Control]) -> None:
    seen: dict[str, str] = {}
    for c in controls:
        if c.id in seen:
            raise InputError(f"control {c.id} is defined twice ({seen[c.id]} and {c.origin})")
        seen[c.id] = c.origin


def load_controls(paths: Iterable[Path]) -> tuple[Control, ...]:
    """Controls from family files (yours, or another input's)."""
    out: list[Control] = []
    for p in paths:
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read control file {p}: {getattr(exc, 'strerror', None) or exc}") from None
        out.extend(parse_control_file(text, str(p)))
    _check_unique(out)
    return tuple(out)


def builtin_files() -> list[tuple[str, str]]:
    """(file name, text) of every built-in family file, sorted by name. Read from the package's folder
    when it is one (importing importlib.resources and zipfile cost ~6 ms of every run), else through
    importlib.resources (a zipped install)."""
    folder = Path(__file__).resolve().parent.parent / "rules" / "posture"
    if folder.is_dir():
        return sorted(
            (p.name, p.read_text(encoding="utf-8")) for p in folder.iterdir() if p.name.endswith((".yaml", ".yml"))
        )
    from importlib import resources as importlib_resources

    root = importlib_resources.files("garrison.rules") / "posture"
    out = []
    for entry in root.iterdir():
        if entry.name.endswith((".yaml", ".yml")):
            out.append((entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


#: Bumped when what the rule-data cache holds changes shape.
_RULE_CACHE_FORMAT = 1


def _rule_cache_path() -> Path:
    """``$GARRISON_CACHE_DIR`` (the ``cache_dir`` setting's variable), else the setting's default."""
    import os

    base = os.environ.get("GARRISON_CACHE_DIR")
    if not base:
        base = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "garrison")
    return Path(base) / "posture" / "builtin-rules.marshal"


def _rule_cache_key(files: Sequence[tuple[str, str]]) -> str:
    import hashlib
    import sys

    import garrison

    h = hashlib.sha256(f"{_RULE_CACHE_FORMAT}|{garrison.__version__}|{sys.version}".encode())
    for name, text in files:
        h.update(f"\0{name}\0{len(text)}\0".encode())
        h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _builtin_rule_data(files: Sequence[tuple[str, str]]) -> list[Any]:
    """The parsed YAML of the built-in family files. Parsing them was ~8 ms of every run, so the result
    is kept in garrison's cache folder, like a ``.pyc``: marshalled, keyed by a hash of the files' text,
    garrison's and Python's version, written atomically, and ignored (parsed again) when it is missing,
    stale, unreadable or corrupt. Only garrison's own rule files are cached, never anything read from
    the input."""
    import marshal

    key = _rule_cache_key(files)
    path = _rule_cache_path()
    try:
        # Our own cache folder, as trusted as the .pyc files next to garrison's modules.
        got = marshal.loads(path.read_bytes())  # noqa: S302
        if (
            isinstance(got, tuple)
            and len(got) == 2
            and got[0] == key
            and isinstance(got[1], list)
            and len(got[1]) == len(files)
        ):
            return got[1]
    except (OSError, ValueError, EOFError, TypeError):
        pass
    data = [_load_builtin_yaml(text, f"rules/posture/{name}") for name, text in files]
    try:
        blob = marshal.dumps((key, data))
    except ValueError:  # a value marshal cannot hold (none today): no cache
        return data
    import os

    from garrison._files import create_beside

    tmp = ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = create_beside(path)  # never a file that is already there, nor one a link points at
        with os.fdopen(fd, "wb") as out:
            out.write(blob)
        os.replace(tmp, path)
    except OSError:  # a read-only or full cache folder: parse each time
        import contextlib

        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return data


@cache
def builtin_controls() -> tuple[Control, ...]:
    """Every built-in control (all family files in ``rules/posture/``), compiled once per process."""
    files = builtin_files()
    out: list[Control] = []
    for (name, _text), data in zip(files, _builtin_rule_data(files), strict=True):
        out.extend(_controls_of(data, f"rules/posture/{name}", builtin=True))
    _check_unique(out)
    return tuple(out)


def select(
    controls: Sequence[Control],
    frameworks: Sequence[str] = (),
    ids: Sequence[str] = (),
) -> tuple[Control, ...]:
    """The controls in any of ``frameworks`` (all when empty), narrowed to ``ids`` when given. An
    unknown framework or control id is a :class:`UsageError` that names the close matches."""
    for fw in frameworks:
        if fw not in FRAMEWORKS:
            import difflib

            near = difflib.get_close_matches(fw, FRAMEWORKS, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise UsageError(f"unknown framework {fw!r}{hint}; known: {', '.join(FRAMEWORKS)}")
    known = {c.id for c in controls}
    for cid in ids:
        if cid not in known:
            import difflib

            near = difflib.get_close_matches(cid, sorted(known), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise UsageError(f"unknown control {cid!r}{hint}; `garrison posture controls` lists them")
    out = [c for c in controls if not frameworks or any(c.in_framework(fw) for fw in frameworks)]
    if ids:
        wanted = set(ids)
        out = [c for c in out if c.id in wanted]
    return tuple(out)
