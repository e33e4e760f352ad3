"""The check language: small expressions over one object, compiled once into Python closures.

The grammar is Python's expression grammar (parsed with :mod:`ast`, never evaluated by Python) with
three spellings of our own, rewritten before parsing: ``[*]`` (every element of a list, every value of
a mapping), ``$name`` (a variable) and ``@`` (the element a ``for`` visits). ``docs/posture.md``,
section "Check language", is the reference; in short:

- a **path** ``securityContext.capabilities.add[*]`` is read from the current scope (the object, or the
  element ``for`` visits); ``$.metadata.name`` from the object; ``x["a/b"]`` for keys that are not names;
  ``x[0]`` an index. A path yields every value it reaches, each with its JSON path; a missing field
  (or an explicit ``null``) yields nothing;
- **comparisons** ``== != < <= > >= in not in`` hold when *some* value at the path satisfies them; a
  missing field satisfies none (write ``not (p == true)`` or ``missing(p)`` for "must be set");
  ``true``/``false`` never equal numbers;
- ``and``, ``or``, ``not``, literals (strings, numbers, ``true``, ``false``, ``null``, lists);
- **functions** (:data:`FUNCTIONS`) and the **named predicates** of :mod:`garrison.posture.predicates`,
  checked when the control is compiled: an unknown name is an error then, not at run time.

The value a check reports (its *witness*) is the value that made the first comparison hold; when none
did (``not``, ``missing``), the first path the expression reads, with ``null`` if it is absent.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from garrison.posture.resources import Resource, ResourceIndex

#: A node: (JSON path, value).
Node = tuple[str, Any]


class ExprError(ValueError):
    """A check expression that does not compile (syntax, unknown function or variable)."""


@dataclass(slots=True)
class Nodes:
    """What a path yields: the values it reached, each with its JSON path, and the path as written
    (resolved against the scope) for reporting a field that is missing."""

    items: list[Node]
    #: The path as written (or, with ``steps``, its base: the path is then built only when asked for).
    static: str = ""
    steps: tuple[Any, ...] | None = None

    def where(self) -> str:
        """The path as written, resolved against the scope (``spec.containers[*].image``)."""
        return self.static if self.steps is None else _static(self.static, self.steps)


@dataclass(slots=True)
class Ctx:
    """Everything one evaluation sees. One per (resource, control); ``scope`` moves with ``for``."""

    resource: Resource
    index: ResourceIndex
    params: dict[str, Any]
    scope: Node = ("", None)
    #: The node that made the check hold, set by the first comparison that held.
    witness: Node | Nodes | None = None
    #: The first path read (its first node; or, when it yielded nothing, the path itself, resolved to
    #: text only if it is reported: see :func:`resolve`), the fallback witness.
    first: Node | Nodes | None = None
    #: Named values a control's ``let`` or a predicate left for the finding (label → text).
    notes: dict[str, str] = field(default_factory=dict)


Fn = Callable[[Ctx], Any]


class Const:
    """A compiled literal: callable like any compiled expression, and known at compile time, so that
    comparisons, ``in`` and ``intersects`` against it are specialised once (a set for a list of
    strings) instead of rebuilt for every object."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self, ctx: Ctx) -> Any:
        return self.value


def _str_set(fn: Fn) -> frozenset[str] | None:
    """The strings of a literal list of strings (None for anything else)."""
    if isinstance(fn, Const) and isinstance(fn.value, list) and all(type(x) is str for x in fn.value):
        return frozenset(fn.value)
    return None


def _value_test(op: str, const: Any) -> Callable[[Any], bool] | None:
    """``value OP const`` with the language's semantics, specialised for a literal (None: no
    specialisation, take the generic test)."""
    if op in ("==", "!="):
        if type(const) is str:
            eq: Callable[[Any], bool] = lambda a: a == const  # noqa: E731 - no bool equals a string
        elif type(const) is bool:
            eq = lambda a: a is const  # noqa: E731
        elif type(const) is int:
            eq = lambda a: a == const and a is not True and a is not False  # noqa: E731
        else:
            return None
        return eq if op == "==" else (lambda a: not eq(a))
    if op in ("in", "not in"):
        members = _str_set(Const(const))
        if members is None:
            return None
        has: Callable[[Any], bool] = lambda a: type(a) is str and a in members  # noqa: E731
        return has if op == "in" else (lambda a: not has(a))
    return None


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


#: key → its path suffix when it is not a name (``["x/y"]``), or "" for a name; filled as keys are met.
_SUFFIX: dict[str, str] = {}


def join(base: str, key: str) -> str:
    """The JSON path of ``key`` under ``base`` (``a.b``, or ``a["x/y"]`` for keys that are not names)."""
    suffix = _SUFFIX.get(key)
    if suffix is None:
        suffix = "" if _IDENT.match(key) else f"[{json.dumps(key)}]"
        if len(_SUFFIX) < 100_000:  # bounded: keys come from the input
            _SUFFIX[key] = suffix
    if suffix:
        return base + suffix
    return f"{base}.{key}" if base else key


def _tail(keys: tuple[str, ...]) -> str:
    """The JSON path suffix of plain ``keys`` (``.a.b``, ``["x/y"]`` for a key that is not a name), as
    :func:`join` would build it key by key: compiled walks build it once instead of once a node."""
    return "".join(f".{k}" if _IDENT.match(k) else f"[{json.dumps(k)}]" for k in keys)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def equal(a: Any, b: Any) -> bool:
    """Equality without Python's ``True == 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    return bool(a == b)


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, str):
        return isinstance(item, str) and item in container
    if isinstance(container, list | tuple | set | frozenset):
        return any(equal(item, c) for c in container)
    if isinstance(container, dict):
        return isinstance(item, str) and item in container
    return False


def _order(op: str, a: Any, b: Any) -> bool:
    if not ((_is_num(a) and _is_num(b)) or (isinstance(a, str) and isinstance(b, str))):
        return False
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def truthy(v: Any, ctx: Ctx) -> bool:
    """Truth of a value; a path is true when one of its values is (that node becomes the witness)."""
    if v is True or v is False:
        return v
    if isinstance(v, Nodes):
        for node in v.items:
            if node[1]:
                if ctx.witness is None:
                    ctx.witness = node
                return True
        return False
    return bool(v)


def plain(v: Any) -> Any:
    """A single value: a path's first value (None when missing)."""
    if isinstance(v, Nodes):
        return v.items[0][1] if v.items else None
    return v


def values(v: Any) -> list[Any]:
    """All values: a path's values; a list as it is; anything else as a one-element list."""
    if isinstance(v, Nodes):
        out: list[Any] = []
        for _, x in v.items:
            if isinstance(x, list) and len(v.items) == 1:
                return list(x)
            out.append(x)
        return out
    if isinstance(v, list | tuple | set | frozenset):
        return list(v)
    return [] if v is None else [v]


def _note_first(ctx: Ctx, n: Nodes) -> None:
    if ctx.first is None:
        ctx.first = n.items[0] if n.items else n


def resolve(w: Node | Nodes) -> Node:
    """A witness as (path, value): a path that yielded nothing is reported where it should be set."""
    return (w.where(), None) if isinstance(w, Nodes) else w


# ---------------------------------------------------------------------------------------------- paths

_STAR = "__star__"


def _walk(start: list[Node], steps: tuple[Any, ...]) -> list[Node]:
    cur = start
    for step in steps:
        nxt: list[Node] = []
        if step is _STAR:
            for p, v in cur:
                if isinstance(v, list):
                    nxt.extend((f"{p}[{i}]", x) for i, x in enumerate(v) if x is not None)
                elif isinstance(v, dict):
                    nxt.extend((join(p, str(k)), x) for k, x in v.items() if x is not None)
        elif isinstance(step, int):
            for p, v in cur:
                if isinstance(v, list) and -len(v) <= step < len(v) and v[step] is not None:
                    nxt.append((f"{p}[{step}]", v[step]))
        else:
            for p, v in cur:
                if isinstance(v, dict):
                    x = v.get(step)
                    if x is not None:
                        # An entry's key and value are reported at the entry's own path.
                        nxt.append((p if isinstance(v, Entry) else join(p, step), x))
        if not nxt:
            return nxt
        cur = nxt
    return cur


def _static(base: str, steps: tuple[Any, ...]) -> str:
    out = base
    for s in steps:
        if s is _STAR:
            out += "[*]"
        elif isinstance(s, int):
            out += f"[{s}]"
        else:
            out = join(out, s)
    return out


#: Variables (``$name``): how each is read from the context.
def _var_obj(ctx: Ctx) -> list[Node]:
    return [("", ctx.resource.obj)]


def _var_pod(ctx: Ctx) -> list[Node]:
    found = ctx.resource.pod()
    return [found] if found is not None else []


def _var_podmeta(ctx: Ctx) -> list[Node]:
    return [ctx.resource.pod_metadata()]


def _var_containers(ctx: Ctx) -> list[Node]:
    return ctx.resource.container_nodes()


def _var_params(ctx: Ctx) -> list[Node]:
    return [("$params", ctx.params)]


def _var_at(ctx: Ctx) -> list[Node]:
    return [ctx.scope] if ctx.scope[1] is not None else []


VARIABLES: dict[str, Callable[[Ctx], list[Node]]] = {
    "": _var_obj,
    "obj": _var_obj,
    "pod": _var_pod,
    "podmeta": _var_podmeta,
    "containers": _var_containers,
    "params": _var_params,
    "at": _var_at,
}


def _one_star(steps: tuple[Any, ...], star: int) -> Callable[[list[Node]], list[Node]]:
    """``a.b[*].c.d`` with one wildcard (the usual one: ``capabilities.add[*]``, ``ports[*].hostPort``,
    ``env[*].valueFrom.secretKeyRef``, ``verbs[*]``): the keys on both sides followed inline; the same
    nodes, in the same order, as :func:`_walk`."""
    keys: tuple[str, ...] = steps[:star]
    after: tuple[str, ...] = steps[star + 1 :]
    tail = _tail(keys)
    head = tail[1:] if tail.startswith(".") else tail
    after_tail = _tail(after)

    def walk(start: list[Node]) -> list[Node]:
        out: list[Node] = []
        for p, v in start:
            if type(v) is Entry:
                out.extend(_walk([(p, v)], steps))
                continue
            for k in keys:
                v = v.get(k) if isinstance(v, dict) else None
                if v is None:
                    break
            if v is None:
                continue
            base = p + tail if p else head
            if isinstance(v, list):
                elems = [(f"{base}[{i}]", x) for i, x in enumerate(v) if x is not None]
            elif isinstance(v, dict):
                elems = [(join(base, str(k)), x) for k, x in v.items() if x is not None]
            else:
                continue
            if not after:
                out.extend(elems)
                continue
            for ep, x in elems:
                for k in after:
                    x = x.get(k) if isinstance(x, dict) else None
                    if x is None:
                        break
                if x is not None:
                    out.append((ep + after_tail if ep else after_tail.lstrip("."), x))
        return out

    return walk


def _walker(steps: tuple[Any, ...]) -> Callable[[list[Node]], list[Node]]:
    """The walk for ``steps``: plain keys (the common case) follow the dicts and build each path once
    at the end; anything else (wildcards, indexes, entries) takes :func:`_walk`."""
    stars = [i for i, k in enumerate(steps) if k is _STAR]
    if len(stars) == 1 and all(type(k) is str for k in steps):
        return _one_star(steps, stars[0])
    if not all(isinstance(k, str) and k is not _STAR for k in steps):
        return lambda start: _walk(start, steps)
    keys: tuple[str, ...] = steps
    tail = _tail(keys)
    head = tail[1:] if tail.startswith(".") else tail

    def walk(start: list[Node]) -> list[Node]:
        out: list[Node] = []
        for p, v in start:
            if type(v) is Entry:
                out.extend(_walk([(p, v)], steps))
                continue
            for k in keys:
                v = v.get(k) if isinstance(v, dict) else None
                if v is None:
                    break
            if v is not None:
                out.append((p + tail if p else head, v))
        return out

    return walk


def _path_fn(base: str | None, steps: tuple[Any, ...]) -> Fn:
    """A compiled path: ``base`` is a variable name, or None for the current scope."""
    walk = _walker(steps)
    if base is None and steps and all(type(k) is str and k is not _STAR for k in steps):
        keys: tuple[str, ...] = steps
        tail = _tail(keys)
        head = tail[1:] if tail.startswith(".") else tail

        def scoped_keys(ctx: Ctx) -> Nodes:
            # The most common path of all (``securityContext.privileged`` under a container), inlined.
            p, v = ctx.scope
            items: list[Node] = []
            if v is not None:
                if type(v) is Entry:
                    items = _walk([(p, v)], steps)
                else:
                    for k in keys:
                        v = v.get(k) if type(v) is dict or isinstance(v, dict) else None
                        if v is None:
                            break
                    if v is not None:
                        items = [(p + tail if p else head, v)]
            n = Nodes(items, p, steps)
            if ctx.first is None:
                ctx.first = items[0] if items else n
            return n

        return scoped_keys
    if base is None:

        def scoped(ctx: Ctx) -> Nodes:
            scope = ctx.scope
            n = Nodes(walk([scope]) if scope[1] is not None else [], scope[0], steps)
            if ctx.first is None:
                ctx.first = n.items[0] if n.items else n
            return n

        return scoped
    read = VARIABLES[base]
    if not steps:  # ``$containers``, ``@``: the variable's own nodes (read-only, so shared)

        def whole_var(ctx: Ctx) -> Nodes:
            start = read(ctx)
            n = Nodes(start, start[0][0] if len(start) == 1 else f"${base}", steps)
            if ctx.first is None:
                ctx.first = start[0] if start else n
            return n

        return whole_var

    if all(type(k) is str and k is not _STAR for k in steps):
        keys_walk = _walker(steps)  # plain keys: the dict-following walk, paths built once

        def var_keys(ctx: Ctx) -> Nodes:
            # ``$pod.securityContext.runAsUser``: plain keys from a variable.
            start = read(ctx)
            items = keys_walk(start)
            n = Nodes(items, start[0][0] if len(start) == 1 else f"${base}", steps)
            if ctx.first is None:
                ctx.first = items[0] if items else n
            return n

        return var_keys

    def from_var(ctx: Ctx) -> Nodes:
        start = read(ctx)
        n = Nodes(walk(start), start[0][0] if len(start) == 1 else f"${base}", steps)
        if ctx.first is None:
            ctx.first = n.items[0] if n.items else n
        return n

    return from_var


# ---------------------------------------------------------------------------------------------- functions

#: A function's implementation: (ctx, compiled argument closures) → value. Arguments are closures so
#: that ``any``/``all`` can evaluate their condition once per element.
Impl = Callable[[Ctx, list[Fn]], Any]


def _f_exists(ctx: Ctx, args: list[Fn]) -> bool:
    v = args[0](ctx)
    return bool(v.items) if isinstance(v, Nodes) else v is not None


def _f_missing(ctx: Ctx, args: list[Fn]) -> bool:
    v = args[0](ctx)
    if isinstance(v, Nodes):
        if not v.items:
            if ctx.witness is None:
                ctx.witness = (v.where(), None)
            return True
        return False
    return v is None


def _quantified(want_any: bool) -> Impl:
    def impl(ctx: Ctx, args: list[Fn]) -> bool:
        coll = args[0](ctx)
        items = coll.items if isinstance(coll, Nodes) else [("", x) for x in values(coll)]
        saved, first = ctx.scope, ctx.first
        try:
            for node in items:
                ctx.scope = node
                ctx.first = None
                hit = truthy(args[1](ctx), ctx)
                if want_any and hit:
                    # The element's own first path is the better witness than the collection.
                    if ctx.witness is None:
                        ctx.witness = ctx.first or node
                    return True
                if not want_any and not hit:
                    if ctx.witness is None:
                        ctx.witness = ctx.first or node
                    return False
            return not want_any
        finally:
            ctx.scope = saved
            ctx.first = first

    return impl


def _f_none(ctx: Ctx, args: list[Fn]) -> bool:
    w = ctx.witness
    hit = _quantified(True)(ctx, args)
    ctx.witness = w
    return not hit


def _f_count(ctx: Ctx, args: list[Fn]) -> int:
    v = args[0](ctx)
    return len(v.items) if isinstance(v, Nodes) else len(values(v))


def _f_len(ctx: Ctx, args: list[Fn]) -> int:
    v = plain(args[0](ctx))
    return len(v) if isinstance(v, str | list | dict) else 0


def _f_coalesce(ctx: Ctx, args: list[Fn]) -> Any:
    first: Nodes | None = None
    for a in args:
        v = a(ctx)
        if isinstance(v, Nodes):
            if v.items:
                return v
            first = first or v
        elif v is not None:
            return v
    return first if first is not None else None


def _map_str(fn: Callable[[str], Any]) -> Impl:
    """A function applied to every string value of a path (paths kept, so the witness stays exact)."""

    def impl(ctx: Ctx, args: list[Fn]) -> Any:
        v = args[0](ctx)
        if isinstance(v, Nodes):
            return Nodes([(p, fn(x)) for p, x in v.items if isinstance(x, str)], v.static, v.steps)
        return fn(v) if isinstance(v, str) else None

    return impl


def _test_str(test: Callable[[str, Any], bool]) -> Impl:
    """An existential string test over a path's values (``matches``, ``startswith``…)."""

    def impl(ctx: Ctx, args: list[Fn]) -> bool:
        v = args[0](ctx)
        arg = plain(args[1](ctx))
        items = v.items if isinstance(v, Nodes) else [("", v)]
        for node in items:
            if isinstance(node[1], str) and test(node[1], arg):
                if isinstance(v, Nodes) and ctx.witness is None:
                    ctx.witness = node
                return True
        return False

    return impl


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


def _regex(pattern: Any) -> re.Pattern[str]:
    text = str(pattern)
    rx = _REGEX_CACHE.get(text)
    if rx is None:
        rx = _REGEX_CACHE[text] = re.compile(text)
    return rx


def _prefixes(arg: Any) -> tuple[str, ...]:
    return tuple(str(a) for a in arg) if isinstance(arg, list | tuple) else (str(arg),)


class Entry(dict[str, Any]):
    """One ``{key, value}`` pair of a mapping, made by ``entries()``; its fields report the entry's path."""


def _f_entries(ctx: Ctx, args: list[Fn]) -> Nodes:
    v = args[0](ctx)
    items = v.items if isinstance(v, Nodes) else []
    return Nodes(
        [(join(p, str(k)), Entry(key=str(k), value=x)) for p, m in items if isinstance(m, dict) for k, x in m.items()],
        v.where() if isinstance(v, Nodes) else "",
    )


def _f_keys(ctx: Ctx, args: list[Fn]) -> Nodes:
    v = args[0](ctx)
    items = v.items if isinstance(v, Nodes) else []
    return Nodes(
        [(join(p, str(k)), str(k)) for p, x in items if isinstance(x, dict) for k in x], getattr(v, "static", "")
    )


def _f_subset(ctx: Ctx, args: list[Fn]) -> bool:
    a, b = values(args[0](ctx)), values(args[1](ctx))
    return all(_contains(b, x) for x in a)


def _f_intersects(ctx: Ctx, args: list[Fn]) -> bool:
    a, b = values(args[0](ctx)), values(args[1](ctx))
    return any(_contains(b, x) for x in a)


def _intersects_literal(first: Fn, members: frozenset[str]) -> Fn:
    """``intersects(x, ["a", "b"])``: the literal as a set, built once."""

    def impl(ctx: Ctx) -> bool:
        return any(type(x) is str and x in members for x in values(first(ctx)))

    return impl


def split_image(ref: str) -> tuple[str, str, str, str]:
    """(registry, repository, tag, digest) of an image reference, as the container runtime reads it:
    no registry means ``docker.io``; no tag and no digest means ``latest``."""
    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = ""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref, tag = ref[:colon], ref[colon + 1 :]
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repo = first, rest
    else:
        registry, repo = "docker.io", ref
    return registry, repo, tag, digest


FUNCTIONS: dict[str, tuple[Impl, int, int]] = {
    # name: (implementation, minimum arguments, maximum arguments)
    "exists": (_f_exists, 1, 1),
    "missing": (_f_missing, 1, 1),
    "any": (_quantified(True), 2, 2),
    "all": (_quantified(False), 2, 2),
    "none": (_f_none, 2, 2),
    "count": (_f_count, 1, 1),
    "len": (_f_len, 1, 1),
    "coalesce": (_f_coalesce, 1, 8),
    "lower": (_map_str(str.lower), 1, 1),
    "keys": (_f_keys, 1, 1),
    "entries": (_f_entries, 1, 1),
    "subset": (_f_subset, 2, 2),
    "intersects": (_f_intersects, 2, 2),
    "matches": (_test_str(lambda s, a: _regex(a).search(s) is not None), 2, 2),
    "startswith": (_test_str(lambda s, a: s.startswith(_prefixes(a))), 2, 2),
    "endswith": (_test_str(lambda s, a: s.endswith(_prefixes(a))), 2, 2),
    "image_registry": (_map_str(lambda s: split_image(s)[0]), 1, 1),
    "image_repository": (_map_str(lambda s: split_image(s)[1]), 1, 1),
    "image_tag": (_map_str(lambda s: split_image(s)[2]), 1, 1),
    "image_digest": (_map_str(lambda s: split_image(s)[3]), 1, 1),
}


# ---------------------------------------------------------------------------------------------- compiler

_REWRITES = (
    (re.compile(r"\[\*\]"), f"[{_STAR}]"),
    (re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)"), r"__v_\1"),
    (re.compile(r"\$(?=[.\[\s)]|$)"), "__v_"),
    (re.compile(r"@"), "__v_at"),
)
_CONSTANTS = {"true": True, "false": False, "null": None}


def _rewrite(text: str) -> str:
    # Leave string literals alone: rewrite only outside quotes.
    parts = re.split(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""", text)
    for i in range(0, len(parts), 2):
        for rx, repl in _REWRITES:
            parts[i] = rx.sub(repl, parts[i])
    return "".join(parts)


class Compiler:
    """Compiles expression text into closures; ``predicates`` are the named predicates allowed."""

    def __init__(self, predicates: dict[str, Impl]) -> None:
        self.predicates = predicates
        #: text → compiled closure: the same condition in several controls or version ranges compiles
        #: once (closures keep no state; everything they read is in the context).
        self._memo: dict[str, Fn] = {}

    def compile(self, text: str) -> Fn:
        got = self._memo.get(text)
        if got is not None:
            return got
        try:
            tree = ast.parse(_rewrite(text.strip()), mode="eval")
        except SyntaxError as exc:
            raise ExprError(f"{text!r}: {exc.msg}") from None
        got = self._memo[text] = self._node(tree.body, text)
        return got

    def _path(self, node: ast.expr, text: str) -> Fn | None:
        steps: list[Any] = []
        cur = node
        while True:
            if isinstance(cur, ast.Attribute):
                steps.append(cur.attr)
                cur = cur.value
            elif isinstance(cur, ast.Subscript):
                sl = cur.slice
                if isinstance(sl, ast.Name) and sl.id == _STAR:
                    steps.append(_STAR)
                elif (
                    isinstance(sl, ast.Constant) and isinstance(sl.value, str | int) and not isinstance(sl.value, bool)
                ):
                    steps.append(sl.value)
                elif (
                    isinstance(sl, ast.UnaryOp)
                    and isinstance(sl.op, ast.USub)
                    and isinstance(sl.operand, ast.Constant)
                    and isinstance(sl.operand.value, int)
                ):
                    steps.append(-sl.operand.value)
                else:
                    raise ExprError(f"{text!r}: a subscript must be a string, a whole number or *")
                cur = cur.value
            elif isinstance(cur, ast.Name):
                steps.reverse()
                name = cur.id
                if name.startswith("__v_"):
                    var = name[4:]
                    if var not in VARIABLES:
                        raise ExprError(
                            f"{text!r}: unknown variable ${var} (known: {', '.join(sorted(v for v in VARIABLES if v))})"
                        )
                    return _path_fn(var, tuple(steps))
                if name in _CONSTANTS and not steps:
                    return None
                return _path_fn(None, (name, *steps))
            else:
                return None

    def _node(self, node: ast.expr, text: str) -> Fn:
        if isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
            if isinstance(node, ast.Name) and node.id in _CONSTANTS:
                return Const(_CONSTANTS[node.id])
            path = self._path(node, text)
            if path is None:
                raise ExprError(f"{text!r}: cannot read {ast.unparse(node)!r} as a path")
            return path
        if isinstance(node, ast.Constant):
            return Const(node.value)
        if isinstance(node, ast.List | ast.Tuple):
            items = [self._node(e, text) for e in node.elts]
            if all(isinstance(i, Const) for i in items):
                return _ConstList([plain(i.value) for i in items])  # type: ignore[attr-defined]
            return lambda ctx: [plain(i(ctx)) for i in items]
        if isinstance(node, ast.UnaryOp):
            inner = self._node(node.operand, text)
            if isinstance(node.op, ast.Not):
                return lambda ctx: not truthy(inner(ctx), ctx)
            if isinstance(node.op, ast.USub):
                return lambda ctx: -plain(inner(ctx))
            raise ExprError(f"{text!r}: unsupported operator")
        if isinstance(node, ast.BoolOp):
            parts = [self._node(v, text) for v in node.values]
            if len(parts) == 2:
                a, b = parts
                if isinstance(node.op, ast.And):
                    return lambda ctx: truthy(a(ctx), ctx) and truthy(b(ctx), ctx)
                return lambda ctx: truthy(a(ctx), ctx) or truthy(b(ctx), ctx)
            if isinstance(node.op, ast.And):
                return lambda ctx: all(truthy(p(ctx), ctx) for p in parts)
            return lambda ctx: any(truthy(p(ctx), ctx) for p in parts)
        if isinstance(node, ast.Compare):
            return self._compare(node, text)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.keywords:
                raise ExprError(f"{text!r}: only plain function calls are allowed")
            name = node.func.id
            args = [self._node(a, text) for a in node.args]
            if name in FUNCTIONS:
                impl, lo, hi = FUNCTIONS[name]
                if not lo <= len(args) <= hi:
                    raise ExprError(f"{text!r}: {name}() takes {lo}{'' if lo == hi else f' to {hi}'} arguments")
                members = _str_set(args[1]) if name == "intersects" else None
                if members is not None:
                    return _intersects_literal(args[0], members)
                return lambda ctx: impl(ctx, args)
            if name in self.predicates:
                pred = self.predicates[name]
                return lambda ctx: pred(ctx, args)
            raise ExprError(f"{text!r}: unknown function or predicate {name}()")
        raise ExprError(f"{text!r}: unsupported syntax {type(node).__name__}")

    def _compare(self, node: ast.Compare, text: str) -> Fn:
        if len(node.ops) != 1:
            raise ExprError(f"{text!r}: chain comparisons with 'and'")
        op = node.ops[0]
        left = self._node(node.left, text)
        right = self._node(node.comparators[0], text)
        test: Callable[[Any, Any], bool]
        if isinstance(op, ast.Eq):
            test = equal
        elif isinstance(op, ast.NotEq):
            test = lambda a, b: not equal(a, b)  # noqa: E731
        elif isinstance(op, ast.In):
            test = lambda a, b: _contains(b, a)  # noqa: E731
        elif isinstance(op, ast.NotIn):
            test = lambda a, b: not _contains(b, a)  # noqa: E731
        elif isinstance(op, ast.Lt | ast.LtE | ast.Gt | ast.GtE):
            sym = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}[type(op)]
            test = lambda a, b: _order(sym, a, b)  # noqa: E731
        else:
            raise ExprError(f"{text!r}: unsupported comparison")
        membership = isinstance(op, ast.In | ast.NotIn)
        if isinstance(right, Const):
            spelled = {ast.Eq: "==", ast.NotEq: "!=", ast.In: "in", ast.NotIn: "not in"}.get(type(op), "")
            quick = _value_test(spelled, right.value) if spelled else None
            if quick is not None:
                return _compare_literal(left, quick)

        def compare(ctx: Ctx) -> bool:
            lv = left(ctx)
            rv = right(ctx)
            r = values(rv) if membership and isinstance(rv, Nodes) else plain(rv)
            if isinstance(lv, Nodes):
                for n in lv.items:
                    if test(n[1], r):
                        if ctx.witness is None:
                            ctx.witness = n
                        return True
                return False
            return test(lv, r)

        return compare


class _ConstList(Const):
    """A literal list (of literals): one list for every evaluation, never changed."""

    __slots__ = ()


def _compare_literal(left: Fn, test: Callable[[Any], bool]) -> Fn:
    """``left OP literal``: the same existential semantics as the generic comparison, with the
    literal's test built once."""

    def compare(ctx: Ctx) -> bool:
        lv = left(ctx)
        if isinstance(lv, Nodes):
            for n in lv.items:
                if test(n[1]):
                    if ctx.witness is None:
                        ctx.witness = n
                    return True
            return False
        return test(lv)

    return compare
