"""The resource model: what the posture engine assesses.

A :class:`Resource` is one object as a plain dict (a Kubernetes object, a Docker container's inspect
data, a parsed Dockerfile, a kubelet configuration…) plus where it came from (file, line, document
index). The engine only ever asks a resource for its ``kind`` and its dict; controls declare the kinds
they apply to. Two things are derived here, once, for every resource:

- its **pod spec**, found by shape, not by a list of kinds: ``spec`` of a ``Pod``; ``template.spec`` of a
  ``PodTemplate``; ``spec.jobTemplate.spec.template.spec`` of a ``CronJob``; ``spec.template.spec`` of
  anything else whose template spec holds a ``containers`` list (Deployment, StatefulSet, DaemonSet,
  ReplicaSet, ReplicationController, Job, and CRDs such as Argo Rollouts). Controls of kind
  ``Workload`` apply to every resource that has one;
- its **containers**: ``containers``, ``initContainers`` and ``ephemeralContainers`` alike, each with its
  JSON path, so ``$containers`` in a check visits all three.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The pseudo-kind of every resource with a pod template.
WORKLOAD = "Workload"
#: The container lists of a pod spec, in the order they are visited.
CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")


def _as_dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def find_pod_spec(obj: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(JSON path, pod spec) of ``obj`` when it has one, found by shape."""
    kind = obj.get("kind")
    spec = _as_dict(obj.get("spec"))
    if kind == "Pod":
        return ("spec", spec) if spec is not None else ("spec", {})
    if kind == "PodTemplate":
        t = _as_dict(obj.get("template"))
        s = _as_dict(t.get("spec")) if t else None
        return ("template.spec", s) if s is not None else None
    if spec is None:
        return None
    if kind == "CronJob":
        jt = _as_dict(spec.get("jobTemplate"))
        js = _as_dict(jt.get("spec")) if jt else None
        t = _as_dict(js.get("template")) if js else None
        s = _as_dict(t.get("spec")) if t else None
        return ("spec.jobTemplate.spec.template.spec", s) if s is not None else None
    t = _as_dict(spec.get("template"))
    s = _as_dict(t.get("spec")) if t else None
    if s is not None and isinstance(s.get("containers"), list):
        return ("spec.template.spec", s)
    return None


@dataclass(frozen=True, slots=True)
class Container:
    """One container of a pod spec, whichever list it is in."""

    #: JSON path of the container in the object (``spec.template.spec.initContainers[0]``).
    path: str
    #: ``containers``, ``initContainers`` or ``ephemeralContainers``.
    list_name: str
    #: The container's dict.
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.spec.get("name") or "")


@dataclass(slots=True)
class Resource:
    """One object to assess: the dict and where it came from."""

    #: The object itself (never changed by the engine).
    obj: dict[str, Any]
    #: File it was read from (``-`` for standard input; "" for a live cluster or host).
    source: str = ""
    #: 1-based line of its first line in ``source`` (0 = unknown).
    line: int = 0
    #: 0-based document index inside ``source``.
    document: int = 0
    #: Cluster id (kubeconfig context) for live and named inputs.
    cluster: str = ""
    #: Host name for host-level objects (a Docker daemon, a node file).
    host: str = ""
    _pod: tuple[str, dict[str, Any]] | bool | None = field(default=False, repr=False)
    _containers: tuple[Container, ...] | None = field(default=None, repr=False)
    _nodes: list[tuple[str, Any]] | None = field(default=None, repr=False)
    #: Read from the object once (the engine asks for them for every control).
    kind: str = field(init=False, default="")
    name: str = field(init=False, default="")
    namespace: str = field(init=False, default="")
    metadata: dict[str, Any] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.kind = str(self.obj.get("kind") or "")
        self.metadata = _as_dict(self.obj.get("metadata")) or {}
        self.name = str(self.metadata.get("name") or "")
        self.namespace = str(self.metadata.get("namespace") or "")

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion") or "")

    @property
    def labels(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (_as_dict(self.metadata.get("labels")) or {}).items()}

    @property
    def annotations(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (_as_dict(self.metadata.get("annotations")) or {}).items()}

    def pod(self) -> tuple[str, dict[str, Any]] | None:
        """(path, pod spec) when the resource has a pod template (cached)."""
        if self._pod is False:
            self._pod = find_pod_spec(self.obj)
        return self._pod  # type: ignore[return-value]

    @property
    def is_workload(self) -> bool:
        return self.pod() is not None

    def pod_metadata(self) -> tuple[str, dict[str, Any]]:
        """(path, metadata) of the pod: the template's metadata, or the Pod's own."""
        found = self.pod()
        if found is None or found[0] == "spec":
            return "metadata", self.metadata
        base = found[0].rsplit(".spec", 1)[0]
        node: Any = self.obj
        for key in base.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        meta = _as_dict(node.get("metadata")) if isinstance(node, dict) else None
        return f"{base}.metadata", meta or {}

    def containers(self) -> tuple[Container, ...]:
        """Every container of the pod spec (init, regular, ephemeral), each with its path (cached)."""
        if self._containers is None:
            out: list[Container] = []
            found = self.pod()
            if found is not None:
                path, spec = found
                for list_name in CONTAINER_FIELDS:
                    items = spec.get(list_name)
                    if isinstance(items, list):
                        out.extend(
                            Container(f"{path}.{list_name}[{i}]", list_name, c)
                            for i, c in enumerate(items)
                            if isinstance(c, dict)
                        )
            self._containers = tuple(out)
        return self._containers

    def container_nodes(self) -> list[tuple[str, Any]]:
        """(path, container) of every container, for ``$containers`` (cached)."""
        if self._nodes is None:
            self._nodes = [(c.path, c.spec) for c in self.containers()]
        return self._nodes

    def matches_kind(self, kinds: frozenset[str]) -> bool:
        """Does a control that applies to ``kinds`` apply here? ``*`` = every kind; ``Workload`` = any
        resource with a pod template."""
        return "*" in kinds or self.kind in kinds or (WORKLOAD in kinds and self.is_workload)


class ResourceIndex:
    """Every resource of one assessment, indexed for checks that look across objects (a Role's bindings,
    a namespace's NetworkPolicies, a Service's pods)."""

    def __init__(self, resources: list[Resource]) -> None:
        self.resources = resources
        self.by_kind: dict[str, list[Resource]] = {}
        for r in resources:
            self.by_kind.setdefault(r.kind, []).append(r)
        self._cache: dict[str, Any] = {}

    def of_kind(self, *kinds: str) -> list[Resource]:
        return [r for k in kinds for r in self.by_kind.get(k, ())]

    def memo(self, key: str, build: Any) -> Any:
        """A value computed once per assessment (``build()`` on first use)."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """A Kubernetes LabelSelector (``matchLabels`` and ``matchExpressions``) against labels; ``{}`` matches
    everything, anything that is not a selector matches nothing. Network policies and exemptions use it."""
    if not isinstance(selector, dict):
        return False
    ml = selector.get("matchLabels") or {}
    if not isinstance(ml, dict) or any(labels.get(str(k)) != str(v) for k, v in ml.items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, dict):
            return False
        key, op = str(expr.get("key") or ""), str(expr.get("operator") or "")
        vals = {str(v) for v in expr.get("values") or []}
        has = key in labels
        if (
            (op == "In" and not (has and labels[key] in vals))
            or (op == "NotIn" and has and labels[key] in vals)
            or (op == "Exists" and not has)
            or (op == "DoesNotExist" and has)
        ):
            return False
    return True
