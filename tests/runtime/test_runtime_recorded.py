"""The 129 audit events recorded from a real kube-apiserver v1.20.2 (../shared/k8s/recorded), replayed
through the file input and, batched as EventLists, through the webhook receiver: each event raises the
alerts it should, and nothing else does. The receiver runs on 127.0.0.1 and is called the way
kube-apiserver's webhook backend calls it (POST of an ``audit.k8s.io/v1`` EventList, bearer token)."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import httpx
import pytest
from tests.runtime.audit_support import RECORDED, falco, needs_falco, needs_recorded

from garrison.model.runtime import Alert
from garrison.runtime.engine import load_rules
from garrison.runtime.receiver import AuditReceiver
from garrison.services.runtime import RuntimeOptions, audit_log, load_ruleset

pytestmark = needs_recorded

#: Line of the recorded event → the garrison rule it must raise. Every other event raises nothing.
EXPECTED = {
    47: "Admission Webhook Configuration Changed",  # the ValidatingWebhookConfiguration
    55: "Privileged Container Created",  # pod shop/priv
    58: "Sensitive Host Path Mounted",  # pod shop/hostpath: hostPath / and the Docker socket
    64: "PostgreSQL Exposed by LoadBalancer",  # service shop/db, LoadBalancer on 5432, no source range
    72: "High-Privilege Role Created",  # ClusterRole "everything": * on *
    74: "Cluster-Admin Role Bound",  # ClusterRoleBinding mallory-admin
    81: "CoreDNS Configuration Modified",  # the coredns ConfigMap patched (its creation is not a change)
    88: "Exec, Attach or Port-Forward into a Pod",  # kubectl exec (GET, 400: no node)
    90: "Exec, Attach or Port-Forward into a Pod",  # and its POST retry
    129: "Kubernetes Events Deleted",  # Event shop/web.1 deleted
}
TOKEN = "t0ken-for-tests"


def _lines() -> list[bytes]:
    return RECORDED.read_bytes().splitlines()


def _alerts_by_file() -> tuple[list[Alert], int]:
    report = audit_log(io.BytesIO(RECORDED.read_bytes()), "recorded", RuntimeOptions())
    return list(report.alerts), report.matches


def test_each_recorded_event_raises_what_it_should() -> None:
    ruleset = load_ruleset(RuntimeOptions())
    seen: dict[int, list[str]] = {}
    for n, line in enumerate(_lines(), 1):
        from garrison.runtime.k8saudit import parse_event

        (event,) = parse_event(line)
        names = [m.rule.name for m in ruleset.evaluate(event)]
        if names:
            seen[n] = names
    assert seen == {n: [rule] for n, rule in EXPECTED.items()}


def test_file_input_alerts_and_counts() -> None:
    alerts, matches = _alerts_by_file()
    assert matches == len(EXPECTED)
    assert sum(a.count for a in alerts) == matches
    by_rule = {a.rule: a for a in alerts}
    assert set(by_rule) == set(EXPECTED.values())
    exec_alert = by_rule["Exec, Attach or Port-Forward into a Pod"]
    assert exec_alert.count == 2  # two attempts, one alert
    assert exec_alert.entities.pod == "priv" and exec_alert.entities.namespace == "shop"
    assert exec_alert.first_seen < exec_alert.last_seen
    priv = by_rule["Privileged Container Created"]
    assert (priv.entities.user, priv.entities.image, priv.entities.source_address) == (
        "admin",
        "nginx:1.25",
        "127.0.0.1",
    )
    assert priv.mitre_technique == "T1611" and priv.defender == ("K8S_PrivilegedContainer",)
    assert "images=(nginx:1.25)" in priv.output
    binding = by_rule["Cluster-Admin Role Bound"]
    assert '"name":"mallory"' in binding.output


@needs_falco
def test_falco_current_rules_on_the_recorded_events() -> None:
    """Falco's own k8saudit rules, through the same input: the detections a Falco user would get."""
    ruleset = load_rules([falco("k8s_audit_rules.yaml")])
    counts: Counter[str] = Counter()
    from garrison.runtime.k8saudit import parse_event

    for line in _lines():
        for event in parse_event(line):
            counts.update(m.rule.name for m in ruleset.evaluate(event))
    for rule, n in {
        "Create Privileged Pod": 1,
        "Create Sensitive Mount Pod": 1,
        "Create HostNetwork Pod": 1,
        "Create HostPid Pod": 1,
        "Attach to cluster-admin Role": 1,
        "ClusterRole With Wildcard Created": 1,
        "Create/Modify Configmap With Private Credentials": 1,
        "Attach/Exec Pod": 2,
        "Service Account Created in Kube Namespace": 1,
    }.items():
        assert counts[rule] == n, (rule, counts[rule])
    assert counts["Anonymous Request Allowed"] == 0  # the anonymous request was refused (403)


def _event_list(lines: list[bytes]) -> bytes:
    items = ",".join(line.decode() for line in lines)
    return f'{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{items}]}}'.encode()


def _receiver(**kw: object) -> tuple[AuditReceiver, list[Alert]]:
    got: list[Alert] = []
    receiver = AuditReceiver(load_ruleset(RuntimeOptions()), token=TOKEN, on_alert=got.append, **kw)  # type: ignore[arg-type]
    return receiver, got


def _key(a: Alert) -> tuple[object, ...]:
    return (a.rule, a.count, a.first_seen, a.last_seen, a.entities, a.output)


@pytest.mark.slow
def test_webhook_receiver_raises_the_same_alerts() -> None:
    receiver, got = _receiver()
    receiver.start()
    try:
        host, port = receiver.address
        lines = _lines()
        with httpx.Client(base_url=f"http://{host}:{port}", headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            for i in range(0, len(lines), 40):  # batches, as --audit-webhook-batch-max-size would cut them
                r = c.post(
                    "/k8s-audit", content=_event_list(lines[i : i + 40]), headers={"Content-Type": "application/json"}
                )
                assert r.status_code == 200, r.text
            assert c.get("/healthz").text.strip().endswith('"ok"}')
            receiver.drain()
            stats = c.get("/stats").json()
    finally:
        receiver.stop()
    assert stats["events"] == 129 and stats["bodies"] == 4 and stats["refused_events"] == 0
    by_file, _ = _alerts_by_file()
    assert sorted(map(_key, got)) == sorted(map(_key, by_file))


@pytest.mark.slow
def test_webhook_receiver_refuses_what_it_must() -> None:
    receiver, got = _receiver(max_body=64 * 1024)
    receiver.start()
    try:
        host, port = receiver.address
        base = f"http://{host}:{port}"
        one = _event_list(_lines()[54:55])  # the privileged pod
        assert httpx.post(base + "/k8s-audit", content=one).status_code == 401
        assert (
            httpx.post(base + "/k8s-audit", content=one, headers={"Authorization": "Bearer wrong"}).status_code == 401
        )
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.post(base + "/k8s-audit", content=b'{"kind": 0}', headers=auth).status_code == 400
        assert httpx.post(base + "/k8s-audit", content=b"not json", headers=auth).status_code == 400
        big = _event_list(_lines()[:100])
        assert len(big) > 64 * 1024
        assert httpx.post(base + "/k8s-audit", content=big, headers=auth).status_code == 413
        assert httpx.post(base + "/elsewhere", content=one, headers=auth).status_code == 404
        assert httpx.get(base + "/stats").status_code == 401
        # a broken rules file does not take the receiver down: the running rules stay
        broken = Path(__file__).with_name("nonexistent-broken.yaml")
        error = receiver.reload(lambda: load_rules([broken]))
        assert "cannot read" in error
        assert httpx.post(base + "/k8s-audit", content=one, headers=auth).status_code == 200
        receiver.drain()
        stats = receiver.stats()
    finally:
        receiver.stop()
    assert (stats.unauthorized, stats.malformed_bodies, stats.oversized_bodies, stats.rule_errors) == (3, 2, 1, 1)
    assert [a.rule for a in got] == ["Privileged Container Created"]


def test_a_full_queue_refuses_the_batch_and_counts_it() -> None:
    """Back-pressure: while the evaluator is behind (here: not started), a batch that cannot be queued is
    answered 503 (the API server retries it) and counted; nothing accepted is ever dropped."""
    receiver, _ = _receiver(queue_batches=1, enqueue_timeout=0)
    try:
        body = _event_list(_lines()[:3])
        assert receiver.accept(body)[0] == 200
        status, _ = receiver.accept(body)
        assert status == 503
        s = receiver.stats()
        assert (s.events, s.refused_batches, s.refused_events) == (3, 1, 3)
    finally:
        receiver._server.server_close()


def test_eventlist_with_a_non_event_is_refused_whole() -> None:
    receiver, _ = _receiver()
    try:
        body = json.dumps({"kind": "EventList", "items": [json.loads(_lines()[0]), {"kind": "Pod"}]}).encode()
        status, reason = receiver.accept(body)
        assert status == 400 and "item 1" in reason
        assert receiver.stats().events == 0
    finally:
        receiver._server.server_close()
