"""Falco rule files → definitions: lists, macros and rules after every ``append`` and ``override``.

Nothing is compiled here: Falco resolves macros and lists only once every file is read (a later file may
redefine a macro an earlier rule uses), and so does :mod:`garrison.runtime.compiler`. Every definition
keeps the file and line it came from, so that errors found later still name them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from garrison.errors import InputError

#: The keys Falco defines for each kind of item.
_RULE_KEYS = frozenset(
    {
        "rule",
        "desc",
        "condition",
        "output",
        "priority",
        "source",
        "tags",
        "enabled",
        "exceptions",
        "append",
        "override",
        "warn_evttypes",
        "skip-if-unknown-filter",
        "capture",
        "capture_duration",
    }
)
#: garrison's own keys on a rule (see ``rules/runtime/schema.json``); Falco ignores them.
GARRISON_RULE_KEYS = frozenset({"mitre", "severity", "remediation", "equivalents", "maturity"})
_OVERRIDABLE = {
    "append": frozenset({"condition", "output", "desc", "tags", "exceptions"}),
    "replace": frozenset({"condition", "output", "desc", "priority", "tags", "exceptions", "enabled", "source"}),
}


class RuleLoadError(InputError):
    """A rule file cannot be loaded; the message names the file, the line and the item."""

    def __init__(self, file: str, line: int, item: str, message: str) -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {item}: {message}" if item else f"{where}: {message}")
        self.file = file
        self.line = line
        self.item = item


@dataclass(slots=True)
class Origin:
    file: str
    line: int


@dataclass(slots=True)
class ListDef:
    name: str
    items: list[str]
    origin: Origin


@dataclass(slots=True)
class MacroDef:
    name: str
    condition: str
    origin: Origin


@dataclass(slots=True)
class ExceptionDef:
    name: str
    fields: list[str] | str
    comps: list[str] | str | None
    values: list[Any]


@dataclass(slots=True)
class RuleDef:
    """A rule as written, after appends and overrides (mutable while loading only)."""

    name: str
    origin: Origin
    desc: str = ""
    condition: str = ""
    output: str = ""
    priority: str = ""
    source: str = "syscall"
    tags: list[str] = field(default_factory=list)
    enabled: bool = True
    exceptions: list[ExceptionDef] = field(default_factory=list)
    #: garrison's own keys (mitre, severity, remediation, equivalents, maturity) as written.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Definitions:
    """Everything the files define, in definition order."""

    lists: dict[str, ListDef] = field(default_factory=dict)
    macros: dict[str, MacroDef] = field(default_factory=dict)
    rules: dict[str, RuleDef] = field(default_factory=dict)
    #: ``required_engine_version`` per file, as written.
    engine_versions: dict[str, str] = field(default_factory=dict)
    #: ``required_plugin_versions``: (file, plugin name, version).
    plugin_versions: list[tuple[str, str, str]] = field(default_factory=list)
    #: Things Falco would warn about (unknown keys…), one line each with file and line.
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


class _LineLoader(yaml.SafeLoader):
    """A safe loader that records each mapping's first line under ``__line__``."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _text(value: Any) -> str:
    """A YAML scalar as Falco reads it (``true`` → ``true``, ``22`` → ``22``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _strip_lines(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k != "__line__"}
    if isinstance(value, list):
        return [_strip_lines(v) for v in value]
    return value


def read_file(path: Path | str, defs: Definitions, *, name: str | None = None, text: str | None = None) -> None:
    """Add one rule file's items to ``defs``. Raises :class:`RuleLoadError`."""
    file = name or str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise RuleLoadError(file, 0, "", f"cannot read: {e}") from None
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise RuleLoadError(file, line, "", f"not valid YAML: {getattr(e, 'problem', e)}") from None
    defs.files.append(file)
    if doc is None:
        return
    if not isinstance(doc, list):
        raise RuleLoadError(file, 1, "", "a rules file is a YAML list of items")
    for item in doc:
        if item is None:
            continue  # an empty "-" item: Falco skips it
        if not isinstance(item, dict):
            raise RuleLoadError(file, 0, "", f"item {item!r} is not a mapping")
        _read_item(file, item, defs)


def _read_item(file: str, item: dict[str, Any], defs: Definitions) -> None:
    line = int(item.get("__line__", 0))
    origin = Origin(file, line)
    if "required_engine_version" in item:
        defs.engine_versions[file] = _text(item["required_engine_version"])
        return
    if "required_plugin_versions" in item:
        for p in item["required_plugin_versions"] or []:
            if isinstance(p, dict):
                defs.plugin_versions.append((file, _text(p.get("name", "")), _text(p.get("version", ""))))
        return
    if "list" in item:
        _read_list(item, origin, defs)
    elif "macro" in item:
        _read_macro(item, origin, defs)
    elif "rule" in item:
        _read_rule(item, origin, defs)
    else:
        keys = ", ".join(sorted(k for k in item if k != "__line__"))
        raise RuleLoadError(file, line, "", f"unknown item (keys {keys}): expected list, macro or rule")


def _append_mode(item: dict[str, Any], origin: Origin, what: str, allowed: frozenset[str]) -> dict[str, str]:
    """The per-key mode of an item: ``{}`` for a plain definition, ``{key: append|replace}`` otherwise."""
    if item.get("append") is True:
        return {k: "append" for k in allowed if k in item}
    override = item.get("override")
    if override is None:
        return {}
    if not isinstance(override, dict):
        raise RuleLoadError(origin.file, origin.line, what, "override must be a mapping of key: append|replace")
    modes: dict[str, str] = {}
    for k, mode in override.items():
        if k == "__line__":
            continue
        if mode not in _OVERRIDABLE or k not in _OVERRIDABLE[mode] | allowed:
            raise RuleLoadError(origin.file, origin.line, what, f"cannot override {k} with {mode!r}")
        if k not in item:
            raise RuleLoadError(origin.file, origin.line, what, f"override names {k}, which the item does not give")
        modes[k] = mode
    return modes


def _read_list(item: dict[str, Any], origin: Origin, defs: Definitions) -> None:
    name = _text(item["list"])
    what = f"list {name!r}"
    items = item.get("items")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise RuleLoadError(origin.file, origin.line, what, "items must be a list")
    values = [_text(v) for v in items]
    mode = _append_mode(item, origin, what, frozenset({"items"}))
    if mode:
        existing = defs.lists.get(name)
        if existing is None:
            raise RuleLoadError(origin.file, origin.line, what, "appends to a list that is not defined before")
        if mode.get("items") == "replace":
            existing.items = values
        else:
            existing.items.extend(values)
        return
    defs.lists[name] = ListDef(name, values, origin)


def _read_macro(item: dict[str, Any], origin: Origin, defs: Definitions) -> None:
    name = _text(item["macro"])
    what = f"macro {name!r}"
    if "condition" not in item:
        raise RuleLoadError(origin.file, origin.line, what, "has no condition")
    cond = _text(item["condition"])
    mode = _append_mode(item, origin, what, frozenset({"condition"}))
    if mode:
        existing = defs.macros.get(name)
        if existing is None:
            raise RuleLoadError(origin.file, origin.line, what, "appends to a macro that is not defined before")
        existing.condition = cond if mode.get("condition") == "replace" else f"{existing.condition} {cond}"
        return
    defs.macros[name] = MacroDef(name, cond, origin)


def _exceptions(raw: Any, origin: Origin, what: str) -> list[ExceptionDef]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise RuleLoadError(origin.file, origin.line, what, "exceptions must be a list")
    out = []
    for e in raw:
        if not isinstance(e, dict) or "name" not in e:
            raise RuleLoadError(origin.file, origin.line, what, "each exception needs a name")
        e = _strip_lines(e)
        fields = e.get("fields")
        comps = e.get("comps")
        values = e.get("values") or []
        if not isinstance(values, list):
            raise RuleLoadError(origin.file, origin.line, what, f"exception {e['name']}: values must be a list")
        out.append(ExceptionDef(_text(e["name"]), fields if fields is not None else [], comps, values))
    return out


def _read_rule(item: dict[str, Any], origin: Origin, defs: Definitions) -> None:
    name = _text(item["rule"])
    what = f"rule {name!r}"
    for k in item:
        if k != "__line__" and k not in _RULE_KEYS and k not in GARRISON_RULE_KEYS:
            defs.warnings.append(f"{origin.file}:{origin.line}: {what}: unknown key {k!r} ignored")
    allowed = frozenset(k for k in _RULE_KEYS if k not in ("rule", "append", "override"))
    mode = _append_mode(item, origin, what, allowed)
    existing = defs.rules.get(name)
    if mode:
        if existing is None:
            message = "appends to or overrides a rule that is not defined before"
            raise RuleLoadError(origin.file, origin.line, what, message)
        _merge_rule(existing, item, mode, origin, what)
        return
    if "condition" not in item:
        if existing is not None and set(item) <= {"rule", "enabled", "__line__"}:
            # Falco's older spelling of ``override: {enabled: replace}``.
            existing.enabled = bool(item.get("enabled", True))
            return
        raise RuleLoadError(origin.file, origin.line, what, "has no condition")
    for key in ("output", "priority"):
        if key not in item:
            raise RuleLoadError(origin.file, origin.line, what, f"has no {key}")
    tags = item.get("tags") or []
    if not isinstance(tags, list):
        raise RuleLoadError(origin.file, origin.line, what, "tags must be a list")
    rule = RuleDef(
        name=name,
        origin=origin,
        desc=_text(item.get("desc", "")).strip(),
        condition=_text(item["condition"]),
        output=_text(item["output"]).strip(),
        priority=_text(item["priority"]),
        source=_text(item.get("source", "syscall")),
        tags=[_text(t) for t in tags],
        enabled=bool(item.get("enabled", True)),
        exceptions=_exceptions(item.get("exceptions"), origin, what),
        extra={k: _strip_lines(item[k]) for k in GARRISON_RULE_KEYS if k in item},
    )
    if existing is not None:
        # A redefinition replaces the rule where it stood.
        defs.rules[name] = rule
    else:
        defs.rules[name] = rule


def _merge_rule(rule: RuleDef, item: dict[str, Any], mode: dict[str, str], origin: Origin, what: str) -> None:
    for key, how in mode.items():
        value = item[key]
        if key == "condition":
            rule.condition = _text(value) if how == "replace" else f"{rule.condition} {_text(value)}"
        elif key == "output":
            rule.output = _text(value).strip() if how == "replace" else f"{rule.output} {_text(value).strip()}"
        elif key == "desc":
            rule.desc = _text(value).strip() if how == "replace" else f"{rule.desc} {_text(value).strip()}"
        elif key == "priority":
            rule.priority = _text(value)
        elif key == "source":
            rule.source = _text(value)
        elif key == "enabled":
            rule.enabled = bool(value)
        elif key == "tags":
            tags = [_text(t) for t in value or []]
            rule.tags = tags if how == "replace" else [*rule.tags, *(t for t in tags if t not in rule.tags)]
        elif key == "exceptions":
            new = _exceptions(value, origin, what)
            if how == "replace":
                rule.exceptions = new
                continue
            by_name = {e.name: e for e in rule.exceptions}
            for e in new:
                if e.name in by_name:
                    by_name[e.name].values.extend(e.values)
                else:
                    rule.exceptions.append(e)
