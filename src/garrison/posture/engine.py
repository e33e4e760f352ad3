"""The posture engine: resources x controls → misconfiguration findings. One engine for every input.

:func:`assess` is the entry point every input uses (manifests, a cluster snapshot, a live cluster, a
Docker host, Dockerfiles, node files): give it :class:`~garrison.posture.resources.Resource` values of
any ``kind`` and the controls, get findings in the shared envelope. :func:`evaluate` also returns, per
control and namespace, how many objects the control applied to, which the score needs (a pass is an
applicable object without a finding).

Per control: the check for the selected Kubernetes version is picked, the control's parameter defaults
are merged with the caller's (``params[NAME]`` overrides the default of every control that declares
NAME; ``params["CONTROL-ID"][NAME]`` overrides one control's), and each resource of a matching kind is
evaluated: ``when`` (does the control apply?), then ``for`` (which elements to visit, default the
object itself), then each ``fail`` expression; each one that holds is a finding at the witness path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from garrison.model.common import Finding, RuleId, RuleRef, Subject
from garrison.model.posture import (
    Misconfiguration,
    ObjectRef,
    misconfiguration_finding,
    misconfiguration_subject,
    new_misconfiguration,
)
from garrison.posture.controls import LATEST, Control, parse_version
from garrison.posture.expr import Ctx, Fn, Node, Nodes, resolve, truthy
from garrison.posture.resources import WORKLOAD, Resource, ResourceIndex

#: Longest ``actual`` value kept in a finding (a whole container spec is not evidence).
MAX_ACTUAL = 200


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one assessment did: the findings, and per (control id, namespace) the number of objects the
    control applied to (cluster-scoped and non-Kubernetes objects under namespace "")."""

    findings: tuple[Finding[Misconfiguration], ...]
    applicable: dict[tuple[str, str], int]


def _actual(value: Any) -> str:
    # Scalars (nearly every witness) without building an encoder: the same text json.dumps writes.
    if type(value) is str:
        text = encode_basestring(value)
        return text if len(text) <= MAX_ACTUAL else text[: MAX_ACTUAL - 1] + "…"
    if value is True or value is False or value is None or type(value) is int:
        return "true" if value is True else "false" if value is False else "null" if value is None else repr(value)
    try:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= MAX_ACTUAL else text[: MAX_ACTUAL - 1] + "…"


def object_ref(r: Resource) -> ObjectRef:
    return ObjectRef(
        kind=r.kind,
        name=r.name,
        namespace=r.namespace,
        api_version=r.api_version,
        source=r.source,
        line=r.line,
        document=r.document,
        cluster=r.cluster,
        host=r.host,
    )


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def line_at(obj: Any, path: str) -> int:
    """The ``line`` of the innermost object along ``path`` that records one (a Dockerfile's instructions
    do); 0 when none does. Lets a finding point at the instruction at fault, not at the file's first line."""
    line = 0
    node = obj
    for name, index in _SEGMENT.findall(path):
        if isinstance(node, dict):
            got = node.get("line")
            if isinstance(got, int) and not isinstance(got, bool) and got > 0:
                line = got
            node = node.get(name) if name else None
        elif isinstance(node, list) and index:
            i = int(index)
            node = node[i] if i < len(node) else None
        else:
            break
        if node is None:
            break
    if isinstance(node, dict):
        got = node.get("line")
        if isinstance(got, int) and not isinstance(got, bool) and got > 0:
            line = got
    return line


def _params_for(control: Control, params: dict[str, Any]) -> dict[str, Any]:
    merged = dict(control.params)
    for name in control.params:
        if name in params:
            merged[name] = params[name]
    own = params.get(control.id)
    if isinstance(own, dict):
        merged.update(own)
    return merged


def _candidates(control: Control, index: ResourceIndex, workloads: list[Resource]) -> Sequence[Resource]:
    if "*" in control.kinds:
        return index.resources
    out: list[Resource] = []
    seen: set[int] = set()
    if WORKLOAD in control.kinds:
        out.extend(workloads)
        seen.update(id(r) for r in workloads)
    for k in control.kinds - {WORKLOAD}:
        out.extend(r for r in index.by_kind.get(k, ()) if id(r) not in seen)
    return out


def rule_ref(control: Control) -> RuleRef:
    """The envelope's rule for a control's findings (built once per control)."""
    got = control._memo.get("rule")
    if got is None:
        got = control._memo["rule"] = RuleRef(
            id=RuleId(control.id),
            source="garrison/posture",
            title=control.title,
            aliases=control.equivalent_ids(),
            version=control.version,
        )
    return got  # type: ignore[no-any-return]


def _container_name(scope_path: str, value: Any) -> str:
    if isinstance(value, dict) and "ontainers[" in scope_path and scope_path.endswith("]"):
        return str(value.get("name") or "")
    return ""


@dataclass(slots=True)
class _Emitter:
    """Builds one control's findings (what they share is computed once per control)."""

    control: Control
    expected: str
    frameworks: tuple[str, ...]
    equivalents: tuple[str, ...]
    rule: RuleRef
    refs: dict[int, ObjectRef]
    #: (id of the object's ref, container) → (the ref, its subject, the title's prefix): shared by every
    #: finding on that container (the ref is held so that its id is not reused while this lives).
    subjects: dict[tuple[int, str], tuple[ObjectRef, Subject, str]]
    ctx: Ctx

    def __call__(self, r: Resource, scope: Node) -> Finding[Misconfiguration]:
        ctx, control = self.ctx, self.control
        found = ctx.witness or ctx.first
        w = resolve(found) if found is not None else (scope[0], None)
        ref = self.refs.get(id(r))
        if ref is None:
            ref = self.refs[id(r)] = object_ref(r)
        path = w[0] or scope[0]
        if r.kind == "Dockerfile":  # the instruction's own line, not the file's first
            at = line_at(r.obj, path)
            if at and at != ref.line:
                ref = replace(ref, line=at)
        container = _container_name(scope[0], scope[1])
        shared = self.subjects.get((id(ref), container))
        if shared is None:
            where = ref.display() + (f" container {container}" if container else "")
            shared = self.subjects[(id(ref), container)] = (ref, misconfiguration_subject(ref, container), where)
        m = new_misconfiguration(  # the fields in declaration order (model/posture.py)
            control.id,
            control.title,
            control.severity,
            ref,
            path,
            _actual(w[1]),
            self.expected,
            control.remediation,
            control.family,
            container,
            self.frameworks,
            self.equivalents,
            tuple(sorted(ctx.notes.items())) if ctx.notes else (),
        )
        return misconfiguration_finding(m, rule=self.rule, subject=shared[1], where=shared[2])


def _visit_pairs(
    ctx: Ctx, r: Resource, scopes: list[Node], fails: tuple[tuple[str, Fn], ...], visits: tuple[Fn | None, ...]
) -> list[tuple[Node, Fn]]:
    """(scope, condition) in evaluation order when some condition has its own ``for``: that condition
    at each element it visits (one finding per offending container), the others at every scope."""
    out: list[tuple[Node, Fn]] = []
    for (_text, fn), visit in zip(fails, visits, strict=True):
        if visit is None:
            out.extend((scope, fn) for scope in scopes)
            continue
        ctx.scope = ("", r.obj)
        ctx.witness = ctx.first = None
        got = visit(ctx)
        out.extend((scope, fn) for scope in (got.items if isinstance(got, Nodes) else []))
    return out


def evaluate(
    resources: Sequence[Resource],
    controls: Sequence[Control],
    params: dict[str, Any] | None = None,
    *,
    version: str | tuple[int, int] = "latest",
) -> Evaluation:
    """Assess ``resources`` against ``controls``; ``version`` selects the pod security checks of that
    Kubernetes version (``latest`` by default)."""
    params = params or {}
    ver = version if isinstance(version, tuple) else parse_version(version) if version else LATEST
    index = ResourceIndex(list(resources))
    workloads = [r for r in index.resources if r.is_workload]
    findings: list[Finding[Misconfiguration]] = []
    applicable: dict[tuple[str, str], int] = {}
    refs: dict[int, ObjectRef] = {}
    subjects: dict[tuple[int, str], tuple[ObjectRef, Subject, str]] = {}
    for control in controls:
        candidates = _candidates(control, index, workloads)
        if not candidates:
            continue  # before check_for: a control no object can meet is never compiled
        check = control.check_for(ver)
        if check is None:
            continue
        cparams = _params_for(control, params)
        fw = control.framework_refs()
        eq = control.equivalent_ids()
        expected = check.expected or control.expected
        ctx = Ctx(index.resources[0] if index.resources else Resource({}), index, cparams)
        rule = rule_ref(control)
        when, for_each, fails, visits = check.when, check.for_each, check.fails, check.visits
        per_ns: dict[str, int] = {}

        finding = _Emitter(control, expected, fw, eq, rule, refs, subjects, ctx)

        for r in candidates:
            # One context per control, reset for each object (creating one per pair was measurable).
            ctx.resource = r
            ctx.witness = ctx.first = None
            if ctx.notes:
                ctx.notes = {}
            if when is not None:
                ctx.scope = ("", r.obj)
                if not truthy(when(ctx), ctx):
                    continue
            per_ns[r.namespace] = per_ns.get(r.namespace, 0) + 1
            if for_each is not None:
                ctx.scope = ("", r.obj)
                ctx.witness = ctx.first = None
                got = for_each(ctx)
                scopes = got.items if isinstance(got, Nodes) else []
            else:
                scopes = [("", r.obj)]
            if visits:
                for scope, fn in _visit_pairs(ctx, r, scopes, fails, visits):
                    ctx.scope = scope
                    ctx.witness = ctx.first = None
                    if truthy(fn(ctx), ctx):
                        findings.append(finding(r, scope))
                continue
            for scope in scopes:
                for _text, fn in fails:
                    ctx.scope = scope
                    ctx.witness = ctx.first = None
                    if truthy(fn(ctx), ctx):
                        findings.append(finding(r, scope))
        for ns, n in per_ns.items():
            applicable[(control.id, ns)] = applicable.get((control.id, ns), 0) + n
    return Evaluation(tuple(findings), applicable)


def assess(
    resources: Sequence[Resource],
    controls: Sequence[Control],
    params: dict[str, Any] | None = None,
    *,
    version: str | tuple[int, int] = "latest",
) -> tuple[Finding[Misconfiguration], ...]:
    """The findings of ``controls`` over ``resources`` (see :func:`evaluate`)."""
    return evaluate(resources, controls, params, version=version).findings
