"""The posture pillar's payload: one misconfiguration of one object against one control.

A :class:`Misconfiguration` travels in the shared :class:`~garrison.model.common.Finding` envelope
(``kind`` :attr:`~garrison.model.common.FindingKind.MISCONFIGURATION`); :func:`misconfiguration_finding`
builds that envelope so every producer (manifests, a cluster snapshot, a Docker host, a Dockerfile)
fills it the same way. Pure data: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from garrison.model.common import (
    Finding,
    FindingKind,
    RuleId,
    RuleRef,
    Severity,
    Subject,
    SubjectKind,
)


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """The object a finding is about, and where it was read from."""

    #: ``Deployment``, ``ClusterRole``, ``DockerContainer``, ``Dockerfile``, ``KubeletConfiguration``…
    kind: str
    #: Object name ("" when it has none, e.g. a Dockerfile: then ``source`` names it).
    name: str = ""
    #: Namespace ("" for cluster-scoped objects and non-Kubernetes inputs).
    namespace: str = ""
    #: ``apiVersion`` of the object ("" when not a Kubernetes object).
    api_version: str = ""
    #: File the object came from (``-`` for standard input, "" for a live cluster or host).
    source: str = ""
    #: 1-based line of the object's first line in ``source`` (0 = unknown).
    line: int = 0
    #: 0-based index of the YAML/JSON document inside ``source`` (List items share their list's index).
    document: int = 0
    #: Cluster id (kubeconfig context) when the object came from a live cluster or a named snapshot.
    cluster: str = ""
    #: Host name when the object is a host's (a Docker daemon, a node's kubelet file).
    host: str = ""

    def display(self) -> str:
        """``Kind/namespace/name``, or ``Kind/name`` when cluster-scoped (SARIF logical location)."""
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}" if self.name else f"{self.kind}/{self.namespace}"
        return f"{self.kind}/{self.name}" if self.name else self.kind


@dataclass(frozen=True, slots=True)
class Misconfiguration:
    """What is wrong, where exactly, what it should be and how to fix it."""

    #: The control's id (``GAR-K8S-001``…): the finding's rule id.
    control_id: str
    #: The control's title (one line).
    title: str
    #: The control's severity (the envelope's severity is the same value).
    severity: Severity
    #: The object the finding is about.
    object: ObjectRef
    #: JSON path of the offending field inside the object
    #: (``spec.template.spec.containers[0].securityContext.privileged``); for a field that is missing,
    #: the path where it should be set.
    path: str
    #: The value found, as compact JSON (``true``, ``"nginx:latest"``; ``null`` when the field is missing).
    actual: str
    #: What the control expects, for a person (``false or unset``, ``RuntimeDefault or Localhost``).
    expected: str
    #: How to fix it: the exact field and its safe value.
    remediation: str
    #: The control family (``pod-security``, ``workload``, ``rbac``, ``network``, ``docker``…).
    family: str = ""
    #: The container the finding is about, for per-container controls ("" otherwise).
    container: str = ""
    #: Framework references: ``("pss-baseline", "pss-restricted:v1.0", "cis-kubernetes:5.2.2", "nsa", …)``.
    frameworks: tuple[str, ...] = ()
    #: Equivalent ids in other tools (``trivy:KSV017``, ``checkov:CKV_K8S_16``, ``kubescape:C-0057``…).
    equivalents: tuple[str, ...] = ()
    #: Extra context the check found (a role's binding subjects, the matched port…), label → value.
    context: tuple[tuple[str, str], ...] = ()


def positional_builder(cls: type[Any]) -> Callable[..., Any]:
    """``cls(v0, v1, …)`` for a frozen, slotted dataclass with no ``__post_init__``, every field given in
    declaration order, that sets the slots directly. A frozen dataclass's ``__init__`` sets each field
    through ``object.__setattr__`` (the class refuses plain assignment): ~1.4 µs more for the 13 fields
    of a :class:`Misconfiguration`, and an assessment builds one of these and one
    :class:`~garrison.model.common.Finding` per finding (19,579 on 10,000 objects: ~45 ms). The object
    is the one ``cls(v0, v1, …)`` makes (tested); the code is generated once, as dataclasses does."""
    names = [f.name for f in fields(cls)]
    descriptors = [cls.__dict__.get(n) for n in names]
    if "__post_init__" in dir(cls) or not all(type(d).__name__ == "member_descriptor" for d in descriptors):
        raise TypeError(f"{cls.__name__}: only a slotted dataclass without __post_init__")
    env: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    env.update({f"_set{i}": d.__set__ for i, d in enumerate(descriptors)})  # type: ignore[union-attr]
    args = ", ".join(f"v{i}" for i in range(len(names)))
    body = "".join(f"    _set{i}(o, v{i})\n" for i in range(len(names)))
    exec(f"def build({args}):\n    o = _new(_cls)\n{body}    return o\n", env)  # noqa: S102 - our own fixed text
    return env["build"]  # type: ignore[no-any-return]


#: ``Misconfiguration(control_id, title, severity, object, path, actual, expected, remediation, family,
#: container, frameworks, equivalents, context)``, faster (:func:`positional_builder`).
new_misconfiguration: Callable[..., Misconfiguration] = positional_builder(Misconfiguration)
_new_finding: Callable[..., Finding[Misconfiguration]] = positional_builder(Finding)


def misconfiguration_subject(o: ObjectRef, container: str = "") -> Subject:
    """The envelope's subject for a finding on ``o`` (and one of its containers): the object, or a host
    subject for host-level objects. One per (object, container) serves all of its findings."""
    kind = SubjectKind.HOST if o.host and not o.namespace and not o.api_version else SubjectKind.RESOURCE
    return Subject(
        kind=kind,
        artifact=o.source,
        path="" if o.source == "-" else o.source,
        line=o.line,
        cluster=o.cluster,
        namespace=o.namespace,
        resource_kind=o.kind,
        name=o.name,
        container=container,
        host=o.host,
    )


def misconfiguration_finding(
    m: Misconfiguration,
    *,
    version: str = "",
    url: str = "",
    rule: RuleRef | None = None,
    subject: Subject | None = None,
    where: str = "",
) -> Finding[Misconfiguration]:
    """The shared envelope around ``m``: the rule is the control (``rule`` when the caller built it
    once for many findings), the subject the object (:func:`misconfiguration_subject`; ``subject`` and
    ``where``, the title's prefix, when the caller built them once for the object), the evidence the
    path, the actual and the expected value."""
    o = m.object
    if subject is None:
        subject = misconfiguration_subject(o, m.container)
    if not where:
        where = o.display() + (f" container {m.container}" if m.container else "")
    if rule is None:
        rule = RuleRef(
            id=RuleId(m.control_id),
            source="garrison/posture",
            title=m.title,
            aliases=m.equivalents,
            url=url,
            version=version,
        )
    # Finding(kind, rule, subject, severity, title, detail, evidence, first_seen, last_seen)
    return _new_finding(
        FindingKind.MISCONFIGURATION,
        rule,
        subject,
        m.severity,
        f"{where}: {m.title}",
        m,
        (("path", m.path), ("actual", m.actual), ("expected", m.expected)),
        "",
        "",
    )
