"""Falco's condition language: text → syntax tree. Pure; no knowledge of fields, lists or macros.

Grammar (Falco's, as libsinsp parses it)::

    expr    := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | primary
    primary := "(" expr ")" | check | MACRO
    check   := FIELD ["[" ARG "]"] (UNARY_OP | BINARY_OP value | LIST_OP "(" value ("," value)* ")")
    value   := "quoted" | 'quoted' | BARE

``FIELD`` is dotted (``ka.user.name``); a name without a dot is a macro (or, inside a list, a list name).
Bare values are runs of characters other than space, parentheses, quotes, ``=`` and ``,`` (so
``/healthz?`` and ``system:anonymous`` need no quotes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, TypeAlias

#: Operators taking no value.
UNARY_OPS: Final = frozenset({"exists"})
#: Operators whose value is a parenthesised list.
LIST_OPS: Final = frozenset({"in", "intersects", "pmatch"})
#: Operators taking one value; symbols first, longest first, so ``<=`` is not read as ``<``.
_SYMBOL_OPS: Final = ("==", "!=", "<=", ">=", "=", "<", ">")
_WORD_OPS: Final = frozenset(
    {
        "contains",
        "icontains",
        "bcontains",
        "startswith",
        "istartswith",
        "bstartswith",
        "endswith",
        "iendswith",
        "glob",
        "iglob",
        "regex",
    }
)
BINARY_OPS: Final = frozenset({"=", "==", "!=", "<", "<=", ">", ">=", *_WORD_OPS})


class ConditionSyntaxError(ValueError):
    """The condition does not parse; ``offset`` is where in the text."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Value:
    """A right-hand-side item: its text, and whether it was quoted (a quoted word is never a list name)."""

    text: str
    quoted: bool = False
    #: ``val(field[arg])``: the value is another field of the same event (Falco 0.37's field comparison).
    ref: tuple[str, str | None] | None = None


@dataclass(frozen=True, slots=True)
class Check:
    """``field[arg] op values``; ``values`` is empty for ``exists``, one item for binary operators."""

    field: str
    arg: str | None
    op: str
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class MacroRef:
    name: str


@dataclass(frozen=True, slots=True)
class Not:
    expr: Node


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Const:
    """True or false: what an empty list or a resolved rule part can fold to."""

    value: bool


Node: TypeAlias = Check | MacroRef | Not | And | Or | Const

_WS = re.compile(r"\s*")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_BARE = re.compile(r"""[^()"'\s=,]+""")
_WORD_END = re.compile(r"[A-Za-z0-9_.]")


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def fail(self, message: str) -> ConditionSyntaxError:
        near = self.s[self.i : self.i + 30]
        return ConditionSyntaxError(f"{message} at offset {self.i} (near {near!r})", self.i)

    def ws(self) -> None:
        m = _WS.match(self.s, self.i)
        assert m is not None
        self.i = m.end()

    def keyword(self, word: str) -> bool:
        self.ws()
        end = self.i + len(word)
        if self.s.startswith(word, self.i) and (end >= len(self.s) or not _WORD_END.match(self.s, end)):
            if word in ("and", "or", "not") and end < len(self.s) and self.s[end] not in " \t\r\n(":
                return False
            self.i = end
            return True
        return False

    def parse(self) -> Node:
        node = self.expr()
        self.ws()
        if self.i != len(self.s):
            raise self.fail("unexpected text")
        return node

    def expr(self) -> Node:
        items = [self.and_()]
        while self.keyword("or"):
            items.append(self.and_())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_(self) -> Node:
        items = [self.not_()]
        while self.keyword("and"):
            items.append(self.not_())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_(self) -> Node:
        if self.keyword("not"):
            return Not(self.not_())
        return self.primary()

    def primary(self) -> Node:
        self.ws()
        if self.s.startswith("(", self.i):
            self.i += 1
            node = self.expr()
            self.ws()
            if not self.s.startswith(")", self.i):
                raise self.fail("expected ')'")
            self.i += 1
            return node
        m = _IDENT.match(self.s, self.i)
        if m is None:
            raise self.fail("expected a field, a macro or '('")
        name = m.group()
        self.i = m.end()
        if "." not in name:
            return MacroRef(name)
        arg = None
        if self.s.startswith("[", self.i):
            end = self.s.find("]", self.i)
            if end < 0:
                raise self.fail("unterminated field argument")
            arg = self.s[self.i + 1 : end]
            if len(arg) >= 2 and arg[0] == arg[-1] and arg[0] in "\"'":
                arg = arg[1:-1]
            self.i = end + 1
        return self.check(name, arg)

    def check(self, field: str, arg: str | None) -> Check:
        self.ws()
        for op in _SYMBOL_OPS:
            if self.s.startswith(op, self.i):
                self.i += len(op)
                return Check(field, arg, "=" if op == "==" else op, (self.value(),))
        m = _IDENT.match(self.s, self.i)
        word = m.group() if m else ""
        if word in UNARY_OPS:
            self.i = m.end()  # type: ignore[union-attr]
            return Check(field, arg, word, ())
        if word in LIST_OPS:
            self.i = m.end()  # type: ignore[union-attr]
            return Check(field, arg, word, self.value_list())
        if word in _WORD_OPS:
            self.i = m.end()  # type: ignore[union-attr]
            return Check(field, arg, word, (self.value(),))
        raise self.fail(f"expected an operator after {field}")

    def value(self) -> Value:
        self.ws()
        if self.i < len(self.s) and self.s[self.i] in "\"'":
            return self.quoted()
        if self.s.startswith("val(", self.i):
            return self.field_value()
        m = _BARE.match(self.s, self.i)
        if m is None:
            raise self.fail("expected a value")
        self.i = m.end()
        return Value(m.group())

    def field_value(self) -> Value:
        self.i += 4
        self.ws()
        m = _IDENT.match(self.s, self.i)
        if m is None or "." not in m.group():
            raise self.fail("expected a field inside val()")
        name = m.group()
        self.i = m.end()
        arg = None
        if self.s.startswith("[", self.i):
            end = self.s.find("]", self.i)
            if end < 0:
                raise self.fail("unterminated field argument")
            arg = self.s[self.i + 1 : end]
            self.i = end + 1
        self.ws()
        if not self.s.startswith(")", self.i):
            raise self.fail("expected ')' after val(field")
        self.i += 1
        return Value(f"val({name})", ref=(name, arg))

    def quoted(self) -> Value:
        q = self.s[self.i]
        j = self.i + 1
        out: list[str] = []
        while j < len(self.s):
            c = self.s[j]
            if c == "\\" and j + 1 < len(self.s):
                nxt = self.s[j + 1]
                out.append(nxt if nxt in "\"'\\" else c + nxt)
                j += 2
                continue
            if c == q:
                self.i = j + 1
                return Value("".join(out), quoted=True)
            out.append(c)
            j += 1
        raise self.fail("unterminated string")

    def value_list(self) -> tuple[Value, ...]:
        self.ws()
        if not self.s.startswith("(", self.i):
            raise self.fail("expected '(' after a list operator")
        self.i += 1
        items: list[Value] = []
        self.ws()
        if self.s.startswith(")", self.i):
            self.i += 1
            return ()
        while True:
            items.append(self.value())
            self.ws()
            if self.s.startswith(",", self.i):
                self.i += 1
                continue
            if self.s.startswith(")", self.i):
                self.i += 1
                return tuple(items)
            raise self.fail("expected ',' or ')' in a list")


def parse_condition(text: str) -> Node:
    """The syntax tree of a condition. Raises :class:`ConditionSyntaxError`."""
    return _Parser(text).parse()


def macro_refs(node: Node) -> set[str]:
    """Names of the macros a tree refers to (not expanded)."""
    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, MacroRef):
            out.add(n.name)
        elif isinstance(n, Not):
            stack.append(n.expr)
        elif isinstance(n, And | Or):
            stack.extend(n.items)
    return out
