"""Alerts (de-duplication with exact counts, windows, the findings envelope), the ``ka.*`` fields on real
events, and the file input's handling of bad lines."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.runtime.audit_support import RECORDED, needs_recorded

from garrison.model.common import FindingKind, SubjectKind
from garrison.model.runtime import alert_finding
from garrison.runtime.alerts import AlertAggregator
from garrison.runtime.audit_source import ReadStats, read_events
from garrison.runtime.engine import load_rules
from garrison.runtime.k8saudit import AuditEvent, NotAnAuditEvent, parse_event

RULE = (
    "- rule: create\n  desc: d\n  condition: ka.verb=create\n  output: created %ka.target.name by %ka.user.name\n"
    "  priority: WARNING\n  source: k8s_audit\n"
)


def _event(user: str, t_s: float, name: str = "x") -> AuditEvent:
    ts = f"2026-01-01T00:{int(t_s) // 60:02d}:{int(t_s) % 60:02d}.000000Z"
    return AuditEvent.from_dict(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "auditID": f"{user}-{t_s}",
            "stage": "ResponseComplete",
            "verb": "create",
            "user": {"username": user},
            "objectRef": {"resource": "configmaps", "namespace": "ns", "name": name},
            "stageTimestamp": ts,
        }
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 3000)), max_size=60), st.integers(1, 900))
def test_counts_are_exact(events: list[tuple[str, int]], window: int) -> None:
    rs = load_rules([], texts=[("t.yaml", RULE)])
    agg = AlertAggregator(window=window, keep_events=3)
    alerts = []
    for user, t in sorted(events, key=lambda e: e[1]):
        for m in rs.evaluate(_event(user, t)):
            if (closed := agg.add(m)) is not None:
                alerts.append(closed)
    alerts += agg.flush()
    assert sum(a.count for a in alerts) == len(events) == agg.matches
    for a in alerts:
        assert len(a.events) == min(3, a.count)
        assert a.first_seen <= a.last_seen
    # one alert per user and window: never two open alerts for the same key at once
    assert len({(a.entities.user, a.first_seen) for a in alerts}) == len(alerts)


def test_window_splits_and_entities_separate() -> None:
    rs = load_rules([], texts=[("t.yaml", RULE)])
    agg = AlertAggregator(window=60)
    alerts = []
    for user, t in (("a", 0), ("a", 30), ("b", 31), ("a", 61), ("a", 90)):
        for m in rs.evaluate(_event(user, t)):
            if (closed := agg.add(m)) is not None:
                alerts.append(closed)  # the event at 61 s closes a's first alert
    assert [(a.entities.user, a.count) for a in alerts] == [("a", 2)]
    alerts += agg.flush()
    assert [(a.entities.user, a.count) for a in alerts] == [("a", 2), ("b", 1), ("a", 2)]
    first = alerts[0]
    assert first.output == "created x by a"
    assert (first.first_seen, first.last_seen) == ("2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:30.000000Z")
    f = alert_finding(first)
    assert f.kind is FindingKind.ALERT and f.subject.kind is SubjectKind.RESOURCE
    assert (f.subject.namespace, f.subject.resource_kind, f.subject.name, f.subject.host) == (
        "ns",
        "configmaps",
        "x",
        "a",
    )
    assert alert_finding(alerts[2]).fingerprint == f.fingerprint  # the same rule on the same entities
    assert alert_finding(alerts[1]).fingerprint != f.fingerprint


@needs_recorded
def test_ka_fields_on_a_real_event() -> None:
    lines = RECORDED.read_bytes().splitlines()
    (pod,) = parse_event(lines[57])  # the hostPath pod
    assert pod.field("ka.verb") == "create" and pod.type == "create"
    assert pod.field("ka.target.resource") == "pods" and pod.field("ka.target.subresource") is None
    assert pod.field("ka.req.pod.volumes.hostpath") == ("/", "/var/run/docker.sock")
    assert pod.field("ka.req.pod.host_network") == "true" and pod.field("ka.req.pod.host_pid") == "true"
    assert pod.field("ka.req.pod.containers.image") == ("busybox",)
    assert pod.field("ka.req.pod.containers.image", "5") is None
    assert pod.field("ka.req.pod.initContainers.image") is None
    assert pod.field("ka.response.code") == "201"
    assert pod.field("ka.auth.decision") == "allow"
    assert pod.field("ka.sourceips") == ("127.0.0.1",)
    assert pod.field("ka.req.volume.hostpath", "/var/run/*") == "true"
    assert pod.field("jevt.value", "/objectRef/namespace") == "shop"
    assert pod.field("jevt.value", "/no/such") is None
    assert json.loads(str(pod.field("jevt.value", "/requestObject/spec/volumes")))[0]["name"] == "root"
    assert pod.time_ns > 1_700_000_000 * 10**9
    (execute,) = parse_event(lines[87])
    assert execute.field("ka.uri.param", "command") == "id"
    assert execute.field("ka.target.subresource") == "exec"
    (binding,) = parse_event(lines[73])
    assert binding.field("ka.req.binding.role") == "cluster-admin"
    assert binding.field("ka.req.binding.subjects.user_names") == ("mallory",)
    (role,) = parse_event(lines[71])
    assert role.field("ka.req.role.rules.verbs") == ("*",)


def test_json_pointer_escapes() -> None:
    ev = AuditEvent.from_dict(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "auditID": "1",
            "verb": "get",
            "a/b": {"c~d": [1, {"e": True}]},
        }
    )
    assert ev.field("jevt.value", "/a~1b/c~0d/1/e") == "true"
    assert ev.field("json.value", "/a~1b/c~0d/0") == "1"


def test_bad_lines_counted_and_skipped() -> None:
    good = json.dumps({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "1", "verb": "get"})
    core_event = json.dumps({"kind": "Event", "apiVersion": "v1", "reason": "Pulled"})  # not an audit event
    data = "\n".join([good, "", "{not json", "[1, 2]", core_event, "x" * 5000, good]).encode()
    stats = ReadStats()
    events = list(read_events(io.BytesIO(data), stats, max_event_bytes=4096))
    assert len(events) == 2
    assert (stats.lines, stats.blank, stats.malformed, stats.oversized, stats.events) == (7, 1, 3, 1, 2)
    assert stats.problems[0].startswith("line 3: ")
    assert "3 malformed line(s) skipped, 1 oversized line(s) skipped" in stats.summary()


def test_eventlist_and_refusals() -> None:
    item = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "1", "verb": "get"}
    assert len(parse_event(json.dumps({"kind": "EventList", "items": [item, item]}).encode())) == 2
    with pytest.raises(NotAnAuditEvent):
        parse_event(json.dumps({"kind": "EventList", "items": [item, {"kind": "Pod"}]}).encode())
    with pytest.raises(NotAnAuditEvent):
        parse_event(b'{"kind": 0}')


@needs_recorded
def test_audit_entities_shortcut_equals_the_fields() -> None:
    """The audit source's own entity reader (the fast path) gives what reading the fields gives."""
    from garrison.runtime.alerts import entities_of
    from garrison.runtime.k8saudit import audit_entities

    checked = 0
    for line in RECORDED.read_bytes().splitlines():
        for ev in parse_event(line):
            assert audit_entities(ev) == entities_of(ev), ev
            checked += 1
    assert checked == 129


def test_window_zero_gives_every_match_at_once() -> None:
    rs = load_rules([], texts=[("t.yaml", RULE)])
    agg = AlertAggregator(window=0)
    out = [agg.add(m) for t in (0, 1) for m in rs.evaluate(_event("a", t))]
    assert [a.count if a else None for a in out] == [1, 1]
    assert agg.flush() == [] and agg.matches == 2
