"""Events from other node sensors: Falco's JSON alerts and Tetragon's JSON events, as node events.

Users of Falco or Tetragon keep their sensor and use garrison's rules and triage on what it reports:

- **Falco** (``json_output: true``): one alert per line, ``{"time", "rule", "priority", "output",
  "output_fields": {Falco field: value}, "source", "tags", "hostname"}``. Each line becomes a
  :class:`~garrison.runtime.node.event.NodeEvent` whose fields are the alert's ``output_fields`` (what the
  Falco rule printed: garrison's rules see those fields and no others), and the alert itself is kept as a
  :class:`FalcoAlert` (``falco_alert_of`` gives garrison's :class:`~garrison.model.runtime.Alert`), so Falco's
  own detections are triaged with garrison's.
- **Tetragon** (``tetra getevents -o json`` or the export file): one event per line, keyed by its type.
  ``process_exec`` → ``execve``; ``process_exit`` → ``procexit``; ``process_kprobe`` with a ``sock_arg``
  (``tcp_connect``, ``tcp_sendmsg``, ``udp_sendmsg``…) → ``connect``, with a ``file_arg``
  (``security_file_permission``, ``security_file_open``, ``fd_install``, ``sys_openat``…) → ``openat``
  (written when the permission mask or the function says so, else read); ``process_tracepoint``,
  ``process_lsm``, ``process_uprobe`` and others are counted as unsupported. The process, its parent and
  its pod/container come from the event (Tetragon's ``arguments`` is one string, split as a shell would).

Lines that are not JSON, not an object, or of an unknown shape are counted and skipped
(:class:`ImportStats`), never fatal. Pure parsing: callers open the files.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from garrison.model.runtime import Alert
from garrison.runtime.engine import RuleSet
from garrison.runtime.events import SYSCALL, FieldValue
from garrison.runtime.node.containers import HOST, ContainerInfo, split_image
from garrison.runtime.node.event import FdInfo, NodeEvent, UserInfo
from garrison.runtime.node.procfs import ProcInfo

#: Longest line accepted (a Falco alert or Tetragon event is a few KiB).
MAX_LINE = 1 << 20


@dataclass
class ImportStats:
    lines: int = 0
    events: int = 0
    malformed: int = 0
    oversized: int = 0
    unsupported: int = 0
    #: Tetragon event types seen but not turned into events, with counts.
    unsupported_types: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FalcoAlert:
    """A Falco alert as Falco wrote it."""

    rule: str
    priority: str
    output: str
    time_ns: int
    source: str
    tags: tuple[str, ...]
    hostname: str
    fields: dict[str, FieldValue]


def parse_time(text: str) -> int:
    """RFC 3339 with up to nanoseconds (``2024-05-01T10:00:00.123456789Z``) → ns since the epoch; 0 if not."""
    if not text:
        return 0
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    frac = 0
    digits = ""
    if "." in t:
        head, rest = t.split(".", 1)
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        digits, tz = rest[:i], rest[i:]
        t = head + tz
        frac = int((digits + "000000000")[:9]) if digits else 0
    try:
        return int(datetime.fromisoformat(t).timestamp()) * 1_000_000_000 + frac
    except ValueError:
        return 0


def _lines(lines: Iterable[str | bytes], stats: ImportStats) -> Iterator[dict[str, Any]]:
    for raw in lines:
        stats.lines += 1
        if len(raw) > MAX_LINE:
            stats.oversized += 1
            continue
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            stats.lines -= 1
            continue
        try:
            doc = json.loads(text)
        except ValueError:
            stats.malformed += 1
            continue
        if not isinstance(doc, dict):
            stats.malformed += 1
            continue
        yield doc


# -- Falco -----------------------------------------------------------------------------------------------


def _scalar(v: Any) -> FieldValue:
    if v is None or isinstance(v, str | bool | int):
        return v  # type: ignore[no-any-return]
    if isinstance(v, float):
        return int(v)
    if isinstance(v, list):
        return tuple(x if isinstance(x, str | int | bool) else json.dumps(x) for x in v)
    return json.dumps(v, sort_keys=True)


def _falco_event(alert: FalcoAlert) -> NodeEvent:
    f = alert.fields
    kind = str(f.get("evt.type") or ("execve" if "proc.cmdline" in f else "unknown"))
    raw_time = f.get("evt.time")
    pid = f.get("proc.pid")
    return _GivenEvent(
        kind=kind,
        time_ns=raw_time if isinstance(raw_time, int) and raw_time > 0 else alert.time_ns,
        proc=ProcInfo(pid=pid if isinstance(pid, int) else 0, ppid=0, name=""),
        hostname=alert.hostname,
        origin="falco",
        given=dict(f),
    )


@dataclass(slots=True)
class _GivenEvent(NodeEvent):
    """A node event whose fields are exactly those given (an imported Falco alert's output fields):
    nothing is derived from the empty process record, so a field Falco did not print is absent."""

    def field(self, name: str, arg: str | None = None) -> FieldValue:
        if arg is not None:
            value = self.given.get(f"{name}[{arg}]")
            if value is None and name == "evt.arg":
                value = self.given.get(f"evt.arg.{arg}")
            return value
        if name == "evt.type":
            return self.kind
        if name in ("evt.rawtime",):
            return self.time_ns
        if name == "evt.hostname":
            return self.given.get(name) or self.hostname or None
        return self.given.get(name)


def read_falco(
    lines: Iterable[str | bytes], stats: ImportStats | None = None
) -> Iterator[tuple[NodeEvent, FalcoAlert]]:
    """Falco JSON alerts → (event, the alert). Lines without ``rule`` and ``output_fields`` are malformed."""
    stats = stats if stats is not None else ImportStats()
    for doc in _lines(lines, stats):
        fields = doc.get("output_fields")
        rule = doc.get("rule")
        if not isinstance(fields, dict) or not isinstance(rule, str):
            stats.malformed += 1
            continue
        alert = FalcoAlert(
            rule=rule,
            priority=str(doc.get("priority", "")),
            output=str(doc.get("output", "")),
            time_ns=parse_time(str(doc.get("time", ""))),
            source=str(doc.get("source", SYSCALL)),
            tags=tuple(str(t) for t in doc.get("tags") or ()),
            hostname=str(doc.get("hostname", "")),
            fields={str(k): _scalar(v) for k, v in fields.items()},
        )
        if alert.source != SYSCALL:
            stats.unsupported += 1
            stats.unsupported_types[f"falco:{alert.source}"] = (
                stats.unsupported_types.get(f"falco:{alert.source}", 0) + 1
            )
            continue
        stats.events += 1
        yield _falco_event(alert), alert


# -- Tetragon --------------------------------------------------------------------------------------------

#: Tetragon event types turned into node events.
TETRAGON_TYPES = ("process_exec", "process_exit", "process_kprobe")
#: ``security_file_permission``'s mask argument: MAY_WRITE and MAY_READ (linux/fs.h).
MAY_WRITE = 0x2
MAY_APPEND = 0x8
_WRITE_FUNCTIONS = ("write", "truncate", "unlink", "rename", "security_path_truncate", "security_inode_unlink")


def _tetragon_proc(p: dict[str, Any], ppid: int = 0) -> ProcInfo:
    binary = str(p.get("binary") or "")
    arguments = str(p.get("arguments") or "")
    try:
        rest = shlex.split(arguments)
    except ValueError:
        rest = arguments.split()
    creds = p.get("process_credentials") or {}
    uid = p.get("uid", creds.get("uid", -1) if isinstance(creds, dict) else -1)
    return ProcInfo(
        pid=int(p.get("pid") or 0),
        ppid=ppid,
        name=os.path.basename(binary),
        exepath=binary,
        args=(binary, *rest) if binary else tuple(rest),
        cwd=str(p.get("cwd") or ""),
        uid=int(uid) if isinstance(uid, int) else -1,
        euid=int(creds.get("euid", -1)) if isinstance(creds, dict) else -1,
        gid=int(creds.get("gid", -1)) if isinstance(creds, dict) else -1,
        loginuid=int(p["auid"]) if isinstance(p.get("auid"), int) and p["auid"] != 4294967295 else -1,
        tty=0,
        partial=not arguments and not binary,
    )


def _tetragon_container(p: dict[str, Any]) -> ContainerInfo:
    pod = p.get("pod")
    if not isinstance(pod, dict):
        docker = str(p.get("docker") or "")
        return ContainerInfo(full_id=docker, type="docker") if docker else HOST
    cont = pod.get("container") or {}
    cid = str(cont.get("id") or p.get("docker") or "")
    kind = "containerd"
    if "://" in cid:
        kind, cid = cid.split("://", 1)
    image = cont.get("image") or {}
    name = str(image.get("name") or "")
    repo, tag, digest = split_image(name)
    image_id = str(image.get("id") or "")
    if not digest and "@" in image_id:
        digest = image_id.split("@", 1)[1]
    labels = [
        ("io.kubernetes.pod.namespace", str(pod.get("namespace") or "")),
        ("io.kubernetes.pod.name", str(pod.get("name") or "")),
    ]
    for k, v in (pod.get("pod_labels") or {}).items():
        labels.append((str(k), str(v)))
    return ContainerInfo(
        full_id=cid or "unknown",
        type=kind,
        name=str(cont.get("name") or ""),
        image=name,
        image_repository=repo,
        image_tag=tag,
        image_digest=digest,
        privileged=None,
        labels=tuple(sorted(labels)),
    )


def _tetragon_user(p: dict[str, Any]) -> UserInfo:
    """Tetragon names the user only with ``--username-metadata`` (``process.user.name``)."""
    user = p.get("user")
    return UserInfo(name=str(user.get("name") or "")) if isinstance(user, dict) else UserInfo()


def _lineage_of(parent: ProcInfo | None, ancestors: tuple[ProcInfo, ...]) -> Any:
    chain = ((parent,) if parent is not None else ()) + ancestors

    def lineage(_p: ProcInfo) -> tuple[ProcInfo, ...]:
        return chain

    return lineage


def _sock_fd(sock: dict[str, Any]) -> FdInfo:
    family = str(sock.get("family", "AF_INET"))
    proto = str(sock.get("protocol", "") or sock.get("type", "")).lower()
    l4 = "udp" if "udp" in proto or "dgram" in proto else "tcp"
    lip, rip = str(sock.get("saddr", "")), str(sock.get("daddr", ""))
    lport, rport = int(sock.get("sport") or 0), int(sock.get("dport") or 0)
    return FdInfo(
        num=-1,
        type="ipv6" if family == "AF_INET6" else "ipv4",
        name=f"{lip}:{lport}->{rip}:{rport}",
        l4proto=l4,
        lip=lip,
        lport=lport,
        rip=rip,
        rport=rport,
    )


def _kprobe(body: dict[str, Any]) -> tuple[str, FdInfo | None, dict[str, str]]:
    fn = str(body.get("function_name") or "")
    args = [a for a in body.get("args") or () if isinstance(a, dict)]
    for a in args:
        if isinstance(a.get("sock_arg"), dict):
            return ("connect" if "accept" not in fn else "accept"), _sock_fd(a["sock_arg"]), {}
        if isinstance(a.get("sockaddr_arg"), dict):
            s = a["sockaddr_arg"]
            return "connect", _sock_fd({"family": s.get("family"), "daddr": s.get("addr"), "dport": s.get("port")}), {}
    for a in args:
        fa = a.get("file_arg") or a.get("path_arg")
        if isinstance(fa, dict) and fa.get("path"):
            path = str(fa["path"])
            mask = next((x.get("int_arg") for x in args if isinstance(x.get("int_arg"), int)), None)
            writing = any(w in fn for w in _WRITE_FUNCTIONS) or (
                isinstance(mask, int) and "permission" in fn and bool(mask & (MAY_WRITE | MAY_APPEND))
            )
            flags = "O_WRONLY|O_TRUNC" if "truncate" in fn else "O_WRONLY" if writing else "O_RDONLY"
            kind = "unlink" if "unlink" in fn else "openat"
            return kind, FdInfo(num=-1, type="file", name=path), {"name": path, "flags": flags}
    return "", None, {}


def read_tetragon(lines: Iterable[str | bytes], stats: ImportStats | None = None) -> Iterator[NodeEvent]:
    """Tetragon JSON events → node events (see the module docstring for the mapping)."""
    stats = stats if stats is not None else ImportStats()
    for doc in _lines(lines, stats):
        kind_key = next((k for k in doc if k.startswith("process_") or k in ("test",)), "")
        body = doc.get(kind_key) if kind_key else None
        if not isinstance(body, dict) or not isinstance(body.get("process"), dict):
            if kind_key:
                stats.unsupported += 1
                stats.unsupported_types[kind_key] = stats.unsupported_types.get(kind_key, 0) + 1
            else:
                stats.malformed += 1
            continue
        if kind_key not in TETRAGON_TYPES:
            stats.unsupported += 1
            stats.unsupported_types[kind_key] = stats.unsupported_types.get(kind_key, 0) + 1
            continue
        p = body["process"]
        parent_doc = body.get("parent") if isinstance(body.get("parent"), dict) else None
        parent = _tetragon_proc(parent_doc) if parent_doc else None
        ancestors = tuple(_tetragon_proc(a) for a in body.get("ancestors") or () if isinstance(a, dict))
        proc = _tetragon_proc(p, ppid=parent.pid if parent else 0)
        fd: FdInfo | None = None
        evargs: dict[str, str] = {}
        if kind_key == "process_exec":
            kind = "execve"
        elif kind_key == "process_exit":
            kind = "procexit"
        else:
            kind, fd, evargs = _kprobe(body)
            if not kind:
                stats.unsupported += 1
                name = f"process_kprobe:{body.get('function_name', '')}"
                stats.unsupported_types[name] = stats.unsupported_types.get(name, 0) + 1
                continue
        ts = parse_time(str(doc.get("time") or body.get("time") or ""))
        stats.events += 1
        yield NodeEvent(
            kind=kind,
            time_ns=ts,
            proc=proc,
            container=_tetragon_container(p),
            fd=fd,
            args=evargs,
            user=_tetragon_user(p),
            hostname=str(doc.get("node_name") or ""),
            lineage=_lineage_of(parent, ancestors),
            origin="tetragon",
        )


def falco_alert_of(event: NodeEvent, alert: FalcoAlert) -> Alert:
    """Falco's own detection as a garrison alert (count 1; the aggregator is not involved), so that it is
    triaged, stored and rendered like garrison's. MITRE ids come from the rule's tags, as Falco writes them."""
    from garrison.model.common import Severity
    from garrison.runtime.alerts import entities_of, iso

    try:
        severity = Severity.parse(alert.priority)
    except ValueError:
        severity = Severity.parse("medium")
    tactic = next((t for t in alert.tags if t.startswith("mitre_")), "")
    technique = next((t for t in alert.tags if len(t) >= 5 and t[0] == "T" and t[1:5].isdigit()), "")
    when = iso(event.time_ns)
    return Alert(
        rule=alert.rule,
        priority=alert.priority,
        severity=severity,
        source=alert.source,
        mitre_tactic=tactic,
        mitre_technique=technique,
        time=when,
        output=alert.output,
        entities=entities_of(event),
        count=1,
        first_seen=when,
        last_seen=when,
        falco=alert.rule,
        tags=alert.tags,
        rule_file="falco",
    )


def import_alerts(
    kind: str,
    lines: Iterable[str | bytes],
    ruleset: RuleSet,
    *,
    window: float = 300.0,
    falco_alerts: bool = True,
    stats: ImportStats | None = None,
) -> list[Alert]:
    """``kind`` (``falco`` or ``tetragon``) lines → garrison's alerts on them (de-duplicated within
    ``window``), followed, for Falco, by Falco's own alerts (``falco_alerts``)."""
    from garrison.runtime.alerts import alerts_of

    stats = stats if stats is not None else ImportStats()
    theirs: list[Alert] = []
    events: Iterator[NodeEvent]
    if kind == "falco":

        def falco_events() -> Iterator[NodeEvent]:
            for ev, alert in read_falco(lines, stats):
                if falco_alerts:
                    theirs.append(falco_alert_of(ev, alert))
                yield ev

        events = falco_events()
    elif kind == "tetragon":
        events = read_tetragon(lines, stats)
    else:
        raise ValueError(f"unknown event format {kind!r}")
    ours = list(alerts_of((m for ev in events for m in ruleset.evaluate(ev)), window=window))
    return ours + theirs
