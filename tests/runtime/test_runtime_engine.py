"""The rule language and the engine: conditions, operators, lists and macros resolved after every file,
append and override, exceptions, load errors that name the file, the line and the rule, skipped rules,
and the index (checked against evaluating every rule on every event)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.runtime.audit_support import RECORDED, DictEvent, falco, needs_falco, needs_recorded

from garrison.runtime.condition import And, Check, ConditionSyntaxError, MacroRef, Not, Or, Value, parse_condition
from garrison.runtime.engine import RuleLoadError, RuleSet, load_rules
from garrison.runtime.k8saudit import parse_event

HEAD = "- required_engine_version: 0.26.0\n"


def _rules(text: str, *more: str) -> RuleSet:
    texts = [("base.yaml", HEAD + text)] + [(f"more{i}.yaml", t) for i, t in enumerate(more)]
    return load_rules([], texts=texts)


def _rule(cond: str, *, source: str = "k8s_audit", name: str = "r") -> str:
    head = f"- rule: {name}\n  desc: d\n  condition: {cond}\n"
    return head + f"  output: o %ka.verb\n  priority: WARNING\n  source: {source}\n"


def _hits(rs: RuleSet, **values: object) -> list[str]:
    ev = DictEvent("k8s_audit", {k.replace("__", "."): v for k, v in values.items()})  # type: ignore[misc]
    return [m.rule.name for m in rs.evaluate(ev)]


# -- parsing -----------------------------------------------------------------------------------------


def test_precedence_not_and_or() -> None:
    tree = parse_condition("a or not b and c")
    assert tree == Or((MacroRef("a"), And((Not(MacroRef("b")), MacroRef("c")))))


def test_values_bare_quoted_lists_and_arguments() -> None:
    tree = parse_condition("ka.uri startswith /healthz? and ka.uri.param[command] in (id, 'a b', \"c,d\")")
    assert tree == And(
        (
            Check("ka.uri", None, "startswith", (Value("/healthz?"),)),
            Check("ka.uri.param", "command", "in", (Value("id"), Value("a b", True), Value("c,d", True))),
        )
    )
    assert parse_condition("jevt.value[/a~1b] exists") == Check("jevt.value", "/a~1b", "exists", ())
    assert parse_condition("x.y = val(ka.user.name)").values[0].ref == ("ka.user.name", None)  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", ["ka.verb =", "(ka.verb=create", "ka.verb in create", "ka.verb create", "ka.verb='x"])
def test_syntax_errors_say_where(bad: str) -> None:
    with pytest.raises(ConditionSyntaxError, match="offset"):
        parse_condition(bad)


# -- operators (one table; None = the field is absent) ----------------------------------------------

OPS = [
    ("ka.verb = create", {"ka.verb": "create"}, True),
    ("ka.verb = create", {}, False),
    ("ka.verb != create", {"ka.verb": "get"}, True),
    ("ka.verb != create", {}, False),  # Falco: a comparison with an absent field is false
    ("not ka.verb = create", {}, True),
    ("ka.verb in (get, list)", {"ka.verb": "list"}, True),
    ("ka.user.groups in (a, b)", {"ka.user.groups": ("a", "b")}, True),  # a list: every element
    ("ka.user.groups in (a, b)", {"ka.user.groups": ("a", "c")}, False),
    ("ka.user.groups intersects (c)", {"ka.user.groups": ("a", "c")}, True),  # any element
    ("ka.user.groups = c", {"ka.user.groups": ("a", "c")}, True),
    ("ka.uri contains heal", {"ka.uri": "/healthz"}, True),
    ("ka.uri icontains HEAL", {"ka.uri": "/Healthz"}, True),
    ("ka.uri startswith /api", {"ka.uri": "/apis"}, True),
    ("ka.uri endswith z", {"ka.uri": "/healthz"}, True),
    ("ka.uri glob '/api/*/pods'", {"ka.uri": "/api/v1/pods"}, True),
    ("ka.uri glob '/api/?/pods'", {"ka.uri": "/api/v1/pods"}, False),
    ("ka.uri pmatch (/etc, /var/run)", {"ka.uri": "/etc/shadow"}, True),
    ("ka.uri pmatch (/etc)", {"ka.uri": "/etcd"}, False),
    ("ka.uri regex '^/api/v[0-9]+$'", {"ka.uri": "/api/v1"}, True),
    ("ka.uri exists", {"ka.uri": ""}, True),
    ("ka.uri exists", {}, False),
    ("ka.response.code startswith 2", {"ka.response.code": "201"}, True),
    ("jevt.rawtime > 5", {"jevt.rawtime": 6}, True),
    ("jevt.rawtime <= 5", {"jevt.rawtime": 6}, False),
    ("ka.uri.param[command] = id", {("ka.uri.param", "command"): "id"}, True),
    ("ka.user.name = val(ka.impuser.name)", {"ka.user.name": "a", "ka.impuser.name": "a"}, True),
    ("ka.user.name != val(ka.impuser.name)", {"ka.user.name": "a"}, False),
    ("(ka.verb=get or ka.verb=list) and not ka.uri startswith /x", {"ka.verb": "get", "ka.uri": "/y"}, True),
]


@pytest.mark.parametrize(("cond", "values", "expected"), OPS)
def test_operator(cond: str, values: dict[object, object], expected: bool) -> None:
    rs = load_rules([], texts=[("t.yaml", _rule(cond))])
    assert bool(rs.evaluate(DictEvent("k8s_audit", values))) is expected  # type: ignore[arg-type]


def test_syscall_fields_type_and_dotted_arguments() -> None:
    rs = load_rules(
        [],
        texts=[
            (
                "t.yaml",
                _rule("evt.type in (openat) and fd.rport = 4444 and evt.arg.flags contains O_WRONLY", source="syscall"),
            )
        ],
    )
    ev = DictEvent("syscall", {"evt.type": "openat", "fd.rport": 4444, ("evt.arg", "flags"): "O_WRONLY|O_CREAT"})
    assert [m.rule.name for m in rs.evaluate(ev)] == ["r"]
    assert rs.evaluate(DictEvent("syscall", {"evt.type": "connect", "fd.rport": 4444})) == []


# -- lists, macros, append, override, exceptions ----------------------------------------------------


def test_lists_and_macros_bind_after_every_file() -> None:
    base = (
        "- list: users\n  items: [alice, more_users]\n"
        "- list: more_users\n  items: [bob]\n"
        "- macro: known\n  condition: ka.user.name in (users)\n" + _rule("not known and ka.verb=create")
    )
    later = "- macro: known\n  condition: ka.user.name in (users) or ka.user.name=carol\n"
    rs = _rules(base, later, "- list: users\n  items: [dave]\n  append: true\n")
    assert _hits(rs, ka__user__name="bob", ka__verb="create") == []
    assert _hits(rs, ka__user__name="carol", ka__verb="create") == []
    assert _hits(rs, ka__user__name="dave", ka__verb="create") == []
    assert _hits(rs, ka__user__name="erin", ka__verb="create") == ["r"]


def test_rule_append_and_override() -> None:
    rs = _rules(
        _rule("ka.verb=create"),
        "- rule: r\n  condition: and ka.user.name=admin\n  append: true\n",
        "- rule: r\n  priority: CRITICAL\n  output: new %ka.user.name\n"
        "  override: {priority: replace, output: replace}\n",
    )
    (rule,) = rs.rules
    assert rule.priority == "Critical" and rule.file == "base.yaml"
    assert _hits(rs, ka__verb="create", ka__user__name="admin") == ["r"]
    assert _hits(rs, ka__verb="create", ka__user__name="bob") == []
    ev = DictEvent("k8s_audit", {"ka.verb": "create", "ka.user.name": "admin"})
    assert rs.evaluate(ev)[0].output == "new admin"
    disabled = _rules(_rule("ka.verb=create"), "- rule: r\n  enabled: false\n")
    assert disabled.rules[0].enabled is False and _hits(disabled, ka__verb="create") == []


def test_exceptions() -> None:
    rs = _rules(
        "- list: ok_ns\n  items: [kube-system]\n" + _rule("ka.verb=create") + "  exceptions:\n"
        "    - name: by_user_ns\n      fields: [ka.user.name, ka.target.namespace]\n"
        "      values:\n        - [admin, default]\n"
        "    - name: namespaces\n      fields: ka.target.namespace\n      values: [ok_ns]\n"
        "    - name: prefix\n      fields: [ka.uri]\n      comps: [startswith]\n      values: [[/healthz]]\n"
    )
    assert _hits(rs, ka__verb="create", ka__user__name="admin", ka__target__namespace="default") == []
    assert _hits(rs, ka__verb="create", ka__user__name="bob", ka__target__namespace="default") == ["r"]
    assert _hits(rs, ka__verb="create", ka__target__namespace="kube-system") == []
    assert _hits(rs, ka__verb="create", ka__uri="/healthz?x") == []


# -- errors and skips --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (_rule("ka.verb = "), 2, "rule 'r': condition"),
        (_rule("undefined_macro and ka.verb=get"), 2, "undefined macro 'undefined_macro'"),
        (_rule("jevt.rawtime = soon"), 2, "is a number"),
        (_rule("ka.uri.param = x"), 2, "needs an argument"),
        (
            "- rule: r\n  desc: d\n  condition: ka.verb=get\n  output: o\n  priority: LOUD\n  source: k8s_audit\n",
            2,
            "unknown priority",
        ),
        ("- rule: r\n  condition: and x\n  append: true\n", 2, "not defined before"),
        ("- rule: [unclosed\n", 3, "not valid YAML"),
    ],
)
def test_load_errors_name_file_line_and_rule(text: str, line: int, message: str) -> None:
    with pytest.raises(RuleLoadError) as e:
        _rules(text)
    assert str(e.value).startswith(f"base.yaml:{line}: ")
    assert message in str(e.value)
    if "YAML" not in message:
        assert "rule 'r'" in str(e.value)


def test_unknown_fields_and_sources_skip_the_rule() -> None:
    rs = _rules(
        _rule("ka.verb=get and ka.no.such.field=1", name="a")
        + _rule("proc.exe_ino.ctime > 0", source="syscall", name="b")
        + _rule("ct.name=x", source="aws_cloudtrail", name="c")
        + _rule("ka.verb=get", name="d")
    )
    assert [r.name for r in rs.rules] == ["d"]
    assert [(s.name, s.reason, s.field) for s in rs.skipped] == [
        ("a", "unknown field ka.no.such.field", "ka.no.such.field"),
        ("b", "unknown field proc.exe_ino.ctime", "proc.exe_ino.ctime"),
        ("c", "no events for source aws_cloudtrail", ""),
    ]
    assert all(s.file == "base.yaml" and s.line > 1 for s in rs.skipped)


def test_output_of_unknown_field_is_na() -> None:
    rs = _rules(_rule("ka.verb=get").replace("o %ka.verb", "who=%ka.user.name what=%no.such list=%ka.user.groups"))
    ev = DictEvent("k8s_audit", {"ka.verb": "get", "ka.user.groups": ("a", "b")})
    assert rs.evaluate(ev)[0].output == "who=<NA> what=<NA> list=(a,b)"


# -- the index against the full computation ----------------------------------------------------------


@needs_falco
@needs_recorded
def test_index_gives_what_evaluating_every_rule_gives() -> None:
    """Shortcut vs full computation: an event is checked only against the rules filed under its verb and
    resource; checking every rule must give the same matches on real events."""
    from garrison.services.runtime import RULES_DIR

    rs = load_rules([RULES_DIR / "k8s_audit.yaml", falco("k8s_audit_rules.yaml")])
    paths = [RECORDED, *sorted(Path(falco("k8s_audit_trace_files")).glob("*.json"))]
    checked = 0
    for path in paths:
        for line in path.read_bytes().splitlines():
            try:
                events = parse_event(line)
            except ValueError:
                continue
            for ev in events:
                indexed = [m.rule.name for m in rs.evaluate(ev)]
                full = [c.rule.name for c in rs._compiled["k8s_audit"] if c.predicate(ev)]
                assert indexed == full, ev
                checked += 1
                assert len(rs.candidates(ev)) <= len(rs._compiled["k8s_audit"])
    assert checked > 170
    # and the index does narrow: a plain get reaches few of the ~70 rules
    (get,) = parse_event(RECORDED.read_bytes().splitlines()[0])
    assert len(rs.candidates(get)) < 15
