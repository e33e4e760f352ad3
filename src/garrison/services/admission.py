"""The admission use cases of the garrison server: judge one AdmissionReview with the images' stored
verdicts and record the decision; list the recorded decisions.

This is the services layer (it takes a :class:`~garrison.store.repos.Store`, as every module of
``garrison.services`` does); the rest of ``garrison.admission`` stays pure. The router
(:mod:`garrison.server.admission`) calls these functions only.

Every decision is recorded, whatever it was (allowed, denied, skipped for an excluded namespace), by a
:class:`DecisionRecorder` that writes many to a transaction; a request admitted by the break-glass
annotation is written at once, with its audit-log entry in the same transaction, so the two cannot
disagree and the admission is never answered before it is recorded.
"""

from __future__ import annotations

import logging
import threading
import time

from garrison.admission.images import StoredVerdict
from garrison.admission.policy import Policy
from garrison.admission.review import AdmissionRequest, Verdict, decide, parse_review, request_images, response
from garrison.errors import InputError
from garrison.services.registry import image_verdicts
from garrison.services.server import Principal
from garrison.store.admission import Decision, DecisionFilter, DecisionIn
from garrison.store.records import Page, Role, normalize_iso, now_iso
from garrison.store.repos import Store

log = logging.getLogger("garrison.admission")

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
    verdicts: dict[str, StoredVerdict | None] = {**image_verdicts(store, request_images(req))}
    return verdicts


class DecisionRecorder:
    """Writes decisions to the store from one background thread, many to a transaction (group commit),
    so that the webhook answers without waiting for the database's commit; a decision is in the store
    within ``linger`` (50 ms) of its answer. At most ``capacity`` wait: past that a decision is written
    before the answer (backpressure, nothing dropped). :meth:`flush` waits for everything submitted so
    far (the decisions list calls it, so a process reads its own decisions; :meth:`close` at exit).

    Break-glass decisions never wait here: :func:`review` writes them and their audit-log entry before
    the webhook answers, so no break-glass admission can go unrecorded.
    """

    def __init__(self, store: Store, *, batch: int = 500, capacity: int = 10_000, linger: float = 0.05) -> None:
        self.store = store
        self.batch = batch
        self.capacity = capacity
        #: Seconds the writer waits after the first queued decision for more to join its transaction.
        self.linger = linger
        self._queue: list[DecisionIn] = []
        self._cond = threading.Condition()
        self._submitted = 0
        self._written = 0
        self._closed = False
        #: Callers waiting in :meth:`flush` (the writer does not linger for them).
        self._flushing = 0
        self._thread: threading.Thread | None = None

    def record(self, d: DecisionIn) -> None:
        """Queue ``d`` (or write it now when the queue is full)."""
        with self._cond:
            if len(self._queue) < self.capacity and not self._closed:
                self._queue.append(d)
                self._submitted += 1
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="admission-decisions", daemon=True)
                    self._thread.start()
                # Wake the writer only when it has something new to do: the first decision of a batch
                # (it waits for one) or a full batch (it stops lingering); the rest join on its deadline.
                if len(self._queue) == 1 or len(self._queue) >= self.batch:
                    self._cond.notify_all()
                return
        with self.store.transaction() as tx:
            tx.admission.add(d)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every decision submitted so far is written; False when ``timeout`` passed first."""
        with self._cond:
            target = self._submitted
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._written >= target, timeout)
            finally:
                self._flushing -= 1

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued and stop the thread."""
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue) or self._closed)
                if not self._queue:
                    return
                # Let more join this transaction (one commit for many), unless a flush or close waits.
                deadline = time.monotonic() + self.linger
                while len(self._queue) < self.batch and not self._closed and not self._flushing:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch = self._queue[: self.batch]
            try:
                with self.store.transaction() as tx:
                    tx.admission.add_many(batch)
            except Exception as exc:  # the database is away: keep them queued and try again
                log.error("admission: cannot record %d decisions (%s); retrying", len(batch), type(exc).__name__)
                time.sleep(1.0)
                continue
            with self._cond:
                del self._queue[: len(batch)]
                self._written += len(batch)
                self._cond.notify_all()


def review(
    store: Store, recorder: DecisionRecorder, who: Principal, body: bytes, policy: Policy
) -> tuple[AdmissionRequest, Verdict, dict[str, object]]:
    """One AdmissionReview from the API server of ``who``'s cluster: (request, verdict, the response
    document); the decision goes to ``recorder`` (a break-glass one is written, with its audit-log entry,
    before this returns). Raises :class:`~garrison.admission.review.BadReview`."""
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
    if not verdict.break_glass:
        recorder.record(d)
        return req, verdict, doc
    with store.transaction() as tx:
        decision = tx.admission.add(d)
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
    return req, verdict, doc


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


def list_decisions(
    store: Store, recorder: DecisionRecorder, f: DecisionFilter, limit: int = 100, offset: int = 0
) -> Page[Decision]:
    """Recorded decisions, newest first (this process's queued ones written first)."""
    recorder.flush()
    with store.transaction() as tx:
        return tx.admission.list(f, limit, offset)
