"""Named predicates: what the check language cannot say, in one explicit registry.

Each predicate is a function ``(ctx, args) -> value`` (``args`` are compiled argument closures, like a
built-in function's) registered in :data:`PREDICATES` by name; a check calls it as ``name(...)``. A
duplicate name fails at import time (:func:`registry`), and a check naming a predicate that is not
here fails when the control is compiled. Most predicates look across objects (a Role's bindings, a
namespace's NetworkPolicies) through :class:`~garrison.posture.resources.ResourceIndex`, which computes
each lookup table once per assessment.

Other inputs (Docker hosts, Dockerfiles, node files) add their predicates by listing them in
:data:`PREDICATES` below, never by registering themselves on import.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from garrison.posture import nodefiles
from garrison.posture.expr import Ctx, Fn, Impl, Nodes, join, plain
from garrison.posture.resources import Resource, ResourceIndex, selector_matches

# ---------------------------------------------------------------------------------------------- RBAC

_BINDING_KINDS = ("RoleBinding", "ClusterRoleBinding")


def _binding_table(index: ResourceIndex) -> dict[tuple[str, str, str], list[Resource]]:
    """(role kind, role namespace, role name) → the bindings that grant it. A RoleBinding may grant a
    ClusterRole inside its namespace; such a grant is keyed on the ClusterRole (namespace "")."""
    table: dict[tuple[str, str, str], list[Resource]] = {}
    for b in index.of_kind(*_BINDING_KINDS):
        ref = b.obj.get("roleRef")
        if not isinstance(ref, dict):
            continue
        kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        ns = b.namespace if kind == "Role" else ""
        table.setdefault((kind, ns, name), []).append(b)
    return table


def _bindings_of(ctx: Ctx) -> list[Resource]:
    r = ctx.resource
    table = ctx.index.memo("rbac.bindings", lambda: _binding_table(ctx.index))
    ns = r.namespace if r.kind == "Role" else ""
    found: list[Resource] = table.get((r.kind, ns, r.name), [])
    return found


def _subject_text(s: Any) -> str:
    if not isinstance(s, dict):
        return "?"
    kind = str(s.get("kind") or "")
    name = str(s.get("name") or "")
    ns = str(s.get("namespace") or "")
    return f"{kind}:{ns + '/' if ns else ''}{name}"


def _subjects(b: Resource) -> list[Any]:
    subjects = b.obj.get("subjects")
    return subjects if isinstance(subjects, list) else []


def p_bindings(ctx: Ctx, args: list[Fn]) -> Nodes:
    """``bindings()``: the RoleBindings and ClusterRoleBindings that grant this Role or ClusterRole, as
    nodes; the subjects they bind are noted on the finding (``bound to``)."""
    # Once per role and assessment: the sixteen RBAC controls all ask for the same role's bindings.
    cache: dict[int, tuple[list[Resource], dict[str, str]]] = ctx.index.memo("rbac.bindings.of", dict)
    got = cache.get(id(ctx.resource))
    if got is None:
        found = _bindings_of(ctx)
        notes: dict[str, str] = {}
        if found:
            subjects = sorted({_subject_text(s) for b in found for s in _subjects(b)})
            more = f" (+{len(subjects) - 20})" if len(subjects) > 20 else ""
            notes["bound to"] = ", ".join(subjects[:20]) + more
            notes["bindings"] = ", ".join(
                sorted(f"{b.kind}/{b.namespace + '/' if b.namespace else ''}{b.name}" for b in found)[:20]
            )
        got = cache[id(ctx.resource)] = (found, notes)
    found, notes = got
    if notes:
        ctx.notes.update(notes)
    return Nodes([(f"{b.kind}/{b.name}", b.obj) for b in found], "bindings()")


#: Subjects that mean "everyone": granting them anything is granting it to the internet or every pod.
PUBLIC_GROUPS = frozenset({"system:anonymous", "system:unauthenticated", "system:authenticated"})


def p_public_subject(ctx: Ctx, args: list[Fn]) -> bool:
    """``public_subject(subject)``: the subject is ``system:anonymous`` or one of the groups every
    request or every authenticated identity (every service account) belongs to."""
    s = plain(args[0](ctx))
    return isinstance(s, dict) and str(s.get("name") or "") in PUBLIC_GROUPS


# ---------------------------------------------------------------------------------------------- network


def _policies_by_namespace(index: ResourceIndex) -> dict[str, list[Resource]]:
    out: dict[str, list[Resource]] = {}
    for p in index.of_kind("NetworkPolicy"):
        out.setdefault(p.namespace, []).append(p)
    return out


def _pod_labels(r: Resource) -> dict[str, str]:
    _, meta = r.pod_metadata()
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def _spec(r: Resource) -> dict[str, Any]:
    spec = r.obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def p_network_policies(ctx: Ctx, args: list[Fn]) -> Nodes:
    """``network_policies()``: the NetworkPolicies of the resource's namespace that select its pods (a
    workload) or, for a Namespace, every NetworkPolicy in it."""
    table = ctx.index.memo("net.policies", lambda: _policies_by_namespace(ctx.index))
    r = ctx.resource
    if r.kind == "Namespace":
        found = table.get(r.name, [])
        if ctx.first is None:
            ctx.first = ("metadata.name", r.name)
    else:
        labels = _pod_labels(r)
        found = [p for p in table.get(r.namespace, []) if selector_matches(_spec(p).get("podSelector"), labels)]
        if ctx.first is None:
            # The pod labels are what a NetworkPolicy would have to select.
            ctx.first = (join(r.pod_metadata()[0], "labels"), labels)
    return Nodes([(f"NetworkPolicy/{p.name}", p.obj) for p in found], "network_policies()")


def _workloads_by_namespace(index: ResourceIndex) -> dict[str, list[tuple[Resource, dict[str, str]]]]:
    out: dict[str, list[tuple[Resource, dict[str, str]]]] = {}
    for w in index.resources:
        if w.is_workload:
            out.setdefault(w.namespace, []).append((w, _pod_labels(w)))
    return out


def p_service_pods(ctx: Ctx, args: list[Fn]) -> Nodes:
    """``service_pods()``: the workloads of the Service's namespace whose pod labels its selector picks."""
    r = ctx.resource
    spec = r.obj.get("spec")
    selector = spec.get("selector") if isinstance(spec, dict) else None
    if not isinstance(selector, dict) or not selector:
        return Nodes([], "service_pods()")
    table = ctx.index.memo("workloads.by_namespace", lambda: _workloads_by_namespace(ctx.index))
    wanted = [(str(k), str(v)) for k, v in selector.items()]
    found = [w for w, labels in table.get(r.namespace, ()) if all(labels.get(k) == v for k, v in wanted)]
    return Nodes([(f"{w.kind}/{w.name}", w.obj) for w in found], "service_pods()")


# ---------------------------------------------------------------------------------------------- files


def p_mode_wider(ctx: Ctx, args: list[Fn]) -> bool:
    """``mode_wider(PATH, "0644")``: the file mode at PATH (an octal string such as ``"0664"``, as the
    Docker-host and node-file inputs record it) has a permission bit the mask does not allow, i.e. it
    is not "0644 or more restrictive". A missing mode (no such file) is not wider."""
    got = args[0](ctx)
    mask = int(str(plain(args[1](ctx))), 8)
    items = got.items if isinstance(got, Nodes) else [("", got)]
    for node in items:
        text = node[1]
        if isinstance(text, str) and text.isdigit() and int(text, 8) & ~mask & 0o7777:
            if isinstance(got, Nodes) and ctx.witness is None:
                ctx.witness = node
            return True
    return False


# ---------------------------------------------------------------------------------------------- registry


def registry(entries: Iterable[tuple[str, Impl]]) -> dict[str, Impl]:
    """The name → predicate table; a name given twice is a programming error, caught at start."""
    out: dict[str, Impl] = {}
    for name, fn in entries:
        if name in out:
            raise ValueError(f"duplicate posture predicate {name!r}")
        out[name] = fn
    return out


#: Every named predicate, in one list.
PREDICATES: dict[str, Impl] = registry(
    [
        ("bindings", p_bindings),
        ("public_subject", p_public_subject),
        ("network_policies", p_network_policies),
        ("service_pods", p_service_pods),
        ("mode_wider", p_mode_wider),
        ("component", nodefiles.p_component),
        ("flag", nodefiles.p_flag),
        ("flag_list", nodefiles.p_flag_list),
        ("component_flag", nodefiles.p_component_flag),
        ("duration_seconds", nodefiles.p_duration_seconds),
    ]
)
