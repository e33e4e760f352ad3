"""Matches → alerts: the entities of each match, and de-duplication.

The same rule on the same entities within ``window`` seconds of the alert's first event is one alert; its
``count`` is the number of matching events (exact: the counts of all alerts add up to the number of
matches), with first and last seen. The first ``keep_events`` events are kept on the alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from garrison.model.runtime import Alert, AlertEvent, Entities
from garrison.runtime.engine import Match
from garrison.runtime.events import K8S_AUDIT, Event, FieldValue
from garrison.runtime.fields import DirectFields, FieldRegistry

#: Default de-duplication window (seconds).
DEFAULT_WINDOW: Final = 300.0
#: Events kept per alert by default.
DEFAULT_KEEP_EVENTS: Final = 5


_SECONDS: dict[int, str] = {}


def iso(ns: int) -> str:
    """Nanoseconds since the epoch → ISO 8601 UTC with microseconds ("" for 0)."""
    if ns <= 0:
        return ""
    sec, rest = divmod(ns, 1_000_000_000)
    prefix = _SECONDS.get(sec)
    if prefix is None:
        prefix = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        if len(_SECONDS) > 65536:
            _SECONDS.clear()
        _SECONDS[sec] = prefix
    return f"{prefix}.{rest // 1000:06d}Z"


def _first(v: FieldValue) -> str:
    if v is None:
        return ""
    if type(v) is tuple:
        return str(v[0]) if v else ""
    return str(v)


#: Per source: entity → the Falco field it is read from.
_ENTITY_FIELDS: Final[dict[str, dict[str, tuple[str, str | None]]]] = {
    K8S_AUDIT: {
        "cluster": ("ka.cluster.name", None),
        "namespace": ("ka.target.namespace", None),
        "image": ("ka.req.pod.containers.image", None),
        "user": ("ka.user.name", None),
        "source_address": ("ka.sourceips", None),
        "resource": ("ka.target.resource", None),
        "name": ("ka.target.name", None),
    },
    "syscall": {
        "namespace": ("k8s.ns.name", None),
        "pod": ("k8s.pod.name", None),
        "container": ("container.id", None),
        "image": ("container.image", None),
        "user": ("user.name", None),
        "node": ("evt.hostname", None),
        "process": ("proc.exepath", None),
        "source_address": ("fd.rip", None),
    },
}


def entities_of(event: Event, direct: DirectFields | None = None) -> Entities:
    """The entities an event names (``direct``: the source's extractors, when ``event`` is of its class)."""
    if direct is not None and type(event) is direct.event_type:
        if direct.entities is not None:
            ents: Entities = direct.entities(event)
            return ents
        ex = direct.extractors

        def get(name: str, arg: str | None = None) -> FieldValue:
            fn = ex.get(name)
            return fn(event, arg) if fn is not None else None
    else:
        get = event.field
    values = {name: _first(get(f, a)) for name, (f, a) in _ENTITY_FIELDS.get(event.source, {}).items()}
    if event.source == K8S_AUDIT:
        if values.get("resource") == "pods":
            values["pod"] = values["name"] = values.get("name", "") or _first(get("ka.resp.name"))
        elif not values.get("name"):
            values["name"] = _first(get("ka.resp.name"))
    elif not values.get("process"):
        values["process"] = _first(get("proc.name"))
    return Entities(**values)


def _event_id(event: Event) -> str:
    return _first(event.field("ka.auditid") if event.source == K8S_AUDIT else event.field("evt.num"))


@dataclass(slots=True)
class _Open:
    match: Match
    entities: Entities
    first_ns: int
    last_ns: int
    count: int = 0
    events: list[AlertEvent] = field(default_factory=list)


@dataclass
class AlertAggregator:
    """Folds matches into alerts. ``add`` for each match; ``expire`` closes alerts whose window has
    passed; ``flush`` closes them all. A window of 0 (or less) folds nothing: ``add`` gives every match
    out as its own alert at once."""

    window: float = DEFAULT_WINDOW
    keep_events: int = DEFAULT_KEEP_EVENTS
    #: Matches added (the sum of the counts of every alert this aggregator gives out).
    matches: int = 0
    _open: dict[tuple[str, tuple[str, ...]], _Open] = field(default_factory=dict)
    #: The fields of the events' sources (their direct extractors read the entities faster).
    registry: FieldRegistry | None = None
    #: The entities of the last event seen and their key (an event matching several rules is read once).
    _last: tuple[Event | None, Entities, tuple[str, ...]] = (None, Entities(), ())

    def add(self, match: Match) -> Alert | None:
        """Count one match. Returns the alert it closed, when it falls outside the window of an open alert
        for the same rule and entities (that alert is closed and a new one opened)."""
        self.matches += 1
        event = match.event
        last = self._last
        if last[0] is event:
            ents, ents_key = last[1], last[2]
        else:
            direct = self.registry.direct.get(event.source) if self.registry is not None else None
            ents = entities_of(event, direct)
            ents_key = ents.key()
            self._last = (event, ents, ents_key)
        key = (match.rule.name, ents_key)
        t = event.time_ns
        closed = None
        cur = self._open.get(key)
        if cur is not None and t - cur.first_ns > self.window * 1e9:
            closed = self._close(cur)
            cur = None
        if cur is None:
            cur = _Open(match, ents, t, t)
            self._open[key] = cur
        cur.count += 1
        if t < cur.first_ns:
            cur.first_ns = t
        elif t > cur.last_ns:
            cur.last_ns = t
        if len(cur.events) < self.keep_events:
            # The output line is the alert's (its first event's); the others keep their time and id.
            output = match.output if not cur.events else ""
            cur.events.append(AlertEvent(iso(t), _event_id(event), output))
        if self.window <= 0:
            # No de-duplication: every match is its own alert, given out at once.
            del self._open[key]
            return self._close(cur)
        return closed

    def add_all(self, matches: Iterable[Match]) -> list[Alert]:
        closed = []
        for m in matches:
            a = self.add(m)
            if a is not None:
                closed.append(a)
        return closed

    def expire(self, now_ns: int) -> list[Alert]:
        """Close the alerts whose window ended before ``now_ns``."""
        done = [k for k, o in self._open.items() if now_ns - o.first_ns > self.window * 1e9]
        return [self._close(self._open.pop(k)) for k in done]

    def flush(self) -> list[Alert]:
        """Close every open alert (first seen order)."""
        out = [self._close(o) for o in sorted(self._open.values(), key=lambda o: o.first_ns)]
        self._open.clear()
        return out

    def open_count(self) -> int:
        return len(self._open)

    @staticmethod
    def _close(o: _Open) -> Alert:
        r = o.match.rule
        return Alert(
            rule=r.name,
            priority=r.priority,
            severity=r.severity,
            source=r.source,
            mitre_tactic=r.mitre_tactic,
            mitre_technique=r.mitre_technique,
            time=iso(o.first_ns),
            output=o.match.output,
            entities=o.entities,
            count=o.count,
            first_seen=iso(o.first_ns),
            last_seen=iso(o.last_ns),
            events=tuple(o.events),
            description=r.desc,
            remediation=r.remediation,
            defender=r.defender,
            falco=r.falco,
            tags=r.tags,
            rule_file=r.file,
        )


def alerts_of(matches: Iterable[Match], *, window: float = DEFAULT_WINDOW) -> Iterator[Alert]:
    """Every alert of a finite run of matches, in the order they closed, then by first seen."""
    agg = AlertAggregator(window=window)
    for m in matches:
        a = agg.add(m)
        if a is not None:
            yield a
    yield from agg.flush()
