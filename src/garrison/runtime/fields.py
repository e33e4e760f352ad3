"""Which fields exist, per event source: the registry the rule loader checks conditions and outputs against.

A rule whose condition uses a field its source does not offer is not an error: it is *skipped*, and the
load result names the rule and the field (Falco's syscall rules use fields such as ``proc.exe_ino.ctime``
that garrison's node sensor does not produce). A rule whose *output* uses an unknown field loads, and the
field renders as ``<NA>``, as in Falco.

The ``k8s_audit`` table has the names and meaning of Falco's k8saudit plugin (and the legacy ``jevt.*``
fields of Falco's built-in audit support, and ``json.*`` of Falco's json plugin). The ``syscall`` table
lists the Falco fields the node sensor fills; the node sensor's owner edits :data:`SYSCALL_FIELDS`
(targeted edits), or passes a registry of their own to :func:`garrison.runtime.engine.load_rules`.

Pure data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from garrison.runtime.events import K8S_AUDIT, SYSCALL, FieldValue


class FieldType(StrEnum):
    """How a field's values compare (and how a condition's right-hand side is read)."""

    #: Strings; ``<``/``>`` compare as text.
    STRING = "string"
    #: Whole numbers; the right-hand side is read as a number.
    NUMBER = "number"
    #: ``true``/``false``.
    BOOL = "bool"


class Arg(StrEnum):
    """Whether a field takes a ``[argument]``."""

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field a source offers."""

    #: Falco's name, without the argument: ``ka.uri.param``, ``proc.aname``.
    name: str
    type: FieldType = FieldType.STRING
    #: True when the value is a list (compared element-wise: ``in`` = every element, ``intersects`` = any).
    is_list: bool = False
    arg: Arg = Arg.NONE
    #: One line of meaning (shown by ``garrison runtime rules --fields``).
    desc: str = ""


def _k(name: str, desc: str, *, is_list: bool = False, arg: Arg = Arg.NONE) -> FieldSpec:
    return FieldSpec(name, FieldType.STRING, is_list, arg, desc)


#: Per-container fields, one set for each of ``containers``, ``initContainers`` and ``ephemeralContainers``
#: (``ka.req.pod.<group>.<suffix>``), as in the k8saudit plugin. Every one takes an optional index.
CONTAINER_GROUPS: Final = ("containers", "initContainers", "ephemeralContainers")
CONTAINER_FIELD_SUFFIXES: Final = (
    ("name", "names"),
    ("image", "images"),
    ("image.repository", "image repositories (no tag or digest)"),
    ("command", "commands"),
    ("args", "args"),
    ("privileged", "privileged flags (those set)"),
    ("allow_privilege_escalation", "allowPrivilegeEscalation flags"),
    ("read_only_fs", "readOnlyRootFilesystem flags"),
    ("run_as_user", "runAsUser uids"),
    ("eff_run_as_user", "uids they start with (the pod's, else 0, when unset)"),
    ("run_as_group", "runAsGroup gids"),
    ("eff_run_as_group", "gids they start with (the pod's, else 0, when unset)"),
    ("proc_mount", "procMount types"),
    ("add_capabilities", "added capabilities"),
    ("host_port", "hostPort values (containerPort when no hostPort)"),
)


def _container_fields() -> tuple[FieldSpec, ...]:
    return tuple(
        _k(f"ka.req.pod.{group}.{suffix}", f"the pod's {group}: {what}", is_list=True, arg=Arg.OPTIONAL)
        for group in CONTAINER_GROUPS
        for suffix, what in CONTAINER_FIELD_SUFFIXES
    )


#: The ``k8s_audit`` fields (Falco's k8saudit plugin, plus ``jevt.*``/``json.*``). All are strings, as
#: in the plugin: ``ka.response.code`` is ``"200"``, booleans are ``"true"``/``"false"``, objects and
#: arrays are their compact JSON text.
K8S_AUDIT_FIELDS: Final[tuple[FieldSpec, ...]] = (
    _k("ka.auditid", "the unique id of the audit event"),
    _k("ka.stage", "stage of the request (RequestReceived, ResponseStarted, ResponseComplete, Panic)"),
    _k("ka.auth.decision", "the authorization decision (allow, forbid)"),
    _k("ka.auth.reason", "the authorization reason"),
    _k("ka.validations.admission.policy.failure", "the validating admission policy failure annotation"),
    _k("ka.security.pod.violations", "the pod security violation annotation"),
    _k("ka.user.name", "the user name performing the request"),
    _k("ka.user.groups", "the groups to which the user belongs", is_list=True),
    _k("ka.impuser.name", "the impersonated user name"),
    _k("ka.verb", "the action being performed"),
    _k("ka.uri", "the request URI as sent from client to server"),
    _k("ka.uri.param", "the value of a query parameter of the URI (ka.uri.param[key])", arg=Arg.REQUIRED),
    _k("ka.target.name", "the target object name"),
    _k("ka.target.namespace", "the target object namespace"),
    _k("ka.target.resource", "the target object resource"),
    _k("ka.target.subresource", "the target object subresource"),
    _k("ka.target.pod.name", "the target pod name"),
    _k("ka.req.binding.subjects", "the subjects (accounts, users) a role binding links", is_list=True),
    _k("ka.req.binding.subjects.user_names", "names of the User subjects of a binding", is_list=True),
    _k("ka.req.binding.subjects.serviceaccount_names", "names of the ServiceAccount subjects", is_list=True),
    _k("ka.req.binding.subjects.serviceaccount_ns_names", "NAMESPACE:NAME of ServiceAccount subjects", is_list=True),
    _k("ka.req.binding.subjects.group_names", "names of the Group subjects of a binding", is_list=True),
    _k("ka.req.binding.role", "the role a binding links"),
    _k("ka.req.binding.subject.has_name", 'deprecated, always "true" (kept for old rules)', arg=Arg.REQUIRED),
    _k("ka.req.configmap.name", "the configmap name, when the request object is a configmap"),
    _k("ka.req.configmap.obj", "the configmap's data, as JSON"),
    _k("ka.req.container.image", "deprecated: the image of the first container"),
    _k("ka.req.container.image.repository", "deprecated: the repository of the first container's image"),
    _k("ka.req.pod.host_ipc", "the pod's hostIPC flag"),
    _k("ka.req.pod.host_network", "the pod's hostNetwork flag"),
    _k("ka.req.container.host_network", "deprecated alias of ka.req.pod.host_network"),
    _k("ka.req.pod.host_pid", "the pod's hostPID flag"),
    _k("ka.req.container.privileged", 'deprecated: "true" when any container is privileged'),
    _k("ka.req.pod.run_as_user", "the pod security context's runAsUser"),
    _k("ka.req.pod.run_as_group", "the pod security context's runAsGroup"),
    *_container_fields(),
    _k("ka.req.role.rules", "the rules of a role or cluster role (JSON each)", is_list=True),
    _k("ka.req.role.rules.apiGroups", "the api groups of a role's rules", is_list=True, arg=Arg.OPTIONAL),
    _k("ka.req.role.rules.nonResourceURLs", "the non-resource URLs of a role's rules", is_list=True, arg=Arg.OPTIONAL),
    _k("ka.req.role.rules.verbs", "the verbs of a role's rules", is_list=True, arg=Arg.OPTIONAL),
    _k("ka.req.role.rules.resources", "the resources of a role's rules", is_list=True, arg=Arg.OPTIONAL),
    _k("ka.req.pod.fs_group", "the pod security context's fsGroup"),
    _k("ka.req.pod.supplemental_groups", "the pod security context's supplementalGroups", is_list=True),
    _k("ka.req.service.type", "the service type, when the request object is a service"),
    _k("ka.req.service.ports", "the service's ports (JSON each)", is_list=True, arg=Arg.OPTIONAL),
    _k("ka.req.pod.volumes.hostpath", "the hostPath paths of the pod's volumes", is_list=True, arg=Arg.OPTIONAL),
    _k("ka.req.volume.hostpath", 'deprecated: "true" when a hostPath is the path (prefix: PATH*)', arg=Arg.REQUIRED),
    _k("ka.req.pod.volumes.flexvolume_driver", "the volumes' flexVolume drivers", is_list=True, arg=Arg.OPTIONAL),
    _k("ka.req.pod.volumes.volume_type", "the volume types of the pod's volumes", is_list=True, arg=Arg.OPTIONAL),
    _k("ka.resp.name", "the response object's name"),
    _k("ka.response.code", "the response code"),
    _k("ka.response.reason", "the response reason (usually only for failures)"),
    _k("ka.useragent", "the user agent of the client"),
    _k("ka.sourceips", "the source IP addresses of the request", is_list=True, arg=Arg.OPTIONAL),
    _k("ka.cluster.name", "the name of the cluster (garrison: the cluster setting of the receiver or the run)"),
    _k("jevt.time", "the event's time, as text"),
    _k("jevt.time.iso8601", "the event's time, ISO 8601"),
    FieldSpec("jevt.rawtime", FieldType.NUMBER, desc="the event's time, nanoseconds since the epoch"),
    _k("jevt.value", "the value at a JSON pointer into the event (jevt.value[/objectRef/name])", arg=Arg.REQUIRED),
    _k("jevt.obj", "the whole event as JSON"),
    _k("json.value", "the value at a JSON pointer into the event (json.value[/objectRef/name])", arg=Arg.REQUIRED),
    _k("json.obj", "the whole event as JSON"),
    FieldSpec("json.rawtime", FieldType.NUMBER, desc="the event's time, nanoseconds since the epoch"),
)


def _s(
    name: str, desc: str = "", *, kind: FieldType = FieldType.STRING, is_list: bool = False, arg: Arg = Arg.NONE
) -> FieldSpec:
    return FieldSpec(name, kind, is_list, arg, desc)


_N = FieldType.NUMBER
_B = FieldType.BOOL

#: The ``syscall`` fields the node sensor fills (Falco's names and meaning). Owned by the node sensor:
#: it adds a field here when it starts filling it.
SYSCALL_FIELDS: Final[tuple[FieldSpec, ...]] = (
    _s("evt.type", "the event type: execve, clone, procexit, connect, accept, open, openat, unlink…"),
    _s("evt.dir", "> (enter) or < (exit)"),
    _s("evt.time", "the event's time, as text"),
    _s("evt.time.iso8601", "the event's time, ISO 8601"),
    _s("evt.rawtime", kind=_N),
    _s("evt.num", kind=_N),
    _s("evt.hostname", "the node's host name"),
    _s("evt.res", "SUCCESS or the error name"),
    _s("evt.rawres", kind=_N),
    _s("evt.failed", kind=_B),
    _s("evt.args", "all the arguments, as text"),
    _s("evt.arg", "one argument by name (evt.arg.flags is evt.arg[flags])", arg=Arg.REQUIRED),
    _s("evt.is_open_read", kind=_B),
    _s("evt.is_open_write", kind=_B),
    _s("evt.is_open_exec", kind=_B),
    _s("proc.pid", kind=_N),
    _s("proc.ppid", kind=_N),
    _s("proc.vpid", kind=_N),
    _s("proc.name", "the executable's name (comm)"),
    _s("proc.exe", "argv[0]"),
    _s("proc.exepath", "the full path of the executable"),
    _s("proc.args", "the arguments, without argv[0], space-separated"),
    _s("proc.cmdline", "name and arguments"),
    _s("proc.cmdnargs", kind=_N),
    _s("proc.cwd"),
    _s("proc.tty", kind=_N),
    _s("proc.sid", kind=_N),
    _s("proc.vpgid", kind=_N),
    _s("proc.is_vpgid_leader", kind=_B),
    _s("proc.sname", "the session leader's name"),
    _s("proc.env", "the environment (proc.env[NAME] for one variable)", arg=Arg.OPTIONAL),
    _s("proc.pname", "the parent's name"),
    _s("proc.pexe"),
    _s("proc.pexepath"),
    _s("proc.pcmdline"),
    _s("proc.aname", "an ancestor's name (proc.aname[1] = parent; no index: any)", is_list=True, arg=Arg.OPTIONAL),
    _s("proc.aexe", is_list=True, arg=Arg.OPTIONAL),
    _s("proc.aexepath", is_list=True, arg=Arg.OPTIONAL),
    _s("proc.apid", kind=_N, is_list=True, arg=Arg.OPTIONAL),
    _s("proc.duration", kind=_N),
    _s("proc.is_container_healthcheck", kind=_B),
    _s("proc.is_container_liveness_probe", kind=_B),
    _s("proc.is_container_readiness_probe", kind=_B),
    _s("thread.tid", kind=_N),
    _s("user.uid", kind=_N),
    _s("user.name"),
    _s("user.loginuid", kind=_N),
    _s("user.loginname"),
    _s("user.homedir"),
    _s("user.shell"),
    _s("group.gid", kind=_N),
    _s("group.name"),
    _s("container.id", "the 12-character container id, or host"),
    _s("container.full_id"),
    _s("container.name"),
    _s("container.image"),
    _s("container.image.repository"),
    _s("container.image.tag"),
    _s("container.image.digest"),
    _s("container.privileged", kind=_B),
    _s("container.type"),
    _s("k8s.ns.name"),
    _s("k8s.pod.name"),
    _s("fd.num", kind=_N),
    _s("fd.type", "file, directory, ipv4, ipv6, unix, pipe…"),
    _s("fd.typechar"),
    _s("fd.name", "the file path, or the connection tuple"),
    _s("fd.directory"),
    _s("fd.filename"),
    _s("fd.l4proto", "tcp, udp…"),
    _s("fd.sockfamily", "ip or unix"),
    _s("fd.cip"),
    _s("fd.sip"),
    _s("fd.lip"),
    _s("fd.rip"),
    _s("fd.cport", kind=_N),
    _s("fd.sport", kind=_N),
    _s("fd.lport", kind=_N),
    _s("fd.rport", kind=_N),
    _s("fd.net", "a CIDR compared with the connection's addresses"),
    _s("fd.snet"),
    _s("fd.rnet"),
    _s("fd.connected", kind=_B),
    _s(
        "garrison.recon_burst",
        "node sensor: distinct reconnaissance commands (node/sensor.py RECON_COMMANDS) the same parent "
        "started within the last minute, this one included; absent for other commands",
        kind=_N,
    ),
)


#: ``(event, arg) -> value``: a source's own extractor of one field.
Extractor = Callable[[Any, "str | None"], FieldValue]


@dataclass(frozen=True, slots=True)
class DirectFields:
    """A source's extractors, which compiled rules call directly (no ``field()`` dispatch, values kept in
    the rule function's locals) for events of exactly ``event_type``; other events of the source go
    through :meth:`Event.field`. Both must give the same values."""

    event_type: type
    extractors: Mapping[str, Extractor]
    #: ``event -> Entities`` for alerts (:class:`garrison.model.runtime.Entities`), when the source has one.
    entities: Callable[[Any], Any] | None = None


@dataclass(frozen=True, slots=True)
class FieldRegistry:
    """The fields of each source, looked up by name; which fields rules are indexed by."""

    #: source → field name → spec.
    by_source: Mapping[str, Mapping[str, FieldSpec]]
    #: source → the fields the engine indexes rules by (values a condition requires of them).
    index_fields: Mapping[str, tuple[str, ...]]
    #: source → direct extractors for its own event class (optional, a speed-up only).
    direct: Mapping[str, DirectFields] = field(default_factory=dict)
    #: source → (field, arg) → the (field, arg) it is another name of (``jevt.value[/stage]`` is
    #: ``ka.stage``): conditions are rewritten to one name, so the value is read once and can be indexed.
    aliases: Mapping[str, Mapping[tuple[str, str | None], tuple[str, str | None]]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        tables: Mapping[str, Iterable[FieldSpec]],
        index_fields: Mapping[str, tuple[str, ...]],
        direct: Mapping[str, DirectFields] | None = None,
        aliases: Mapping[str, Mapping[tuple[str, str | None], tuple[str, str | None]]] | None = None,
    ) -> FieldRegistry:
        """A registry from one table per source; a name declared twice in one table fails at once."""
        by_source: dict[str, dict[str, FieldSpec]] = {}
        for source, specs in tables.items():
            table: dict[str, FieldSpec] = {}
            for spec in specs:
                if spec.name in table:
                    raise ValueError(f"field {spec.name} declared twice for source {source}")
                table[spec.name] = spec
            by_source[source] = table
        return cls(by_source, dict(index_fields), dict(direct or {}), dict(aliases or {}))

    def lookup(self, source: str, name: str) -> FieldSpec | None:
        """The spec of ``name`` in ``source``, or None. ``evt.arg.flags`` is ``evt.arg`` with argument
        ``flags`` (Falco's dotted spelling); callers split that with :func:`split_dotted_arg`."""
        return self.by_source.get(source, {}).get(name)

    def sources(self) -> tuple[str, ...]:
        return tuple(self.by_source)


#: Fields whose dotted suffix is an argument in Falco's syntax: ``evt.arg.flags`` = ``evt.arg[flags]``,
#: ``proc.env.HOME`` is not Falco syntax and stays unknown.
_DOTTED_ARG_FIELDS: Final = ("evt.arg",)


def split_dotted_arg(name: str) -> tuple[str, str | None]:
    """``evt.arg.flags`` → (``evt.arg``, ``flags``); any other name → (name, None)."""
    for base in _DOTTED_ARG_FIELDS:
        if name.startswith(base + "."):
            return base, name[len(base) + 1 :]
    return name, None


def default_registry() -> FieldRegistry:
    """The fields garrison's own sources offer: the audit source and the node sensor."""
    from garrison.runtime.k8saudit import DIRECT

    return FieldRegistry.of(
        {K8S_AUDIT: K8S_AUDIT_FIELDS, SYSCALL: SYSCALL_FIELDS},
        {K8S_AUDIT: ("ka.verb", "ka.target.resource", "ka.stage"), SYSCALL: ("evt.type",)},
        {K8S_AUDIT: DIRECT},
        {K8S_AUDIT: K8S_AUDIT_ALIASES},
    )


#: ``k8s_audit`` fields that are other names of one value.
K8S_AUDIT_ALIASES: Final[Mapping[tuple[str, str | None], tuple[str, str | None]]] = {
    ("jevt.value", "/stage"): ("ka.stage", None),
    ("json.value", "/stage"): ("ka.stage", None),
    ("jevt.value", "/verb"): ("ka.verb", None),
    ("json.value", "/verb"): ("ka.verb", None),
    ("jevt.value", "/auditID"): ("ka.auditid", None),
    ("json.rawtime", None): ("jevt.rawtime", None),
}
