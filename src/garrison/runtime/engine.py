"""The rule engine's entry points: :func:`load_rules` (Falco rule files → :class:`RuleSet`) and
:meth:`RuleSet.evaluate` (one event → the rules it matches).

Loading reads every file first (:mod:`~garrison.runtime.loader`), then resolves lists and macros and
compiles each enabled rule's condition once into a Python function (:mod:`~garrison.runtime.compiler`).
A rule whose condition uses a field its source does not offer, or whose source garrison has no events for,
is *skipped* and reported with the reason (:attr:`RuleSet.skipped`); anything else wrong is a
:class:`~garrison.runtime.loader.RuleLoadError` naming the file, the line and the rule.

Rules are indexed by what they can match: for each source, the values of its index fields
(:attr:`FieldRegistry.index_fields`: the audit verb and resource, the node event type) that the
condition requires. An event is checked only against the rules filed under its own values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.model.common import Severity
from garrison.runtime.compiler import (
    CompileError,
    OutputTemplate,
    Predicate,
    UnknownField,
    compile_group,
    compile_predicate,
    constraint,
    expand,
    fold,
    resolve_field,
    resolve_lists,
)
from garrison.runtime.condition import (
    LIST_OPS,
    And,
    Check,
    ConditionSyntaxError,
    Const,
    Node,
    Not,
    Or,
    Value,
    parse_condition,
)
from garrison.runtime.events import Event, Scalar
from garrison.runtime.fields import FieldRegistry, FieldType, default_registry
from garrison.runtime.loader import Definitions, ExceptionDef, RuleDef, RuleLoadError, read_file

__all__ = ["Match", "Rule", "RuleLoadError", "RuleSet", "SkippedRule", "load_rules"]

#: Falco's priorities, highest first, as Falco spells them in its output.
PRIORITIES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")
_PRIORITY_BY_NAME = {p.upper(): p for p in PRIORITIES} | {"INFO": "Informational"}

_TECHNIQUE = re.compile(r"^T\d{4}(?:\.\d{3})?$")


@dataclass(frozen=True, slots=True)
class Rule:
    """A loaded rule: what a user lists and what an alert refers to."""

    name: str
    desc: str
    #: The condition as written, after appends (macros not expanded).
    condition: str
    output: str
    #: Falco's priority, spelled as Falco prints it (``Warning``).
    priority: str
    #: garrison's severity: the rule's own ``severity`` when it gives one, else the priority's.
    severity: Severity
    source: str
    tags: tuple[str, ...]
    enabled: bool
    #: Where it is defined (the first definition; appends do not move it).
    file: str
    line: int
    #: MITRE ATT&CK tactic (``TA0004`` or Falco's ``mitre_privilege_escalation`` tag) and technique (``T1610``).
    mitre_tactic: str = ""
    mitre_technique: str = ""
    remediation: str = ""
    #: Defender for Containers alert types this rule corresponds to (``K8S_PrivilegedContainer``).
    defender: tuple[str, ...] = ()
    #: The Falco rule it corresponds to (its own name for Falco's rules).
    falco: str = ""
    #: Fields the condition reads (after macros), for ``runtime rules -f json``.
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SkippedRule:
    """A rule that did not load because garrison cannot evaluate it, with the reason."""

    name: str
    source: str
    file: str
    line: int
    #: ``unknown field proc.exe_ino.ctime`` or ``no events for source aws_cloudtrail``.
    reason: str
    #: The field that is missing ("" when the reason is the source).
    field: str = ""


class Match:
    """One rule matching one event. ``output`` is rendered when first read (most matches are folded into
    an alert that already has its output)."""

    __slots__ = ("_output", "_template", "event", "rule")

    def __init__(self, rule: Rule, event: Event, template: OutputTemplate) -> None:
        self.rule = rule
        self.event = event
        self._template = template
        self._output: str | None = None

    @property
    def output(self) -> str:
        """The rule's output with every ``%field`` filled from the event."""
        if self._output is None:
            self._output = self._template.render(self.event)
        return self._output

    def __repr__(self) -> str:
        return f"Match({self.rule.name!r}, {self.event!r})"


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: Rule
    predicate: Predicate
    template: OutputTemplate
    #: Per index field, the values the rule can match (None = any).
    keys: tuple[frozenset[Scalar] | None, ...]
    #: The resolved condition (folded per index key into the group functions).
    tree: Node


@dataclass(frozen=True, slots=True)
class _Group:
    """The rules that can match events with one set of index values, compiled into one function with
    the checks on those values folded away."""

    rules: tuple[_Compiled, ...]
    #: For any event of the source (through ``Event.field``).
    run: Any
    #: For events of the source's own class (its extractors called directly), or None.
    direct: Any = None
    direct_type: type | None = None


@dataclass
class RuleSet:
    """Compiled rules, indexed; :meth:`evaluate` is the engine's hot path."""

    rules: tuple[Rule, ...]
    skipped: tuple[SkippedRule, ...]
    registry: FieldRegistry
    warnings: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    _compiled: dict[str, tuple[_Compiled, ...]] = field(default_factory=dict, repr=False)
    _index: dict[tuple[str, tuple[Any, ...]], tuple[_Compiled, ...]] = field(default_factory=dict, repr=False)
    _groups: dict[tuple[str, tuple[Any, ...]], _Group] = field(default_factory=dict, repr=False)
    _index_of: dict[str, Any] = field(default_factory=dict, repr=False)

    #: Index keys remembered; beyond this, rule lists are computed per event (never wrong, only slower).
    INDEX_LIMIT = 8192

    def enabled(self) -> tuple[Rule, ...]:
        """The rules that run (loaded and enabled)."""
        return tuple(r for r in self.rules if r.enabled)

    def candidates(self, event: Event) -> tuple[Any, ...]:
        """The compiled rules that can match ``event`` (those filed under its index values)."""
        source = event.source
        fields = self.registry.index_fields.get(source, ())
        values = tuple(event.field(f) for f in fields)
        key = (source, values)
        found = self._index.get(key)
        if found is None:
            found = tuple(
                c
                for c in self._compiled.get(source, ())
                if all(k is None or v in k for k, v in zip(c.keys, values, strict=True))
            )
            if len(self._index) < self.INDEX_LIMIT:
                self._index[key] = found
        return found

    def _index_reader(self, source: str) -> Any:
        """``event -> its index values`` for one source (the direct extractors for the source's own class)."""
        fields = self.registry.index_fields.get(source, ())
        table = self.registry.direct.get(source)
        if table is None or not all(f in table.extractors for f in fields):
            return lambda ev: tuple(ev.field(f) for f in fields)
        own = table.event_type
        pairs = tuple(table.extractors[f] for f in fields)
        if len(pairs) == 3:
            a, b, c = pairs
            return lambda ev: (
                (a(ev, None), b(ev, None), c(ev, None)) if type(ev) is own else tuple(ev.field(f) for f in fields)
            )
        return lambda ev: tuple(x(ev, None) for x in pairs) if type(ev) is own else tuple(ev.field(f) for f in fields)

    def _group(self, source: str, values: tuple[Any, ...]) -> _Group:
        fields = self.registry.index_fields.get(source, ())
        known = dict(zip(fields, values, strict=True))
        rules: list[_Compiled] = []
        trees: list[Node] = []
        for c in self._compiled.get(source, ()):
            if not all(k is None or v in k for k, v in zip(c.keys, values, strict=True)):
                continue
            tree = fold(c.tree, known)
            if isinstance(tree, Const) and not tree.value:
                continue
            rules.append(c)
            trees.append(tree)
        if not trees:
            return _Group((), None)
        name = f"{source} {values!r}"
        run = compile_group(trees, self.registry, source, name)
        table = self.registry.direct.get(source)
        if table is None:
            return _Group(tuple(rules), run)
        direct = compile_group(trees, self.registry, source, name, direct=True)
        return _Group(tuple(rules), run, direct, table.event_type)

    def evaluate(self, event: Event) -> list[Match]:
        """The rules ``event`` matches, in rule-file order. A rule that raises on a malformed event
        counts as not matching it (the event cannot take the engine down)."""
        source = event.source
        index = self._index_of.get(source)
        if index is None:
            index = self._index_of[source] = self._index_reader(source)
        values = index(event)
        key = (source, values)
        group = self._groups.get(key)
        if group is None:
            try:
                hash(values)
            except TypeError:
                return self._evaluate_each(event)
            group = self._group(source, values)
            if len(self._groups) < self.INDEX_LIMIT:
                self._groups[key] = group
        if group.run is None:
            return []
        run = group.direct if type(event) is group.direct_type else group.run
        rules = group.rules
        return [Match(rules[i].rule, event, rules[i].template) for i in run(event)]

    def _evaluate_each(self, event: Event) -> list[Match]:
        out: list[Match] = []
        for c in self.candidates(event):
            try:
                hit = c.predicate(event)
            except (TypeError, ValueError, AttributeError, KeyError, IndexError):
                continue
            if hit:
                out.append(Match(c.rule, event, c.template))
        return out


def load_rules(
    paths: Sequence[Path | str],
    *,
    registry: FieldRegistry | None = None,
    texts: Sequence[tuple[str, str]] = (),
) -> RuleSet:
    """Load Falco rule files, in order (later files append to and override earlier ones), plus
    ``texts`` (name, YAML) after them. Raises :class:`RuleLoadError`."""
    registry = registry or default_registry()
    defs = Definitions()
    for p in paths:
        read_file(p, defs)
    for name, text in texts:
        read_file(name, defs, name=name, text=text)
    return _build(defs, registry)


# -- building ----------------------------------------------------------------------------------------


def _build(defs: Definitions, registry: FieldRegistry) -> RuleSet:
    lists = resolve_lists({name: d.items for name, d in defs.lists.items()})
    macro_trees: dict[str, Node] = {}

    def macro_tree(name: str) -> Node | None:
        if name in macro_trees:
            return macro_trees[name]
        m = defs.macros.get(name)
        if m is None:
            return None
        try:
            tree = parse_condition(m.condition)
        except ConditionSyntaxError as e:
            raise RuleLoadError(m.origin.file, m.origin.line, f"macro {name!r}", f"condition: {e}") from None
        macro_trees[name] = tree
        return tree

    rules: list[Rule] = []
    skipped: list[SkippedRule] = []
    compiled: dict[str, list[_Compiled]] = {}
    for d in defs.rules.values():
        what = f"rule {d.name!r}"
        try:
            tree = parse_condition(d.condition)
        except ConditionSyntaxError as e:
            raise RuleLoadError(d.origin.file, d.origin.line, what, f"condition: {e}") from None
        try:
            tree = expand(tree, macro_tree, lists)
            tree = _with_exceptions(tree, d.exceptions, lists)
            tree = _unalias(tree, registry.aliases.get(d.source, {}))
        except CompileError as e:
            raise RuleLoadError(d.origin.file, d.origin.line, what, str(e)) from None
        if d.source not in registry.by_source:
            skipped.append(
                SkippedRule(d.name, d.source, d.origin.file, d.origin.line, f"no events for source {d.source}")
            )
            continue
        try:
            predicate, used = compile_predicate(tree, registry, d.source, d.name)
        except UnknownField as e:
            skipped.append(
                SkippedRule(d.name, d.source, d.origin.file, d.origin.line, f"unknown field {e.field}", e.field)
            )
            continue
        except CompileError as e:
            raise RuleLoadError(d.origin.file, d.origin.line, what, str(e)) from None
        rule = _rule(d, tuple(sorted(used)))
        rules.append(rule)
        if not rule.enabled:
            continue
        keys = tuple(_index_values(tree, registry, d.source, f) for f in registry.index_fields.get(d.source, ()))
        compiled.setdefault(d.source, []).append(_Compiled(rule, predicate, OutputTemplate.parse(d.output), keys, tree))
    return RuleSet(
        rules=tuple(rules),
        skipped=tuple(skipped),
        registry=registry,
        warnings=tuple(defs.warnings),
        files=tuple(defs.files),
        _compiled={s: tuple(c) for s, c in compiled.items()},
    )


def _index_values(tree: Node, registry: FieldRegistry, source: str, name: str) -> frozenset[Scalar] | None:
    spec = registry.lookup(source, name)
    if spec is None or spec.is_list:
        return None

    def convert(text: str) -> Scalar:
        if spec.type is FieldType.NUMBER:
            return int(text, 0)
        if spec.type is FieldType.BOOL:
            return text.lower() == "true"
        return text

    try:
        return constraint(tree, name, convert)
    except ValueError:
        return None


def _priority(text: str, d: RuleDef) -> str:
    p = _PRIORITY_BY_NAME.get(text.strip().upper())
    if p is None:
        raise RuleLoadError(d.origin.file, d.origin.line, f"rule {d.name!r}", f"unknown priority {text!r}")
    return p


def _rule(d: RuleDef, used: tuple[str, ...]) -> Rule:
    priority = _priority(d.priority, d)
    extra = d.extra
    severity = Severity.parse(priority)
    if "severity" in extra:
        try:
            severity = Severity.parse(str(extra["severity"]))
        except ValueError as e:
            raise RuleLoadError(d.origin.file, d.origin.line, f"rule {d.name!r}", str(e)) from None
    mitre = extra.get("mitre") or {}
    tactic = str(mitre.get("tactic", "")) if isinstance(mitre, dict) else ""
    technique = str(mitre.get("technique", "")) if isinstance(mitre, dict) else ""
    if not tactic:
        tactic = next((t for t in d.tags if t.startswith("mitre_")), "")
    if not technique:
        technique = next((t for t in d.tags if _TECHNIQUE.match(t)), "")
    eq = extra.get("equivalents") or {}
    defender = eq.get("defender", ()) if isinstance(eq, dict) else ()
    if isinstance(defender, str):
        defender = (defender,)
    falco = str(eq.get("falco", "")) if isinstance(eq, dict) else ""
    if not extra and d.origin.file:
        falco = falco or d.name
    return Rule(
        name=d.name,
        desc=d.desc,
        condition=d.condition.strip(),
        output=d.output,
        priority=priority,
        severity=severity,
        source=d.source,
        tags=tuple(d.tags),
        enabled=d.enabled,
        file=d.origin.file,
        line=d.origin.line,
        mitre_tactic=tactic,
        mitre_technique=technique,
        remediation=str(extra.get("remediation", "")).strip(),
        defender=tuple(str(x) for x in defender),
        falco=falco,
        fields=used,
    )


_FIELD_WITH_ARG = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)(?:\[(.*)\])?$")


def _exception_values(op: str, value: Any, lists: dict[str, tuple[str, ...]]) -> tuple[Value, ...]:
    if op in LIST_OPS:
        if isinstance(value, list):
            out: list[Value] = []
            for v in value:
                text = _text(v)
                if text in lists:
                    out.extend(Value(t, True) for t in lists[text])
                else:
                    out.append(Value(text, True))
            return tuple(out)
        text = _text(value)
        if text in lists:
            return tuple(Value(t, True) for t in lists[text])
        return (Value(text, True),)
    return (Value(_text(value), True),)


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _field(text: str) -> tuple[str, str | None]:
    m = _FIELD_WITH_ARG.match(text.strip())
    if m is None:
        raise CompileError(f"exception field {text!r} is not a field")
    return m.group(1), m.group(2)


def _with_exceptions(tree: Node, exceptions: list[ExceptionDef], lists: dict[str, tuple[str, ...]]) -> Node:
    """``condition and not (exception item or …)``, as Falco builds it."""
    items: list[Node] = []
    for e in exceptions:
        if isinstance(e.fields, str):
            name, arg = _field(e.fields)
            op = e.comps if isinstance(e.comps, str) else "in"
            if op in LIST_OPS:
                values: list[Value] = []
                for v in e.values:
                    values.extend(_exception_values(op, v, lists))
                if values:
                    items.append(Check(name, arg, op, tuple(values)))
            else:
                items.extend(Check(name, arg, op, _exception_values(op, v, lists)) for v in e.values)
            continue
        fields = [_field(f) for f in e.fields]
        comps = e.comps if isinstance(e.comps, list) else ["="] * len(fields)
        if len(comps) != len(fields):
            raise CompileError(f"exception {e.name}: {len(fields)} fields but {len(comps)} comps")
        for row in e.values:
            if not isinstance(row, list) or len(row) != len(fields):
                raise CompileError(f"exception {e.name}: value {row!r} does not have {len(fields)} items")
            checks = tuple(
                Check(name, arg, "=" if str(op) == "==" else str(op), _exception_values(str(op), v, lists))
                for (name, arg), op, v in zip(fields, comps, row, strict=True)
            )
            items.append(checks[0] if len(checks) == 1 else And(checks))
    if not items:
        return tree
    return And((tree, Not(items[0] if len(items) == 1 else Or(tuple(items)))))


def _unalias(node: Node, aliases: Mapping[tuple[str, str | None], tuple[str, str | None]]) -> Node:
    """Every check on an alias rewritten to the field it names."""
    if not aliases:
        return node
    if isinstance(node, Check):
        target = aliases.get((node.field, node.arg))
        return node if target is None else Check(target[0], target[1], node.op, node.values)
    if isinstance(node, Not):
        return Not(_unalias(node.expr, aliases))
    if isinstance(node, And):
        return And(tuple(_unalias(n, aliases) for n in node.items))
    if isinstance(node, Or):
        return Or(tuple(_unalias(n, aliases) for n in node.items))
    return node


def check_fields(tree: Node, registry: FieldRegistry, source: str) -> Iterable[str]:
    """Every field a resolved tree reads that ``source`` does not offer (for diagnostics)."""
    stack = [tree]
    while stack:
        n = stack.pop()
        if isinstance(n, Check):
            try:
                resolve_field(registry, source, n.field, n.arg)
            except UnknownField as e:
                yield e.field
            except CompileError:
                continue
        elif isinstance(n, Not):
            stack.append(n.expr)
        elif isinstance(n, And | Or):
            stack.extend(n.items)
