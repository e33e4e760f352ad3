"""The event interface the rule engine evaluates, shared by every event source.

An event is anything with a :attr:`~Event.source` (``k8s_audit`` or ``syscall``), a :attr:`~Event.type`
(what the engine indexes rules by: the audit verb, the node event type) and field access by Falco field
name: ``event.field("ka.user.name")``, ``event.field("ka.uri.param", "command")``,
``event.field("proc.aname", "2")``. A field the event does not carry returns ``None``; the engine then
treats every comparison on it as false (``exists`` is false, ``not`` inverts), as Falco does.

Sources implement it: :class:`garrison.runtime.k8saudit.AuditEvent` for Kubernetes audit events, the node
sensor and the Falco/Tetragon importers for node events. Which fields a source offers is declared in
:mod:`garrison.runtime.fields`, so a rule using a field no source has is skipped with that field named.

Pure interface: no I/O.
"""

from __future__ import annotations

from typing import Final, Protocol, TypeAlias

#: Kubernetes audit events (the ``ka.*`` and ``jevt.*``/``json.*`` fields).
K8S_AUDIT: Final = "k8s_audit"
#: Node events: processes, files, connections (Falco's ``evt.*``, ``proc.*``, ``fd.*``, ``user.*``,
#: ``container.*`` fields). Falco's name for the source, kept so Falco rule files load unchanged.
SYSCALL: Final = "syscall"
#: Every source a rule may name in ``source:`` (Falco's default when a rule names none is ``syscall``).
SOURCES: Final = (K8S_AUDIT, SYSCALL)

#: One extracted value: a string, a whole number (``proc.pid``, ``fd.rport``), a bool, or a list of
#: them for list fields (``ka.req.pod.containers.image``, ``proc.aname`` without an index). ``None``:
#: the event does not carry the field.
Scalar: TypeAlias = str | int | bool
FieldValue: TypeAlias = Scalar | tuple[Scalar, ...] | None


class Event(Protocol):
    """What the engine needs of an event of any source."""

    @property
    def source(self) -> str:
        """:data:`K8S_AUDIT` or :data:`SYSCALL`."""
        ...

    @property
    def type(self) -> str:
        """What rules are indexed by: for ``k8s_audit`` the verb (``create``, ``get``…; the engine also
        indexes by ``ka.target.resource`` through :meth:`field`), for ``syscall`` Falco's ``evt.type``
        (``execve``, ``connect``, ``open``, ``openat``, ``unlink``…)."""
        ...

    @property
    def time_ns(self) -> int:
        """When it happened, nanoseconds since the Unix epoch (``evt.time``, the audit ``stageTimestamp``)."""
        ...

    def field(self, name: str, arg: str | None = None) -> FieldValue:
        """The value of a Falco field (``name`` without the ``[arg]``; ``arg`` is the text inside the
        brackets, ``None`` when there are none). ``None`` when the event does not carry it. Called many
        times per event with the same names: implementations cache what is costly to compute."""
        ...
