"""Secret rules: loading the built-in YAML and a user's file, and compiling them once.

The built-in rules are data (``garrison/rules/secrets/builtin.yaml``, validated against ``schema.json``
in CI). A user file (``--secret-config``) adds rules, replaces built-in ones by id, disables them and
adds allow rules; it may be a Trivy ``trivy-secret.yaml`` (keys ``rules``, ``disable-rules``,
``allow-rules``, ``disable-allow-rules``, ``enable-builtin-rules``, ``exclude-block``) and is validated
against the same schema. Trivy writes Go (RE2) regexes; :func:`go_to_python` turns the constructs
Python spells differently (flags in the middle of a pattern, ``\\z``) into Python's.

Compiled rules are immutable and shared by every scan; :attr:`SecretRules.digest` identifies the whole
effective rule set (built-in version plus user file), and the analyzer derives its cache version from it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from garrison.errors import InputError
from garrison.model.common import Severity

#: Where the packaged rule data lives (``garrison/rules/secrets/``, package data next to this package).
RULES_DIR = Path(__file__).resolve().parent.parent / "rules" / "secrets"
BUILTIN_FILE = RULES_DIR / "builtin.yaml"
SCHEMA_FILE = RULES_DIR / "schema.json"
#: The named group that holds the secret when a rule does not say otherwise (Trivy's default too).
DEFAULT_GROUP = "secret"
#: Findings of rules in this category give way to a specific rule's finding on the same text.
GENERIC_CATEGORY = "Generic"


@dataclass(frozen=True, slots=True)
class AllowRule:
    """A reason not to report: a file ``path`` pattern (the file is not scanned) and/or a ``regex`` that
    drops a match whose secret it finds. The two are independent tests, as in Trivy."""

    id: str
    description: str = ""
    #: Matched (``search``) against the path relative to the root, without a leading ``/``.
    path: re.Pattern[str] | None = None
    #: Searched in the secret (the secret group's text).
    regex: re.Pattern[str] | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled secret rule."""

    id: str
    category: str
    title: str
    severity: Severity
    #: The regex (already in Python's syntax), compiled on first use: see :attr:`pattern`.
    source: bytes
    #: Lower-case literals; the rule runs on a file only if its lower-cased content has one. Empty: always.
    keywords: tuple[bytes, ...]
    #: Name of the group holding the secret; the whole match when the pattern has no such group.
    group: str = DEFAULT_GROUP
    #: Minimum Shannon entropy (bits per character) of the secret; 0 = no check.
    entropy: float = 0.0
    #: Only files whose path matches (any of) these; empty = every file.
    paths: tuple[re.Pattern[str], ...] = ()
    allow: tuple[AllowRule, ...] = ()
    exclude_blocks: tuple[re.Pattern[bytes], ...] = ()
    #: Run over the whole file. Otherwise only over the lines holding one of the keywords (built-in
    #: rules whose matches stay on one line); user rules default to the whole file, as in Trivy.
    multiline: bool = True
    _compiled: list[re.Pattern[bytes]] = field(default_factory=list, repr=False, compare=False)

    @property
    def pattern(self) -> re.Pattern[bytes]:
        """The compiled regex, run over the file's bytes. Compiled the first time a file holds one of
        the rule's keywords: most rules never run in a given scan, and a warm scan runs none (compiling
        all ~100 built-in regexes costs about as much as the rest of a warm scan's start)."""
        if not self._compiled:
            self._compiled.append(re.compile(self.source))
        return self._compiled[0]

    @property
    def generic(self) -> bool:
        return self.category == GENERIC_CATEGORY


@dataclass(frozen=True)
class SecretRules:
    """The effective rule set of a scan: rules, global allow rules and exclude blocks, compiled."""

    #: The built-in rule file's ``version`` (plus ``+user`` when a user file changed the set).
    version: str
    #: sha256 over the effective rule data: changes whenever any rule, allow rule or version changes.
    digest: str
    rules: tuple[Rule, ...]
    allow: tuple[AllowRule, ...] = ()
    exclude_blocks: tuple[re.Pattern[bytes], ...] = ()
    #: Every global path allow rule in one pattern (one ``search`` per path).
    _path_allow: re.Pattern[str] | None = field(default=None, repr=False)

    def path_allowed(self, path: str) -> bool:
        """True when a global allow rule skips this file (relative path, no leading ``/``)."""
        return self._path_allow is not None and self._path_allow.search(path) is not None


# ------------------------------------------------------------------------------------------------ Go → Python

_FLAG_GROUP = re.compile(r"\(\?([imsU]+)\)")


def go_to_python(pattern: str) -> str:
    """Translate the RE2 spellings Python does not accept: an inline flag group ``(?i)`` anywhere
    becomes a scoped group ``(?i:…)`` up to the end of its enclosing group or branch (RE2's meaning;
    scoped, patterns can also be joined with ``|``), and ``\\z`` becomes ``\\Z``. Anything else is
    left for :func:`re.compile` to accept or refuse."""
    out: list[str] = []
    i, n = 0, len(pattern)
    outer: list[list[str]] = []  # per open group: the scoped flag groups open around it
    scoped: list[str] = []  # flag groups opened at the current level, still open
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            out.append("\\Z" if nxt == "z" and not in_class else c + nxt)
            i += 2
            continue
        if in_class:
            in_class = c != "]"
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":
                out.append("]")
                i += 1
            continue
        m = _FLAG_GROUP.match(pattern, i)
        if m is not None:
            flags = m.group(1).replace("U", "")
            if flags:
                out.append(f"(?{flags}:")
                scoped.append(flags)
            i = m.end()
            continue
        if c == "(":
            outer.append(scoped)
            scoped = []
            out.append(c)
        elif c == ")":
            out.append(")" * len(scoped) + ")")
            scoped = outer.pop() if outer else []
        elif c == "|" and scoped:
            # RE2: the flags hold to the end of the group, later branches included.
            out.append(")" * len(scoped) + "|" + "".join(f"(?{f}:" for f in scoped))
        else:
            out.append(c)
        i += 1
    out.append(")" * len(scoped))
    return "".join(out)


# ------------------------------------------------------------------------------------------------ compiling


def _patterns(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _relative(path_pattern: str) -> str:
    """Paths are matched without a leading ``/``; a pattern written for ``/usr/...`` still matches."""
    for lead in ("^/", "^\\/"):
        if path_pattern.startswith(lead):
            return "^" + path_pattern[len(lead) :]
    return path_pattern


def _compile_str(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(go_to_python(pattern))
    except re.error as exc:
        raise InputError(f"{where}: invalid regex: {exc}") from None


def _compile_bytes(pattern: str, where: str) -> re.Pattern[bytes]:
    try:
        return re.compile(go_to_python(pattern).encode())
    except (re.error, UnicodeEncodeError) as exc:
        raise InputError(f"{where}: invalid regex: {exc}") from None


def _allow_rule(d: Mapping[str, Any], where: str) -> AllowRule:
    rid = str(d["id"])
    paths = [_relative(p) for p in _patterns(d.get("path"))]
    regexes = _patterns(d.get("regex"))
    here = f"{where}: allow rule {rid}"
    return AllowRule(
        id=rid,
        description=str(d.get("description", "")),
        path=_compile_str("|".join(f"(?:{p})" for p in paths), here) if paths else None,
        regex=_compile_str("|".join(f"(?:{r})" for r in regexes), here) if regexes else None,
    )


def _exclude_blocks(d: Mapping[str, Any] | None, where: str) -> tuple[re.Pattern[bytes], ...]:
    if not d:
        return ()
    return tuple(_compile_bytes(r, f"{where}: exclude-block") for r in d.get("regexes", ()))


def assignment_regex(names: Sequence[str], value: str) -> str:
    """The regex of an ``assignment`` rule: one of ``names`` (literals, any case) and up to 25 more
    name characters, an assignment operator (``=``, ``:``, ``:=``, ``=>``), optional quotes, then the
    value as the ``secret`` group, not followed by another value character."""
    alts = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return (
        rf"(?i)(?<![a-z0-9])(?P<key>(?:{alts})[a-z0-9_ .,-]{{0,25}}?)[\"']?[ \t]*(?::=|=>|=|:)[ \t]*"
        rf"[\"']?(?P<secret>{value})(?![A-Za-z0-9_+/=-])"
    )


def _rule(d: Mapping[str, Any], where: str, builtin: bool) -> Rule:
    rid = str(d["id"])
    here = f"{where}: rule {rid}"
    assign = d.get("assignment")
    if assign is not None:
        regex = assignment_regex(assign["names"], assign["value"])
        default_kw = [str(n) for n in assign["names"]]
    else:
        regex = str(d["regex"])
        default_kw = []
    keywords = d.get("keywords", default_kw) or ()
    try:
        severity = Severity.parse(str(d.get("severity", "UNKNOWN")))
    except ValueError as exc:
        raise InputError(f"{here}: {exc}") from None
    source = go_to_python(regex).encode()
    if not builtin:  # a user's regex is checked now, for a one-line error naming the rule
        _compile_bytes(regex, here)
    group = str(d.get("secret-group-name", DEFAULT_GROUP))
    return Rule(
        id=rid,
        category=str(d.get("category", "")),
        title=str(d.get("title", rid)),
        severity=severity,
        source=source,
        keywords=tuple(dict.fromkeys(str(k).lower().encode() for k in keywords)),
        group=group,
        entropy=float(d.get("entropy", 0.0)),
        paths=tuple(_compile_str(_relative(p), here) for p in _patterns(d.get("path"))),
        allow=tuple(_allow_rule(a, here) for a in d.get("allow-rules", ())),
        exclude_blocks=_exclude_blocks(d.get("exclude-block"), here),
        multiline=bool(d.get("multiline", not builtin)),
    )


def compile_rules(builtin: Mapping[str, Any], user: Mapping[str, Any] | None = None, where: str = "") -> SecretRules:
    """The effective rule set of the built-in data plus an optional user file (both already parsed)."""
    user = user or {}
    where = where or "secret config"
    rule_docs: dict[str, Mapping[str, Any]] = {str(r["id"]): r for r in builtin.get("rules", ())}
    enabled = user.get("enable-builtin-rules")
    if enabled:
        keep = set(map(str, enabled))
        rule_docs = {k: v for k, v in rule_docs.items() if k in keep}
    for rid in user.get("disable-rules", ()) or ():
        rule_docs.pop(str(rid), None)
    user_ids: set[str] = set()
    for r in user.get("rules", ()) or ():
        rule_docs[str(r["id"])] = r  # a user rule with a built-in id replaces it
        user_ids.add(str(r["id"]))
    allow_docs: dict[str, Mapping[str, Any]] = {str(a["id"]): a for a in builtin.get("allow-rules", ())}
    for aid in user.get("disable-allow-rules", ()) or ():
        allow_docs.pop(str(aid), None)
    for a in user.get("allow-rules", ()) or ():
        allow_docs[str(a["id"])] = a
    blocks = [builtin.get("exclude-block"), user.get("exclude-block")]

    version = str(builtin.get("version", "0"))
    if user:
        version += "+user"
    canonical = json.dumps(
        [version, list(rule_docs.values()), list(allow_docs.values()), blocks], sort_keys=True, default=str
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    rules = tuple(_rule(r, where, rid not in user_ids) for rid, r in rule_docs.items())
    allow = tuple(_allow_rule(a, where) for a in allow_docs.values())
    path_parts = [a.path.pattern for a in allow if a.path is not None]
    return SecretRules(
        version=version,
        digest=digest,
        rules=rules,
        allow=tuple(a for a in allow if a.regex is not None),
        exclude_blocks=tuple(p for b in blocks for p in _exclude_blocks(b, where)),
        _path_allow=re.compile("|".join(f"(?:{p})" for p in path_parts)) if path_parts else None,
    )


# ------------------------------------------------------------------------------------------------ loading


def _yaml_load(text: str | bytes, where: str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: not valid YAML: {exc}".splitlines()[0]) from None


def builtin_data() -> dict[str, Any]:
    """The packaged built-in rule file, parsed."""
    data = _yaml_load(BUILTIN_FILE.read_bytes(), BUILTIN_FILE.name)
    if not isinstance(data, dict):
        raise InputError(f"{BUILTIN_FILE.name}: not a mapping")
    return data


def schema() -> dict[str, Any]:
    """The JSON schema every rule file (built-in or user) must satisfy."""
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_bytes())
    return data


def validate(data: Any, where: str) -> None:
    """Raise :class:`InputError` naming the first schema violation (its location and message)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        err = errors[0]
        loc = "/".join(map(str, err.absolute_path)) or "(top level)"
        raise InputError(f"{where}: {loc}: {err.message}")


@cache
def _builtin_rules() -> SecretRules:
    return compile_rules(builtin_data(), None, BUILTIN_FILE.name)


def load_rules(user_file: Path | None = None) -> SecretRules:
    """The rule set of a scan: the built-in rules, changed by ``user_file`` when one is given (a garrison
    or Trivy secret config). Raises :class:`InputError` when the file is missing, is not YAML, breaks the
    schema or holds an invalid regex. The built-in set is compiled once per process."""
    if user_file is None:
        return _builtin_rules()
    where = str(user_file)
    try:
        text = Path(user_file).read_bytes()
    except OSError as exc:
        raise InputError(f"{where}: cannot read the secret config: {exc.strerror or exc}") from None
    data = _yaml_load(text, where)
    if data is None:
        data = {}
    validate(data, where)
    return compile_rules(builtin_data(), data, where)
