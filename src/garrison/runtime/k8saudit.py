"""Kubernetes audit events: the :class:`AuditEvent` the engine evaluates and its ``ka.*`` fields, with the
names and meaning of Falco's k8saudit plugin (and ``jevt.*``/``json.*``: a JSON pointer into the event).

Values follow the plugin: every field is a string (``ka.response.code`` is ``"200"``, booleans are
``"true"``/``"false"``, objects and arrays are their compact JSON text) or a list of strings. A field the
event does not carry, or whose value is of the wrong shape (a list field that is not an array), is ``None``;
so is an empty list.

Pure: parsing bytes into events is :func:`parse_event`; reading files, stdin and HTTP bodies is elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import msgspec
import orjson

from garrison.model.runtime import Entities
from garrison.runtime.events import K8S_AUDIT, FieldValue
from garrison.runtime.fields import CONTAINER_GROUPS, K8S_AUDIT_FIELDS, DirectFields

_MISSING: Final = object()


class NotAnAuditEvent(ValueError):
    """The JSON is not a Kubernetes audit ``Event`` (nor an ``EventList`` of them)."""


def _sv(v: Any) -> str:
    """A JSON value as the plugin renders it: strings as they are, anything else as compact JSON."""
    if type(v) is str:
        return v
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    return orjson.dumps(v).decode()


def _get(obj: Any, *keys: str) -> Any:
    for k in keys:
        if type(obj) is not dict:
            return _MISSING
        obj = obj.get(k, _MISSING)
        if obj is _MISSING:
            return _MISSING
    return obj


def _scalar(obj: Any, *keys: str) -> str | None:
    v = _get(obj, *keys)
    return None if v is _MISSING else _sv(v)


def _strings(values: list[Any]) -> tuple[str, ...] | None:
    return tuple(_sv(v) for v in values) or None


def _index(arg: str | None) -> int | None:
    if arg is None:
        return None
    try:
        return int(arg)
    except ValueError:
        return None


def _array(obj: Any, arg: str | None, *keys: str) -> list[Any] | None:
    arr = _get(obj, *keys)
    if type(arr) is not list:
        return None
    i = _index(arg)
    if i is None:
        return arr
    return [arr[i]] if 0 <= i < len(arr) else None


def _json_pointer(obj: Any, pointer: str) -> Any:
    if pointer == "":
        return obj
    if not pointer.startswith("/"):
        return _MISSING
    for part in pointer[1:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if type(obj) is dict:
            obj = obj.get(part, _MISSING)
        elif type(obj) is list and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return _MISSING
        if obj is _MISSING:
            return _MISSING
    return obj


_DAYS: dict[str, int] = {}


def parse_time_ns(text: str) -> int:
    """``2019-07-09T15:02:37.213367Z`` → nanoseconds since the epoch (0 when it does not parse)."""
    if not text:
        return 0
    if len(text) == 27 and text[19] == "." and text[26] == "Z" and text[10] == "T":
        # RFC 3339 with microseconds, what kube-apiserver writes (every event, many times a second): the
        # day's epoch second from a small cache, the time of day by slicing.
        day = _DAYS.get(text[:10])
        if day is None:
            try:
                day = int(datetime.fromisoformat(text[:10] + "T00:00:00+00:00").timestamp())
            except ValueError:
                return 0
            if len(_DAYS) < 4096:
                _DAYS[text[:10]] = day
        try:
            secs = day + int(text[11:13]) * 3600 + int(text[14:16]) * 60 + int(text[17:19])
            return secs * 1_000_000_000 + int(text[20:26]) * 1000
        except ValueError:
            return 0
    frac_ns = 0
    main = text
    dot = text.find(".")
    if dot >= 0:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        digits = text[dot + 1 : end]
        frac_ns = int((digits + "000000000")[:9]) if digits else 0
        main = text[:dot] + text[end:]
    try:
        dt = datetime.fromisoformat(main.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if dt.tzinfo is None:
        return 0
    return int(dt.timestamp()) * 1_000_000_000 + frac_ns


_NO_RAW: Final = msgspec.Raw(b"")


class _Head(msgspec.Struct):
    """The top-level keys of an audit Event that fields read, decoded at once; the request and response
    objects (most of an event's bytes) stay undecoded until a field asks for them."""

    kind: Any = None
    apiVersion: Any = None
    auditID: Any = None
    stage: Any = None
    verb: Any = None
    requestURI: Any = None
    user: Any = None
    impersonatedUser: Any = None
    sourceIPs: Any = None
    userAgent: Any = None
    objectRef: Any = None
    responseStatus: Any = None
    annotations: Any = None
    requestReceivedTimestamp: Any = None
    stageTimestamp: Any = None
    requestObject: msgspec.Raw = _NO_RAW
    responseObject: msgspec.Raw = _NO_RAW


class _List(msgspec.Struct):
    items: list[msgspec.Raw]


_HEAD = msgspec.json.Decoder(_Head)
_LIST = msgspec.json.Decoder(_List)


def _lazy(raw: msgspec.Raw) -> Any:
    if not raw:
        return _MISSING
    return orjson.loads(bytes(raw))


class AuditEvent:
    """One ``audit.k8s.io`` Event (``v1`` or ``v1beta1``), as the engine sees it."""

    __slots__ = ("_cache", "_raw", "_request", "_response", "_time_ns", "cluster", "head", "text")

    source: Final = K8S_AUDIT

    def __init__(self, head: _Head, text: bytes, *, cluster: str = "") -> None:
        #: The top-level keys, decoded.
        self.head = head
        #: The event's JSON text (``jevt.obj``; decoded in full only for ``jevt.value`` pointers).
        self.text = text
        #: The cluster it came from (``ka.cluster.name``; "" when unknown).
        self.cluster = cluster
        self._cache: dict[Any, FieldValue] = {}
        self._time_ns = -1
        self._raw: Any = None
        self._request: Any = None
        self._response: Any = None

    @classmethod
    def from_dict(cls, obj: dict[str, Any], *, cluster: str = "") -> AuditEvent:
        """An event from an already decoded object (tests, importers)."""
        text = orjson.dumps(obj)
        return cls(_HEAD.decode(text), text, cluster=cluster)

    @property
    def raw(self) -> Any:
        """The whole event, decoded (on first use)."""
        if self._raw is None:
            self._raw = orjson.loads(self.text)
        return self._raw

    @property
    def request(self) -> Any:
        """``requestObject`` decoded, or the missing marker."""
        if self._request is None:
            self._request = _lazy(self.head.requestObject)
        return self._request

    @property
    def response(self) -> Any:
        """``responseObject`` decoded, or the missing marker."""
        if self._response is None:
            self._response = _lazy(self.head.responseObject)
        return self._response

    @property
    def type(self) -> str:
        v = self.head.verb
        return v if type(v) is str else ""

    @property
    def time_ns(self) -> int:
        if self._time_ns < 0:
            ts = self.head.stageTimestamp or self.head.requestReceivedTimestamp or ""
            self._time_ns = parse_time_ns(ts) if type(ts) is str else 0
        return self._time_ns

    def field(self, name: str, arg: str | None = None) -> FieldValue:
        key: Any = name if arg is None else (name, arg)
        cache = self._cache
        try:
            return cache[key]
        except KeyError:
            pass
        fn = _EXTRACT.get(name)
        value = fn(self, arg) if fn is not None else None
        cache[key] = value
        return value

    def __repr__(self) -> str:
        return f"AuditEvent({self.head.auditID!r}, {self.type!r})"


Extractor = Callable[[AuditEvent, "str | None"], FieldValue]


def _root(e: AuditEvent, key: str) -> Any:
    """A top-level key of the event (request and response objects decoded on demand)."""
    if key == "requestObject":
        return e.request
    if key == "responseObject":
        return e.response
    v = getattr(e.head, key, _MISSING) if key in _HEAD_KEYS else e.raw.get(key, _MISSING)
    return _MISSING if v is None and key not in _NULLABLE else v


def _at(e: AuditEvent, keys: tuple[str, ...]) -> Any:
    v = _root(e, keys[0])
    return v if len(keys) == 1 or v is _MISSING else _get(v, *keys[1:])


def _keys(*keys: str) -> Extractor:
    if len(keys) == 1 and keys[0] in _HEAD_KEYS:
        attr = keys[0]

        def top(e: AuditEvent, _a: str | None) -> FieldValue:
            v = getattr(e.head, attr)
            return v if type(v) is str else (None if v is None else _sv(v))

        return top
    if len(keys) == 2 and keys[0] in _HEAD_KEYS and keys[0] not in ("requestObject", "responseObject"):
        outer, inner = keys

        def nested(e: AuditEvent, _a: str | None) -> FieldValue:
            d = getattr(e.head, outer)
            if type(d) is not dict:
                return None
            v = d.get(inner, _MISSING)
            return v if type(v) is str else (None if v is _MISSING else _sv(v))

        return nested

    def deep(e: AuditEvent, _a: str | None) -> FieldValue:
        v = _at(e, keys)
        return None if v is _MISSING else _sv(v)

    return deep


def _list_keys(*keys: str) -> Extractor:
    def get(e: AuditEvent, arg: str | None) -> FieldValue:
        v = _at(e, keys)
        if type(v) is not list:
            return None
        i = _index(arg)
        if i is not None:
            v = [v[i]] if 0 <= i < len(v) else []
        return _strings(v)

    return get


def _uri_param(e: AuditEvent, arg: str | None) -> FieldValue:
    uri = e.head.requestURI
    if type(uri) is not str or not arg:
        return None
    values = parse_qs(urlsplit(uri).query, keep_blank_values=True).get(arg)
    return values[0] if values else None


def _containers(e: AuditEvent, group: str, arg: str | None) -> list[Any] | None:
    arr = _array(e.request, arg, "spec", group)
    if arr is None or not all(type(c) is dict for c in arr):
        return None
    return arr


def _repository(image: str) -> str:
    # The plugin's split: "nginx:1.25" → "nginx", "img@sha256:…" → "img" (and, like the plugin,
    # "registry:5000/app" → "registry").
    return image.split(":", 1)[0].split("@", 1)[0]


def _per_container(group: str, suffix: str) -> Extractor:
    """``ka.req.pod.<group>.<suffix>``: one value per container that has it."""
    path: dict[str, tuple[str, ...]] = {
        "name": ("name",),
        "image": ("image",),
        "image.repository": ("image",),
        "command": ("command",),
        "args": ("args",),
        "privileged": ("securityContext", "privileged"),
        "allow_privilege_escalation": ("securityContext", "allowPrivilegeEscalation"),
        "read_only_fs": ("securityContext", "readOnlyRootFilesystem"),
        "run_as_user": ("securityContext", "runAsUser"),
        "run_as_group": ("securityContext", "runAsGroup"),
        "proc_mount": ("securityContext", "procMount"),
    }

    def get(e: AuditEvent, arg: str | None) -> FieldValue:
        cs = _containers(e, group, arg)
        if cs is None:
            return None
        if suffix in ("eff_run_as_user", "eff_run_as_group"):
            key = "runAsUser" if suffix == "eff_run_as_user" else "runAsGroup"
            pod = _get(e.request, "spec", "securityContext", key)
            default = "0" if pod is _MISSING else _sv(pod)
            out = []
            for c in cs:
                v = _get(c, "securityContext", key)
                out.append(default if v is _MISSING else _sv(v))
            return tuple(out) or None
        if suffix == "add_capabilities":
            caps: list[str] = []
            for c in cs:
                add = _get(c, "securityContext", "capabilities", "add")
                if type(add) is list:
                    caps.extend(_sv(x) for x in add)
            return tuple(caps) or None
        if suffix == "host_port":
            ports: list[str] = []
            for c in cs:
                for p in c.get("ports") or ():
                    if type(p) is dict:
                        v = p.get("hostPort", p.get("containerPort", _MISSING))
                        if v is not _MISSING:
                            ports.append(_sv(v))
            return tuple(ports) or None
        keys = path[suffix]
        values = [_get(c, *keys) for c in cs]
        if suffix in ("name", "image", "image.repository"):
            # As the plugin: a container without the key makes the whole field unavailable.
            if any(v is _MISSING for v in values):
                return None
            texts = [_sv(v) for v in values]
            if suffix == "image.repository":
                texts = [_repository(t) for t in texts]
            return tuple(texts) or None
        return tuple(_sv(v) for v in values if v is not _MISSING) or None

    return get


def _first_container(suffix: str) -> Extractor:
    images = _per_container("containers", suffix)

    def get(e: AuditEvent, _arg: str | None) -> FieldValue:
        v = images(e, "0")
        return v[0] if type(v) is tuple else None

    return get


def _any_privileged(e: AuditEvent, _arg: str | None) -> FieldValue:
    cs = _containers(e, "containers", None)
    if cs is None:
        return None
    return "true" if any(_get(c, "securityContext", "privileged") is True for c in cs) else "false"


def _hostpaths(e: AuditEvent, arg: str | None) -> list[str] | None:
    vols = _array(e.request, arg, "spec", "volumes")
    if vols is None:
        return None
    return [_sv(p) for v in vols if (p := _get(v, "hostPath", "path")) is not _MISSING]


def _volume_hostpath(e: AuditEvent, arg: str | None) -> FieldValue:
    paths = _hostpaths(e, None)
    if paths is None or not arg:
        return None
    if arg.endswith("*"):
        return "true" if any(p.startswith(arg[:-1]) for p in paths) else "false"
    return "true" if arg in paths else "false"


def _volume_types(e: AuditEvent, arg: str | None) -> FieldValue:
    vols = _array(e.request, arg, "spec", "volumes")
    if vols is None:
        return None
    return tuple(k for v in vols if type(v) is dict for k in v if k != "name") or None


def _flexvolume(e: AuditEvent, arg: str | None) -> FieldValue:
    vols = _array(e.request, arg, "spec", "volumes")
    if vols is None:
        return None
    return tuple(_sv(d) for v in vols if (d := _get(v, "flexVolume", "driver")) is not _MISSING) or None


def _rules_field(key: str) -> Extractor:
    def get(e: AuditEvent, arg: str | None) -> FieldValue:
        rules = _array(e.request, arg, "rules")
        if rules is None:
            return None
        out: list[str] = []
        for r in rules:
            v = _get(r, key)
            if type(v) is list:
                out.extend(_sv(x) for x in v if x is not None)
        return tuple(out) or None

    return get


def _subjects(kind: str, with_ns: bool = False) -> Extractor:
    def get(e: AuditEvent, _arg: str | None) -> FieldValue:
        subjects = _get(e.request, "subjects")
        if type(subjects) is not list:
            return None
        out = []
        for s in subjects:
            if type(s) is dict and s.get("kind") == kind and "name" in s:
                name = _sv(s["name"])
                out.append(f"{_sv(s.get('namespace', ''))}:{name}" if with_ns else name)
        return tuple(out) or None

    return get


def _target_pod_name(e: AuditEvent, _arg: str | None) -> FieldValue:
    ref = e.head.objectRef
    if type(ref) is dict and ref.get("resource") == "pods":
        return _scalar(ref, "name")
    return None


def _pointer(e: AuditEvent, arg: str | None) -> FieldValue:
    if arg is None:
        return None
    if not arg.startswith("/"):
        return None
    first, _, rest = arg[1:].partition("/")
    first = first.replace("~1", "/").replace("~0", "~")
    # The first step through the parts decoded on demand: /stage and /requestObject/... never decode the
    # whole event.
    root = _root(e, first)
    if root is _MISSING:
        return None
    v = _json_pointer(root, "/" + rest) if rest else root
    return None if v is _MISSING else _sv(v)


def _obj(e: AuditEvent, _arg: str | None) -> FieldValue:
    return e.text.decode("utf-8", "replace")


def _time_text(e: AuditEvent, _arg: str | None) -> FieldValue:
    ts = e.head.stageTimestamp or e.head.requestReceivedTimestamp
    return ts if type(ts) is str else None


_HEAD_KEYS: Final = frozenset(_Head.__struct_fields__)
#: Top-level keys whose JSON null is a value ("null"), not an absence.
_NULLABLE: Final = frozenset({"requestObject", "responseObject"})

_EXTRACT: dict[str, Extractor] = {
    "ka.auditid": _keys("auditID"),
    "ka.stage": _keys("stage"),
    "ka.auth.decision": _keys("annotations", "authorization.k8s.io/decision"),
    "ka.auth.reason": _keys("annotations", "authorization.k8s.io/reason"),
    "ka.validations.admission.policy.failure": _keys(
        "annotations", "validation.policy.admission.k8s.io/validation_failure"
    ),
    "ka.security.pod.violations": _keys("annotations", "pod-security.kubernetes.io/audit-violations"),
    "ka.user.name": _keys("user", "username"),
    "ka.user.groups": _list_keys("user", "groups"),
    "ka.impuser.name": _keys("impersonatedUser", "username"),
    "ka.verb": _keys("verb"),
    "ka.uri": _keys("requestURI"),
    "ka.uri.param": _uri_param,
    "ka.target.name": _keys("objectRef", "name"),
    "ka.target.namespace": _keys("objectRef", "namespace"),
    "ka.target.resource": _keys("objectRef", "resource"),
    "ka.target.subresource": _keys("objectRef", "subresource"),
    "ka.target.pod.name": _target_pod_name,
    "ka.req.binding.subjects": _list_keys("requestObject", "subjects"),
    "ka.req.binding.subjects.user_names": _subjects("User"),
    "ka.req.binding.subjects.serviceaccount_names": _subjects("ServiceAccount"),
    "ka.req.binding.subjects.serviceaccount_ns_names": _subjects("ServiceAccount", with_ns=True),
    "ka.req.binding.subjects.group_names": _subjects("Group"),
    "ka.req.binding.role": _keys("requestObject", "roleRef", "name"),
    "ka.req.binding.subject.has_name": lambda e, a: "true" if a else None,
    "ka.req.configmap.name": _keys("objectRef", "name"),
    "ka.req.configmap.obj": _keys("requestObject", "data"),
    "ka.req.container.image": _first_container("image"),
    "ka.req.container.image.repository": _first_container("image.repository"),
    "ka.req.pod.host_ipc": _keys("requestObject", "spec", "hostIPC"),
    "ka.req.pod.host_network": _keys("requestObject", "spec", "hostNetwork"),
    "ka.req.container.host_network": _keys("requestObject", "spec", "hostNetwork"),
    "ka.req.pod.host_pid": _keys("requestObject", "spec", "hostPID"),
    "ka.req.container.privileged": _any_privileged,
    "ka.req.pod.run_as_user": _keys("requestObject", "spec", "securityContext", "runAsUser"),
    "ka.req.pod.run_as_group": _keys("requestObject", "spec", "securityContext", "runAsGroup"),
    "ka.req.role.rules": _list_keys("requestObject", "rules"),
    "ka.req.role.rules.apiGroups": _rules_field("apiGroups"),
    "ka.req.role.rules.nonResourceURLs": _rules_field("nonResourceURLs"),
    "ka.req.role.rules.verbs": _rules_field("verbs"),
    "ka.req.role.rules.resources": _rules_field("resources"),
    "ka.req.pod.fs_group": _keys("requestObject", "spec", "securityContext", "fsGroup"),
    "ka.req.pod.supplemental_groups": _list_keys("requestObject", "spec", "securityContext", "supplementalGroups"),
    "ka.req.service.type": _keys("requestObject", "spec", "type"),
    "ka.req.service.ports": _list_keys("requestObject", "spec", "ports"),
    "ka.req.pod.volumes.hostpath": lambda e, a: (tuple(p) or None) if (p := _hostpaths(e, a)) is not None else None,
    "ka.req.volume.hostpath": _volume_hostpath,
    "ka.req.pod.volumes.flexvolume_driver": _flexvolume,
    "ka.req.pod.volumes.volume_type": _volume_types,
    "ka.resp.name": _keys("responseObject", "metadata", "name"),
    "ka.response.code": _keys("responseStatus", "code"),
    "ka.response.reason": _keys("responseStatus", "reason"),
    "ka.useragent": _keys("userAgent"),
    "ka.sourceips": _list_keys("sourceIPs"),
    "ka.cluster.name": lambda e, _a: e.cluster or None,
    "jevt.time": _time_text,
    "jevt.time.iso8601": _time_text,
    "jevt.rawtime": lambda e, _a: e.time_ns,
    "jevt.value": _pointer,
    "jevt.obj": _obj,
    "json.value": _pointer,
    "json.obj": _obj,
    "json.rawtime": lambda e, _a: e.time_ns,
}
for _group in CONTAINER_GROUPS:
    for _suffix in (
        "name",
        "image",
        "image.repository",
        "command",
        "args",
        "privileged",
        "allow_privilege_escalation",
        "read_only_fs",
        "run_as_user",
        "eff_run_as_user",
        "run_as_group",
        "eff_run_as_group",
        "proc_mount",
        "add_capabilities",
        "host_port",
    ):
        _EXTRACT[f"ka.req.pod.{_group}.{_suffix}"] = _per_container(_group, _suffix)


def _s(d: Any, key: str) -> str:
    v = d.get(key, "") if type(d) is dict else ""
    return v if type(v) is str else ("" if v is None else _sv(v))


def audit_entities(e: AuditEvent) -> Entities:
    """An audit event's entities (what :func:`garrison.runtime.alerts.entities_of` reads through the
    fields, read from the decoded keys at once): the pod and image only for pods."""
    h = e.head
    ref = h.objectRef
    resource = _s(ref, "resource")
    name = _s(ref, "name")
    pod = image = ""
    if resource == "pods":
        if not name:
            name = _s(_get(e.response, "metadata"), "name")
        pod = name
        images = _EXTRACT["ka.req.pod.containers.image"](e, None) if h.requestObject else None
        image = str(images[0]) if type(images) is tuple and images else ""
    elif not name and h.responseObject:
        name = _s(_get(e.response, "metadata"), "name")
    ips = h.sourceIPs
    return Entities(
        cluster=e.cluster,
        namespace=_s(ref, "namespace"),
        pod=pod,
        image=image,
        user=_s(h.user, "username"),
        source_address=_sv(ips[0]) if type(ips) is list and ips else "",
        resource=resource,
        name=name,
    )


#: Compiled rules call the extractors directly for AuditEvents (see :class:`DirectFields`).
DIRECT: Final = DirectFields(AuditEvent, _EXTRACT, audit_entities)

#: Every declared field has an extractor and every extractor a declaration (checked at import).
assert set(_EXTRACT) == {f.name for f in K8S_AUDIT_FIELDS}, set(_EXTRACT) ^ {f.name for f in K8S_AUDIT_FIELDS}


def _is_event(h: _Head) -> bool:
    api = h.apiVersion
    if h.kind == "Event" and type(api) is str and api.startswith("audit.k8s.io/"):
        return True
    # Older logs (Falco's traces) and some shippers leave apiVersion (or kind) out: an auditID with a verb
    # is still an audit event; a core ``v1`` Event (apiVersion "v1") is not.
    return h.kind in ("Event", None) and api is None and type(h.auditID) is str and type(h.verb) is str


def parse_single(data: bytes, cluster: str = "") -> AuditEvent | None:
    """The one audit Event ``data`` holds, or None for anything else (an EventList, bad JSON, another
    object, surrounding blanks): the reader's fast path; :func:`parse_event` then says what it is."""
    try:
        head = _HEAD.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if head.kind == "Event" and type(head.apiVersion) is str and head.apiVersion.startswith("audit.k8s.io/"):
        return AuditEvent(head, data.rstrip(), cluster=cluster)
    return None


def parse_event(data: bytes, *, cluster: str = "") -> list[AuditEvent]:
    """The audit events in one JSON document: an ``Event`` or an ``EventList`` of them. Raises
    :class:`NotAnAuditEvent` for anything else (JSON that does not parse, an object of another kind, an
    ``EventList`` holding a non-event: the whole list is refused, never half taken)."""
    try:
        head = _HEAD.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise NotAnAuditEvent(f"not a JSON object: {e}") from None
    if _is_event(head):
        return [AuditEvent(head, data, cluster=cluster)]
    if head.kind == "EventList":
        try:
            items = _LIST.decode(data).items
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise NotAnAuditEvent("an EventList without an items list") from None
        out = []
        for n, item in enumerate(items):
            text = bytes(item)
            try:
                h = _HEAD.decode(text)
            except (msgspec.DecodeError, msgspec.ValidationError):
                raise NotAnAuditEvent(f"EventList item {n} is not an object") from None
            if not _is_event(h):
                raise NotAnAuditEvent(f"EventList item {n} is not an audit Event")
            out.append(AuditEvent(h, text, cluster=cluster))
        return out
    raise NotAnAuditEvent(f"not a Kubernetes audit Event or EventList (kind {head.kind!r})")
