"""The admission use cases of the garrison server: judge one AdmissionReview with the images' stored
verdicts and record the decision; list the recorded decisions.

This is the services layer (it takes a :class:`~garrison.store.repos.Store`, as every module of
``garrison.services`` does); the rest of ``garrison.admission`` stays pure. The router
(:mod:`garrison.server.admission`) calls these functions only.

Every decision is recorded, whatever it was (allowed, denied, skipped for an excluded namespace), in
one transaction; a request admitted by the break-glass annotation also writes an audit-log entry in the
same transaction, so the two cannot disagree.
"""

from __future__ import annotations

from garrison.admission.images import StoredVerdict
from garrison.admission.policy import Policy
from garrison.admission.review import AdmissionRequest, Verdict, decide, parse_review, request_images, response
from garrison.errors import InputError
from garrison.services.registry import image_verdict
from garrison.services.server import Principal
from garrison.store.admission import Decision, DecisionFilter, DecisionIn
from garrison.store.records import Page, Role, normalize_iso, now_iso
from garrison.store.repos import Store

#: The audit-log action of a break-glass use.
BREAK_GLASS_ACTION = "admission.break-glass"


def cluster_of(who: Principal) -> str:
    """The cluster a webhook caller speaks for: a scoped agent's own; "" for an admin."""
    return who.user.cluster if who.role is Role.AGENT else ""


def verdicts_for(store: Store, req: AdmissionRequest, policy: Policy) -> dict[str, StoredVerdict | None] | None:
    """The stored verdict of each image of the request (None: never scanned); None when no image rule
    of the policy needs the store (so no lookup is made)."""
    if not policy.images.needs_verdicts:
        return None
    return {image: image_verdict(store, image) for image in request_images(req)}


def review(
    store: Store, who: Principal, body: bytes, policy: Policy
) -> tuple[AdmissionRequest, Verdict, dict[str, object], Decision]:
    """One AdmissionReview from the API server of ``who``'s cluster: (request, verdict, the response
    document, the recorded decision). Raises :class:`~garrison.admission.review.BadReview`."""
    req = parse_review(body, policy.max_request_bytes)
    verdict = decide(req, policy, verdicts_for(store, req, policy))
    doc = response(req.uid, verdict)
    at = now_iso()
    cluster = cluster_of(who)
    namespace = req.namespace or _object_namespace(req)
    d = DecisionIn(
        at=at,
        cluster=cluster,
        namespace=namespace,
        kind=req.kind,
        name=req.name or _object_name(req),
        operation=req.operation,
        username=req.username,
        allowed=verdict.allowed,
        mode=policy.mode,
        reasons=verdict.reasons,
        warnings=verdict.warnings,
        break_glass=verdict.break_glass,
        uid=req.uid,
        dry_run=req.dry_run,
        skipped=verdict.skipped,
    )
    with store.transaction() as tx:
        decision = tx.admission.add(d)
        if verdict.break_glass:
            tx.audit.append(
                at,
                who.user.name,
                BREAK_GLASS_ACTION,
                "admission",
                str(decision.id),
                verdict.break_glass,
                {
                    "cluster": cluster,
                    "namespace": namespace,
                    "kind": d.kind,
                    "name": d.name,
                    "operation": d.operation,
                    "user": d.username,
                    "uid": d.uid,
                    "dry_run": d.dry_run,
                    "would_deny": list(verdict.reasons),
                },
            )
    return req, verdict, doc, decision


def _object_namespace(req: AdmissionRequest) -> str:
    meta = (req.object or req.old_object or {}).get("metadata")
    ns = meta.get("namespace") if isinstance(meta, dict) else None
    return ns if isinstance(ns, str) else ""


def _object_name(req: AdmissionRequest) -> str:
    """A CREATE from ``generateName`` has no name yet: the prefix says which object it was."""
    meta = (req.object or req.old_object or {}).get("metadata")
    if not isinstance(meta, dict):
        return ""
    name = meta.get("name") or meta.get("generateName")
    return name if isinstance(name, str) else ""


def decision_filter(
    cluster: str = "",
    namespace: str = "",
    kind: str = "",
    name: str = "",
    operation: str = "",
    user: str = "",
    allowed: bool | None = None,
    break_glass: bool | None = None,
    uid: str = "",
    since: str = "",
    until: str = "",
) -> DecisionFilter:
    """Validated filters (times in any ISO 8601 form)."""
    try:
        since_n = normalize_iso(since) if since else ""
        until_n = normalize_iso(until) if until else ""
    except ValueError:
        raise InputError("since/until: ISO 8601 times (2026-12-01T22:44:22Z)") from None
    return DecisionFilter(
        cluster=cluster,
        namespace=namespace,
        kind=kind,
        name=name,
        operation=operation.upper(),
        username=user,
        allowed=allowed,
        break_glass=break_glass,
        uid=uid,
        since=since_n,
        until=until_n,
    )


def list_decisions(store: Store, f: DecisionFilter, limit: int = 100, offset: int = 0) -> Page[Decision]:
    """Recorded decisions, newest first."""
    with store.transaction() as tx:
        return tx.admission.list(f, limit, offset)
