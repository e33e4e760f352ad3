"""The benchmark's inputs, built from recorded traffic of a real Kubernetes API server
(``../shared/k8s/recorded``): audit ``EventList`` batches and ``AdmissionReview`` requests, varied so that a
long run looks like a busy cluster rather than one replay; and rows to fill a store with (alerts).
"""

from __future__ import annotations

import json
import os
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GARRISON_SHARED") or ROOT.parent / "shared")
RECORDED = SHARED / "k8s" / "recorded"
AUDIT_EVENTS = RECORDED / "audit-events.jsonl"
ADMISSION = RECORDED / "admission"

#: Namespaces the recorded "shop" becomes (a cluster of many teams); kube-* namespaces are kept, since
#: rules look for them.
NAMESPACES = ["shop", *(f"team-{i:02d}" for i in range(1, 30))]
#: People the recorded "admin" and "reader" become (system: users are kept).
USERS = ["admin", "alice", "bob", "carol", "dave", "erin", "frank", "grace"]
#: Object kinds whose names get a replica suffix (a pod or deployment of many).
RENAMED = frozenset({"pods", "deployments"})


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _metadata(doc: Any) -> dict[str, Any] | None:
    if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict):
        md: dict[str, Any] = doc["metadata"]
        return md
    return None


@dataclass(frozen=True)
class AuditLoad:
    """Request bodies (``EventList`` JSON) and how many events they hold."""

    bodies: list[bytes]
    events: int


def audit_batches(n_events: int, seed: int = 7, min_batch: int = 100, max_batch: int = 400) -> AuditLoad:
    """``n_events`` audit events as ``EventList`` batches of ``min_batch`` to ``max_batch`` events (the
    webhook backend's batches), from the recorded events replayed round after round. Each round gets new
    audit IDs, times moved forward (rounds a minute apart, ending now), and its own namespace, user,
    source address and object-name suffix, so the same rule matches many different objects (new alerts)
    and now and then the same object again (folded into a stored alert)."""
    base = [json.loads(line) for line in AUDIT_EVENTS.read_bytes().splitlines() if line.strip()]
    rng = random.Random(seed)
    rounds = -(-n_events // len(base))
    t_first = min(_parse_time(e["requestReceivedTimestamp"]) for e in base)
    end = datetime.now(UTC)
    start = end - timedelta(minutes=rounds)
    events: list[bytes] = []
    for k in range(rounds):
        ns = NAMESPACES[k % len(NAMESPACES)]
        who = USERS[(k // 3) % len(USERS)]
        suffix = f"-{(k * 7) % 23}"
        ip = f"10.{(k // 250) % 250}.{k % 250}.{1 + k % 7}"
        shift = start + timedelta(minutes=k) - t_first
        for e in base:
            if len(events) == n_events:
                break
            events.append(orjson.dumps(_vary(e, ns, who, suffix, ip, shift, rng)))
    bodies: list[bytes] = []
    i = 0
    while i < len(events):
        size = rng.randint(min_batch, max_batch)
        chunk = events[i : i + size]
        bodies.append(b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[' + b",".join(chunk) + b"]}")
        i += size
    return AuditLoad(bodies, len(events))


def _vary(e: dict[str, Any], ns: str, who: str, suffix: str, ip: str, shift: timedelta, rng: random.Random) -> Any:
    out = dict(e)
    out["auditID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    for key in ("requestReceivedTimestamp", "stageTimestamp"):
        if key in e:
            out[key] = _iso(_parse_time(e[key]) + shift)
    user = e.get("user") or {}
    name = user.get("username", "")
    if name and not name.startswith("system:"):
        out["user"] = {**user, "username": who if name == "admin" else f"{who}-{name}"}
    out["sourceIPs"] = [ip]
    uri: str = e.get("requestURI", "")
    ref = e.get("objectRef")
    if isinstance(ref, dict):
        ref = dict(ref)
        old_ns = ref.get("namespace", "")
        renames: dict[str, str] = {}
        if old_ns == "shop":
            ref["namespace"] = ns
            uri = uri.replace("/namespaces/shop/", f"/namespaces/{ns}/")
            renames["namespace"] = ns
        if ref.get("resource") in RENAMED and ref.get("name"):
            old = ref["name"]
            ref["name"] = old + suffix
            uri = uri.replace(f"/{ref['resource']}/{old}", f"/{ref['resource']}/{old}{suffix}")
            renames["name"] = old + suffix
        out["objectRef"] = ref
        for key in ("requestObject", "responseObject"):
            md = _metadata(e.get(key))
            if md is not None and renames:
                out[key] = {**e[key], "metadata": {**md, **{k: v for k, v in renames.items() if k in md}}}
    out["requestURI"] = uri
    return out


# --- admission ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdmissionLoad:
    """AdmissionReview bodies and the uid each one carries (the answer must echo it)."""

    bodies: list[bytes]
    uids: list[str]
    #: The recorded requests they come from (file stems), one per body.
    sources: list[str]


def admission_reviews(n: int, seed: int = 11) -> AdmissionLoad:
    """``n`` AdmissionReview v1 requests cycling through the recorded ones (a privileged pod, a hostPath
    pod, a deployment created and updated, …), each with a fresh ``request.uid`` as the API server gives."""
    recorded = sorted(ADMISSION.glob("*.json"))
    docs = [(p.stem, json.loads(p.read_text())["body"]) for p in recorded]
    rng = random.Random(seed)
    bodies, uids, sources = [], [], []
    for i in range(n):
        stem, doc = docs[i % len(docs)]
        uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        body = {**doc, "request": {**doc["request"], "uid": uid}}
        bodies.append(orjson.dumps(body))
        uids.append(uid)
        sources.append(stem)
    return AdmissionLoad(bodies, uids, sources)


# --- alerts --------------------------------------------------------------------------------------------------

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
CLUSTERS = ("prod-eu", "prod-us", "staging")


def alert_rows(n: int, rules: list[tuple[str, str, str]], columns: set[str], seed: int = 3) -> list[dict[str, Any]]:
    """``n`` rows for the ``alerts`` table as the audit webhook stores them (distinct fingerprints; rule,
    severity and priority from the real rule set; clusters, namespaces, users and last-seen times spread
    over 30 days; most active, a fifth dismissed, some resolved). ``rules``: (name, severity, priority)
    of the loaded rules; ``columns``: the table's columns (statuses the store has not got are left out)."""
    import hashlib

    from garrison.store.records import AlertStatus

    statuses = {s.value for s in AlertStatus}
    active = "active" if "active" in statuses else "open"
    rng = random.Random(seed)
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rows = []
    for i in range(n):
        rule, severity, priority = rules[rng.randrange(len(rules))]
        cluster = CLUSTERS[rng.randrange(len(CLUSTERS))]
        ns = NAMESPACES[rng.randrange(len(NAMESPACES))]
        user = USERS[rng.randrange(len(USERS))]
        last = now - timedelta(seconds=rng.randrange(30 * 86400))
        first = last - timedelta(seconds=rng.randrange(86400))
        name = f"web-{i}"
        row: dict[str, Any] = dict(
            fingerprint=hashlib.sha256(f"bench-alert-{seed}-{i}".encode()).hexdigest(),
            rule=rule,
            severity=severity,
            priority=priority,
            source="k8s_audit",
            output=f"{rule} (user={user} ns={ns} resource=pods name={name})",
            cluster=cluster,
            namespace=ns,
            entities={"cluster": cluster, "namespace": ns, "user": user, "resource": "pods", "name": name},
            count=1 + int(rng.expovariate(0.2)),
            first_seen=first.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            last_seen=last.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            status=active,
            updated_at=stamp,
            dismissed_by="",
            dismissed_reason="",
            dismissed_at="",
            resolved_by="",
            resolved_reason="",
            resolved_at="",
        )
        roll = rng.random()
        if roll < 0.2 and "dismissed" in statuses:
            row |= dict(status="dismissed", dismissed_by="bench-admin", dismissed_reason="accepted risk")
            row["dismissed_at"] = stamp
        elif roll < 0.3 and "resolved" in statuses and "resolved_by" in columns:
            row |= dict(status="resolved", resolved_by="bench-admin", resolved_reason="fixed", resolved_at=stamp)
        rows.append({k: v for k, v in row.items() if k in columns})
    return rows
