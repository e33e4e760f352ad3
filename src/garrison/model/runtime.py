"""Runtime alerts: the payload of a :class:`~garrison.model.common.Finding` of kind ``alert``.

An alert is one rule firing on one set of entities (the same user on the same pod in the same namespace,
the same process in the same container…) within a window: many matching events fold into one alert with
an exact ``count`` and first/last seen. Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass

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
class Entities:
    """What an alert is about; empty strings for what the event does not say."""

    #: The cluster the event came from (the receiver's or the run's cluster setting).
    cluster: str = ""
    #: The Kubernetes namespace of the request's object or of the pod the process runs in.
    namespace: str = ""
    #: The pod the request targets (audit) or the process runs in (node).
    pod: str = ""
    #: Container name or id (node events; audit events of a pod's subresource name none).
    container: str = ""
    #: The image involved: the first container image of a pod being created, the running container's image.
    image: str = ""
    #: Who did it: the Kubernetes user (``system:serviceaccount:ns:name``, ``admin``) or the process's user.
    user: str = ""
    #: The node (host name) for node events.
    node: str = ""
    #: The process (executable path or name) for node events.
    process: str = ""
    #: Where the request came from: the audit event's first source IP, a connection's remote address.
    source_address: str = ""
    #: The Kubernetes resource the request targets (``pods``, ``clusterrolebindings``).
    resource: str = ""
    #: The name of that resource (``priv``, ``cluster-admin-binding``).
    name: str = ""

    def key(self) -> tuple[str, ...]:
        """The identity that de-duplication groups by."""
        return (
            self.cluster,
            self.namespace,
            self.pod,
            self.container,
            self.image,
            self.user,
            self.node,
            self.process,
            self.source_address,
            self.resource,
            self.name,
        )


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One event behind an alert (an alert keeps the first few; ``count`` says how many there were)."""

    #: When it happened (ISO 8601 UTC).
    time: str
    #: The event's own id: the audit ``auditID``, the node event's number.
    id: str
    #: The rule's output rendered for this event (the first event's only; the alert's ``output`` is it).
    output: str = ""


@dataclass(frozen=True, slots=True)
class Alert:
    """One rule firing on one set of entities within the de-duplication window."""

    #: The rule's name (Falco's own names for Falco's rules).
    rule: str
    #: Falco's priority as Falco prints it (``Warning``, ``Critical``…).
    priority: str
    #: garrison's severity (the rule's own, else the priority's).
    severity: Severity
    #: ``k8s_audit`` or ``syscall``.
    source: str
    #: MITRE ATT&CK tactic (``TA0004``); "" when the rule names none.
    mitre_tactic: str
    #: MITRE ATT&CK technique (``T1610``); "" when the rule names none.
    mitre_technique: str
    #: When the first event happened (ISO 8601 UTC).
    time: str
    #: The rule's output for the first event.
    output: str
    #: What the alert is about (cluster, namespace, pod, container, image, user, node, process, source).
    entities: Entities
    #: How many matching events this alert stands for (exact).
    count: int
    #: Time of the first matching event (ISO 8601 UTC).
    first_seen: str
    #: Time of the last matching event (ISO 8601 UTC).
    last_seen: str
    #: The first events (at most the aggregator's ``keep_events``).
    events: tuple[AlertEvent, ...] = ()
    #: The rule's description.
    description: str = ""
    #: What to do about it, from the rule.
    remediation: str = ""
    #: Equivalent ids: Defender for Containers alert types (``K8S_PrivilegedContainer``).
    defender: tuple[str, ...] = ()
    #: The equivalent Falco rule ("" when none).
    falco: str = ""
    #: The rule's tags.
    tags: tuple[str, ...] = ()
    #: The file that defines the rule.
    rule_file: str = ""


def _subject(a: Alert) -> Subject:
    e = a.entities
    if a.source == "k8s_audit":
        return Subject(
            kind=SubjectKind.RESOURCE,
            cluster=e.cluster,
            namespace=e.namespace,
            resource_kind=e.resource,
            name=e.name or e.pod,
            host=e.user,
        )
    # The pod qualifies the container (``web-1/web``, as ``kubectl logs web-1 -c web`` names it; neither
    # name can hold a "/"): the same process in the same-named container of two pods of one workload is
    # two alerts, as the aggregator's entities already are; a host process (no pod) keeps its container.
    return Subject(
        kind=SubjectKind.PROCESS,
        cluster=e.cluster,
        namespace=e.namespace,
        name=e.process,
        container=f"{e.pod}/{e.container}" if e.pod else e.container,
        host=e.node,
    )


def alert_finding(alert: Alert) -> Finding[Alert]:
    """The alert in the findings envelope (the subject: the targeted object for audit alerts — a pod's
    name for a pod's subresources — with the user in ``host`` so that two users doing the same are two
    findings; for node alerts the process in its pod's container on its node). The fingerprint, which
    the server de-duplicates stored alerts by, is derived from the subject."""
    e = alert.entities
    evidence = tuple(
        (label, value)
        for label, value in (
            ("user", e.user),
            ("source address", e.source_address),
            ("image", e.image),
            ("process", e.process),
            ("count", str(alert.count)),
            ("mitre", " ".join(x for x in (alert.mitre_tactic, alert.mitre_technique) if x)),
        )
        if value
    )
    return Finding(
        kind=FindingKind.ALERT,
        rule=RuleRef(
            id=RuleId(alert.rule),
            source="falco" if alert.falco == alert.rule else "garrison/runtime",
            title=alert.description.split("\n", 1)[0][:200],
            aliases=(*alert.defender, *((alert.falco,) if alert.falco and alert.falco != alert.rule else ())),
        ),
        subject=_subject(alert),
        severity=alert.severity,
        title=alert.output,
        detail=alert,
        evidence=evidence,
        first_seen=alert.first_seen,
        last_seen=alert.last_seen,
    )
