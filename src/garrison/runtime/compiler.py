"""Conditions → Python: each rule's condition (macros and lists resolved) becomes one Python function,
generated as source text and compiled once, so evaluating a rule costs a few attribute lookups and
comparisons per check instead of a tree walk. Also: what a condition requires of the index fields
(:func:`constraint`), and ``%field`` output templates (:class:`OutputTemplate`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from garrison.runtime.condition import (
    LIST_OPS,
    And,
    Check,
    Const,
    MacroRef,
    Node,
    Not,
    Or,
    Value,
)
from garrison.runtime.events import Event, FieldValue, Scalar
from garrison.runtime.fields import Arg, FieldRegistry, FieldSpec, FieldType, split_dotted_arg

Predicate = Callable[[Event], bool]


class CompileError(ValueError):
    """A condition cannot be compiled (a bad value for a field's type, a bad regex, a missing argument)."""


class UnknownField(Exception):
    """A condition uses a field its source does not offer: the rule is skipped, not an error."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


# -- operators ---------------------------------------------------------------------------------------


def _str(v: Scalar) -> str:
    if type(v) is str:
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _over(one: Callable[[Scalar, Any], bool]) -> Callable[[FieldValue, Any], bool]:
    """An operator over a value that may be a list: true when any element satisfies it."""

    def op(v: FieldValue, c: Any) -> bool:
        if v is None:
            return False
        if type(v) is tuple:
            return any(one(x, c) for x in v)
        return one(v, c)  # type: ignore[arg-type]

    return op


def _in(v: FieldValue, c: frozenset[Scalar]) -> bool:
    if v is None:
        return False
    if type(v) is tuple:
        return bool(v) and all(x in c for x in v)
    return v in c


def _intersects(v: FieldValue, c: frozenset[Scalar]) -> bool:
    if v is None:
        return False
    if type(v) is tuple:
        return any(x in c for x in v)
    return v in c


def _pmatch_one(v: Scalar, paths: tuple[str, ...]) -> bool:
    s = _str(v)
    return any(s == p or (s.startswith(p) and (p.endswith("/") or s[len(p) : len(p) + 1] == "/")) for p in paths)


def _bytes(v: Scalar) -> bytes:
    return _str(v).encode("utf-8", "surrogateescape")


def _lt(a: Any, b: Any) -> bool:
    return bool(a < b)


_OPS: dict[str, Callable[[FieldValue, Any], bool]] = {
    "=": _over(lambda v, c: v == c),
    "!=": _over(lambda v, c: v != c),
    "<": _over(lambda v, c: _lt(v, c)),
    "<=": _over(lambda v, c: bool(v <= c)),  # type: ignore[operator]
    ">": _over(lambda v, c: bool(v > c)),  # type: ignore[operator]
    ">=": _over(lambda v, c: bool(v >= c)),  # type: ignore[operator]
    "contains": _over(lambda v, c: c in _str(v)),
    "icontains": _over(lambda v, c: c in _str(v).lower()),
    "bcontains": _over(lambda v, c: c in _bytes(v)),
    "startswith": _over(lambda v, c: _str(v).startswith(c)),
    "istartswith": _over(lambda v, c: _str(v).lower().startswith(c)),
    "bstartswith": _over(lambda v, c: _bytes(v).startswith(c)),
    "endswith": _over(lambda v, c: _str(v).endswith(c)),
    "iendswith": _over(lambda v, c: _str(v).lower().endswith(c)),
    "glob": _over(lambda v, c: c.match(_str(v)) is not None),
    "iglob": _over(lambda v, c: c.match(_str(v)) is not None),
    "regex": _over(lambda v, c: c.search(_str(v)) is not None),
    "pmatch": _over(_pmatch_one),
    "in": _in,
    "intersects": _intersects,
}


#: Operators on a string scalar written inline in shared (group) code: ``{v}`` the value, ``{c}`` the operand.
_STRING_METHODS = {
    "contains": "{c} in {v}",
    "startswith": "{v}.startswith({c})",
    "endswith": "{v}.endswith({c})",
}

#: Operators that accept ``val(field)`` on the right (the other field's value is the operand as it is).
_FIELD_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "contains", "startswith", "endswith"})


def _val(op: str, v: FieldValue, other: FieldValue) -> bool:
    """``field op val(other)``: false when either is absent; a list on the right compares its first item."""
    if other is None:
        return False
    if type(other) is tuple:
        other = other[0] if other else None
        if other is None:
            return False
    return _OPS[op](v, other)


def _convert(spec: FieldSpec, text: str) -> Scalar:
    if spec.type is FieldType.NUMBER:
        try:
            return int(text, 0)
        except ValueError:
            raise CompileError(f"{spec.name} is a number; {text!r} is not") from None
    if spec.type is FieldType.BOOL:
        low = text.lower()
        if low not in ("true", "false"):
            raise CompileError(f"{spec.name} is true or false; {text!r} is neither")
        return low == "true"
    return text


def _operand(spec: FieldSpec, op: str, values: tuple[Value, ...]) -> Any:
    texts = [v.text for v in values]
    if op in ("in", "intersects"):
        return frozenset(_convert(spec, t) for t in texts)
    if op == "pmatch":
        return tuple(t.rstrip("/") or "/" for t in texts)
    (text,) = texts
    if op in ("glob", "iglob"):
        pattern = text.lower() if op == "iglob" else text
        return re.compile(fnmatch.translate(pattern), re.IGNORECASE if op == "iglob" else 0)
    if op == "regex":
        try:
            return re.compile(text)
        except re.error as e:
            raise CompileError(f"bad regex {text!r}: {e}") from None
    if op in ("icontains", "istartswith", "iendswith"):
        return text.lower()
    if op in ("bcontains", "bstartswith"):
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise CompileError(f"{op} takes hex bytes; {text!r} is not") from None
    if op in ("contains", "startswith", "endswith"):
        return text
    return _convert(spec, text)


# -- code generation ---------------------------------------------------------------------------------


def resolve_field(registry: FieldRegistry, source: str, field: str, arg: str | None) -> tuple[FieldSpec, str | None]:
    """The spec of ``field`` (``evt.arg.flags`` → ``evt.arg`` with argument ``flags``) or UnknownField."""
    spec = registry.lookup(source, field)
    if spec is None:
        base, dotted = split_dotted_arg(field)
        spec = registry.lookup(source, base)
        if spec is None or dotted is None:
            raise UnknownField(field if arg is None else f"{field}[{arg}]")
        arg = dotted
    if spec.arg is Arg.REQUIRED and not arg:
        raise CompileError(f"{spec.name} needs an argument ({spec.name}[...])")
    if spec.arg is Arg.NONE and arg is not None:
        raise CompileError(f"{spec.name} takes no argument")
    return spec, arg


class _Gen:
    """Python source for conditions. With ``shared``, every field read and every operator call is a lazy
    local of the generated function (read or computed once per event, however many rules use it)."""

    def __init__(self, registry: FieldRegistry, source: str, *, shared: bool = False, direct: bool = False) -> None:
        self.registry = registry
        self.source = source
        self.consts: dict[str, Any] = {"_OPS": _OPS, "_val": _val, "_U": _UNSET}
        self.fields: set[str] = set()
        self.shared = shared
        self.locals: dict[Any, str] = {}
        table = registry.direct.get(source)
        self.direct = table.extractors if direct and table is not None else {}
        self.extractors: dict[str, str] = {}

    def getter(self, name: str, arg: str | None) -> str:
        """The expression reading one field (the source's extractor when direct, else ``ev.field``)."""
        fn = self.direct.get(name)
        if fn is None:
            expr = f"f({name!r}, {arg!r})"
        else:
            if name not in self.extractors:
                self.extractors[name] = self.const(fn)
            expr = f"{self.extractors[name]}(ev, {arg!r})"
        return self.lazy(("f", name, arg), expr)

    def local(self, key: Any) -> str | None:
        return self.locals.get(key) if self.shared else None

    def lazy(self, key: Any, expr: str) -> str:
        if not self.shared:
            return expr
        name = self.locals.get(key)
        if name is None:
            name = self.locals[key] = f"_l{len(self.locals)}"
        return f"({name} if {name} is not _U else ({name} := {expr}))"

    def const(self, value: Any) -> str:
        name = f"_c{len(self.consts)}"
        self.consts[name] = value
        return name

    def expr(self, node: Node) -> str:
        if isinstance(node, Check):
            return self.check(node)
        if isinstance(node, And):
            return "(" + " and ".join(self.expr(n) for n in node.items) + ")"
        if isinstance(node, Or):
            return "(" + " or ".join(self.expr(n) for n in node.items) + ")"
        if isinstance(node, Not):
            return f"(not {self.expr(node.expr)})"
        if isinstance(node, Const):
            return "True" if node.value else "False"
        if isinstance(node, MacroRef):  # pragma: no cover - the loader expands every macro first
            raise CompileError(f"unresolved macro {node.name}")
        raise CompileError(f"unknown node {node!r}")

    def check(self, node: Check) -> str:
        spec, arg = resolve_field(self.registry, self.source, node.field, node.arg)
        self.fields.add(spec.name)
        get = self.getter(spec.name, arg)
        if node.op == "exists":
            return f"({get} is not None)"
        if len(node.values) == 1 and node.values[0].ref is not None:
            other, other_arg = resolve_field(self.registry, self.source, *node.values[0].ref)
            self.fields.add(other.name)
            if node.op not in _FIELD_OPS:
                raise CompileError(f"val() cannot be used with {node.op}")
            other_get = self.getter(other.name, other_arg)
            return f"_val({node.op!r}, {get}, {other_get})"
        c = self.const(_operand(spec, node.op, node.values))
        if not spec.is_list:
            # Scalars of a declared type compare inline: None never equals nor belongs to a constant.
            if node.op == "=":
                return f"({get} == {c})"
            if node.op in ("in", "intersects"):
                return f"({get} in {c})"
            value = self.local(("f", spec.name, arg))
            if (
                value is not None
                and spec.type is FieldType.STRING
                and (node.op in _STRING_METHODS or node.op == "icontains")
            ):
                # A string field's value is a str (the Event contract): call the method inline; a
                # lowered value is computed once for all the icontains on it.
                if node.op == "icontains":
                    lowered = self.lazy(("lower", spec.name, arg), f"{value}.lower()")
                    return f"({get} is not None and {c} in {lowered})"
                return f"({get} is not None and {_STRING_METHODS[node.op].format(v=value, c=c)})"
        return self.lazy(node, f"_OPS[{node.op!r}]({get}, {c})")


def compile_predicate(node: Node, registry: FieldRegistry, source: str, name: str) -> tuple[Predicate, set[str]]:
    """One Python function for a resolved condition tree, and the fields it reads. Raises
    :class:`UnknownField` (skip the rule) or :class:`CompileError`."""
    gen = _Gen(registry, source)
    body = gen.expr(node)
    code = f"def _rule(ev):\n    f = ev.field\n    return {body}\n"
    namespace: dict[str, Any] = dict(gen.consts)
    exec(compile(code, f"<rule {name}>", "exec"), namespace)  # noqa: S102 - our own generated code
    fn: Predicate = namespace["_rule"]
    return fn, gen.fields


_UNSET: Any = object()
#: What a rule raising on a malformed event counts as: not matching (the event cannot stop the others).
_RULE_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError)


def compile_group(
    trees: list[Node], registry: FieldRegistry, source: str, name: str, *, direct: bool = False
) -> Callable[[Event], list[int]]:
    """One function evaluating several resolved conditions on an event: the indexes of those that hold,
    in order. Fields and operator results are computed once per event for all of them; a condition that
    raises on a malformed event does not hold, and the others are still evaluated."""
    gen = _Gen(registry, source, shared=True, direct=direct)
    bodies = [gen.expr(t) for t in trees]
    lines = ["def _group(ev):", "    f = ev.field", "    out = []"]
    if gen.locals:
        lines.append("    " + " = ".join(gen.locals.values()) + " = _U")
    for i, body in enumerate(bodies):
        lines += ["    try:", f"        if {body}:", f"            out.append({i})", "    except _E:", "        pass"]
    lines.append("    return out")
    namespace: dict[str, Any] = {**gen.consts, "_E": _RULE_ERRORS}
    exec(compile("\n".join(lines) + "\n", f"<rules {name}>", "exec"), namespace)  # noqa: S102 - our own code
    fn: Callable[[Event], list[int]] = namespace["_group"]
    return fn


def fold(node: Node, known: Mapping[str, Scalar | None]) -> Node:
    """``node`` with every check on a field of known value (the index values of an event) replaced by its
    result, and the and/or/not around them simplified: a rule that folds to false cannot match."""
    if isinstance(node, Check):
        if node.op in ("in", "intersects", "pmatch") and not node.values:
            return Const(False)  # membership in an empty list (an empty user list, say) never holds
        if node.field not in known or node.arg is not None or any(v.ref for v in node.values):
            return node
        x = known[node.field]
        if node.op == "exists":
            return Const(x is not None)
        if x is None:
            return Const(False)
        texts = {v.text for v in node.values}
        sx = _str(x)
        if node.op in ("=", "in", "intersects"):
            return Const(sx in texts)
        if node.op == "!=":
            return Const(sx not in texts)
        return node
    if isinstance(node, Not):
        inner = fold(node.expr, known)
        return Const(not inner.value) if isinstance(inner, Const) else Not(inner)
    if isinstance(node, And):
        items: list[Node] = []
        for n in node.items:
            m = fold(n, known)
            if isinstance(m, Const):
                if not m.value:
                    return Const(False)
                continue
            items.append(m)
        return Const(True) if not items else items[0] if len(items) == 1 else And(tuple(items))
    if isinstance(node, Or):
        alts: list[Node] = []
        for n in node.items:
            m = fold(n, known)
            if isinstance(m, Const):
                if m.value:
                    return Const(True)
                continue
            alts.append(m)
        return Const(False) if not alts else alts[0] if len(alts) == 1 else Or(tuple(alts))
    return node


def constraint(node: Node, field: str, convert: Callable[[str], Scalar] = str) -> frozenset[Scalar] | None:
    """The values of ``field`` for which ``node`` can be true (None = any): what the index files a rule
    under. Sound, not exact: ``not`` and anything not an equality or membership say "any"."""
    if isinstance(node, Check):
        if node.field == field and node.arg is None and node.op in ("=", "in", "intersects"):
            return frozenset(convert(v.text) for v in node.values)
        return None
    if isinstance(node, And):
        out: frozenset[Scalar] | None = None
        for n in node.items:
            c = constraint(n, field, convert)
            if c is not None:
                out = c if out is None else out & c
        return out
    if isinstance(node, Or):
        acc: set[Scalar] = set()
        for n in node.items:
            c = constraint(n, field, convert)
            if c is None:
                return None
            acc |= c
        return frozenset(acc)
    if isinstance(node, Const):
        return None if node.value else frozenset()
    return None


# -- macro and list resolution -----------------------------------------------------------------------


def expand(
    node: Node,
    macro_tree: Callable[[str], Node | None],
    lists: Mapping[str, tuple[str, ...]],
    seen: tuple[str, ...] = (),
) -> Node:
    """``node`` with every macro replaced by its (expanded) tree and every list name inside a list
    operator's values replaced by the list's items. Raises CompileError on an undefined macro or a cycle."""
    if isinstance(node, MacroRef):
        if node.name in seen:
            raise CompileError(f"macro {node.name} refers to itself ({' -> '.join((*seen, node.name))})")
        tree = macro_tree(node.name)
        if tree is None:
            raise CompileError(f"undefined macro {node.name!r}")
        return expand(tree, macro_tree, lists, (*seen, node.name))
    if isinstance(node, Check):
        if node.op in LIST_OPS:
            values: list[Value] = []
            for v in node.values:
                if not v.quoted and v.text in lists:
                    values.extend(Value(t, quoted=True) for t in lists[v.text])
                else:
                    values.append(v)
            return Check(node.field, node.arg, node.op, tuple(values))
        return node
    if isinstance(node, Not):
        return Not(expand(node.expr, macro_tree, lists, seen))
    if isinstance(node, And):
        return And(tuple(expand(n, macro_tree, lists, seen) for n in node.items))
    if isinstance(node, Or):
        return Or(tuple(expand(n, macro_tree, lists, seen) for n in node.items))
    return node


def resolve_lists(raw: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    """Each list with the items that name another (earlier or later) list replaced by that list's items."""
    out: dict[str, tuple[str, ...]] = {}

    def resolve(name: str, stack: tuple[str, ...]) -> tuple[str, ...]:
        if name in out:
            return out[name]
        items: list[str] = []
        for item in raw[name]:
            if item in raw and item not in stack and item != name:
                items.extend(resolve(item, (*stack, name)))
            else:
                items.append(item)
        out[name] = tuple(items)
        return out[name]

    for name in raw:
        resolve(name, ())
    return out


# -- output templates --------------------------------------------------------------------------------

_OUTPUT_FIELD = re.compile(r"%(\()?([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)+)(\[[^\]]*\])?(?(1)\))")


def render_value(v: FieldValue) -> str:
    """A field value as Falco prints it: ``<NA>`` when absent, lists as ``(a,b)``."""
    if v is None:
        return "<NA>"
    if type(v) is tuple:
        return "(" + ",".join(_str(x) for x in v) + ")"
    return _str(v)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class OutputTemplate:
    """A rule's ``output`` split into literal text and ``%field`` references."""

    text: str
    #: Literal, field, literal, field, … literal (always one literal more than fields).
    literals: tuple[str, ...]
    fields: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, text: str) -> OutputTemplate:
        literals: list[str] = []
        fields: list[tuple[str, str | None]] = []
        pos = 0
        for m in _OUTPUT_FIELD.finditer(text):
            name = m.group(2)
            end = m.end()
            arg = m.group(3)
            if arg is None and name.endswith("."):
                name = name.rstrip(".")
                end -= 1
            literals.append(text[pos : m.start()])
            base, dotted = split_dotted_arg(name)
            if dotted is not None and arg is None:
                fields.append((base, dotted))
            else:
                fields.append((name, arg[1:-1] if arg else None))
            pos = end
        literals.append(text[pos:])
        return cls(text, tuple(literals), tuple(fields))

    def render(self, event: Event) -> str:
        lits = self.literals
        parts = [lits[0]]
        for i, (name, arg) in enumerate(self.fields):
            parts.append(render_value(event.field(name, arg)))
            parts.append(lits[i + 1])
        return "".join(parts)
