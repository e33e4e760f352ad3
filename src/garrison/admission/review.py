"""AdmissionReview v1 in, verdict out: the pure admission engine.

:func:`parse_review` turns the bytes the API server POSTed into an :class:`AdmissionRequest` (or raises
:class:`BadReview`, which the server answers with a 400); :func:`decide` assesses the request's object
against a :class:`~garrison.admission.policy.Policy` with the posture engine and the annotation
exemptions, and its images with the stored verdicts the caller passes in (:mod:`.images`); the
break-glass annotation (``garrison.dev/break-glass: REASON``) turns what would be denied into warnings
and says so in the verdict, for the caller to record; :func:`response` builds the ``AdmissionReview``
v1 the API server expects, echoing ``request.uid``. :func:`handle` chains the three. No I/O, no global state.

What is judged: CREATE and UPDATE of any object (the policy's controls decide which kinds they apply to:
the Pod Security Standards apply to pods and every kind with a pod template). An UPDATE is judged on the
new ``object``; ``oldObject`` only matters when the policy says ``existingViolationsOnUpdate: warn``
(a failure already present at the same path in the old object then warns instead of denying).
DELETE and CONNECT are allowed unchecked, as are objects in an excluded namespace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from garrison.admission.images import ImageIssue, StoredVerdict, container_images, judge_images
from garrison.admission.policy import BREAK_GLASS, Policy
from garrison.findings.exemptions import apply_exemptions
from garrison.model.common import Finding, Suppressed
from garrison.model.posture import Misconfiguration
from garrison.posture.controls import Control
from garrison.posture.engine import evaluate
from garrison.posture.resources import Resource

API_VERSION = "admission.k8s.io/v1"
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")
#: The ``source`` of every assessed object (its findings say where they came from).
SOURCE = "admission"
#: Warnings longer than this are cut: the API server may truncate longer ones anyway.
MAX_WARNING = 256
#: At most this many failures are spelled out in a denial message, and this many warnings returned.
MAX_LISTED = 20


class BadReview(Exception):
    """The request is not an AdmissionReview v1 this webhook can answer (HTTP ``status``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """The parts of ``AdmissionReview.request`` the engine uses."""

    uid: str
    operation: str
    kind: str
    namespace: str
    name: str
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None
    username: str = ""
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the webhook answers, and why."""

    allowed: bool
    #: Failures that refused the request (empty when allowed).
    denied: tuple[Finding[Misconfiguration], ...] = ()
    #: Failures returned as warnings (warn controls; deny controls in audit mode or already there before).
    warned: tuple[Finding[Misconfiguration], ...] = ()
    #: Failures an annotation exempted.
    exempted: tuple[Suppressed[Any], ...] = ()
    #: The denial message (``status.message``), "" when allowed.
    message: str = ""
    #: ``response.warnings``.
    warnings: tuple[str, ...] = ()
    #: Why the request was not checked ("" when it was).
    skipped: str = ""
    #: Image rules that refused the request.
    images_denied: tuple[ImageIssue, ...] = ()
    #: Image rules returned as warnings (warn rules; deny rules in audit mode or under break-glass).
    images_warned: tuple[ImageIssue, ...] = ()
    #: Every failure that denied, or would have denied in audit mode or without break-glass (one text each).
    reasons: tuple[str, ...] = ()
    #: The break-glass annotation's reason when it admitted what would be denied ("" otherwise).
    break_glass: str = ""


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _object(value: Any, field_name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadReview(f"request.{field_name} must be an object")
    return value


def parse_review(body: bytes, max_bytes: int) -> AdmissionRequest:
    """The request in an ``AdmissionReview`` v1 body; :class:`BadReview` for anything else."""
    if len(body) > max_bytes:
        raise BadReview(f"AdmissionReview of {len(body)} bytes is larger than the limit of {max_bytes} bytes")
    if not body.strip():
        raise BadReview("empty body: expected an AdmissionReview v1 JSON document")
    try:
        # orjson: a quarter of the json module's time on a pod's review, and stricter (no NaN, no
        # Infinity, nesting bounded at 1024; an integer past 64 bits is refused, none is in an object).
        doc = orjson.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadReview(f"body is not JSON: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(doc, dict):
        raise BadReview("expected an AdmissionReview object, got JSON " + type(doc).__name__)
    if doc.get("kind") != "AdmissionReview" or doc.get("apiVersion") != API_VERSION:
        raise BadReview(
            f"expected kind AdmissionReview, apiVersion {API_VERSION}; got kind {doc.get('kind')!r}, "
            f"apiVersion {doc.get('apiVersion')!r} (set admissionReviewVersions: [v1] in the webhook configuration)"
        )
    req = doc.get("request")
    if not isinstance(req, dict):
        raise BadReview("AdmissionReview without a request object")
    uid = _str(req.get("uid"))
    if not uid:
        raise BadReview("request.uid is missing or not a string")
    operation = _str(req.get("operation"))
    if operation not in OPERATIONS:
        raise BadReview(f"request.operation {req.get('operation')!r} is not one of {', '.join(OPERATIONS)}")
    kind = req.get("kind")
    kind_name = _str(kind.get("kind")) if isinstance(kind, dict) else ""
    obj = _object(req.get("object"), "object")
    old = _object(req.get("oldObject"), "oldObject")
    if operation in ("CREATE", "UPDATE") and obj is None:
        raise BadReview(f"request.object is required for {operation}")
    user = req.get("userInfo")
    return AdmissionRequest(
        uid=uid,
        operation=operation,
        kind=kind_name or _str((obj or {}).get("kind")),
        namespace=_str(req.get("namespace")),
        name=_str(req.get("name")),
        object=obj,
        old_object=old,
        username=_str(user.get("username")) if isinstance(user, dict) else "",
        dry_run=req.get("dryRun") is True,
    )


def _resource(obj: dict[str, Any], req: AdmissionRequest) -> Resource:
    """The object as the posture engine sees it; the request's namespace and name fill in what a CREATE's
    object may leave out (a pod from ``generateName``, an object posted without ``metadata.namespace``)."""
    meta = _meta(obj)
    if (req.namespace and not meta.get("namespace")) or (req.name and not meta.get("name")):
        meta = {**meta, "namespace": meta.get("namespace") or req.namespace, "name": meta.get("name") or req.name}
        obj = {**obj, "metadata": meta}
    if not obj.get("kind") and req.kind:
        obj = {**obj, "kind": req.kind}
    return Resource(obj, source=SOURCE)


def assess_object(
    obj: dict[str, Any], controls: Sequence[Control], policy: Policy, req: AdmissionRequest
) -> tuple[tuple[Finding[Misconfiguration], ...], tuple[Suppressed[Any], ...], tuple[str, ...]]:
    """Assess one object dict: (findings kept, findings exempted by annotation, warnings)."""
    r = _resource(obj, req)
    ev = evaluate([r], controls, policy.params, version=policy.kubernetes_version)
    meta = {(r.kind, r.namespace, r.name, r.source, r.document): (r.labels, r.annotations)}
    ex = apply_exemptions(ev.findings, (), meta, policy.known_ids)
    return ex.kept, ex.exempted, ex.warnings


def _key(f: Finding[Misconfiguration]) -> tuple[str, str]:
    return (f.detail.control_id, f.detail.path)


def _where(m: Misconfiguration) -> str:
    return (f"container {m.container}: " if m.container else "") + m.path


def _failure(m: Misconfiguration) -> str:
    """One failure for a person: control, field, what was found, what is expected, the fix."""
    fix = m.remediation.rstrip(". ")
    return f"{m.control_id} {m.title}: {_where(m)} is {m.actual}, expected {m.expected or 'another value'}; fix: {fix}."


def _image_failure(i: ImageIssue) -> str:
    return f"image check {i.rule}: {i.message}"


def _cut(text: str) -> str:
    return text if len(text) <= MAX_WARNING else text[: MAX_WARNING - 1] + "…"


def _warning(prefix: str, m: Misconfiguration) -> str:
    return _cut(f"{prefix}{m.control_id} {m.title}: {_where(m)}; fix: {m.remediation}")


def _display(req: AdmissionRequest, obj: dict[str, Any]) -> str:
    meta = _meta(obj)
    ns = _str(meta.get("namespace")) or req.namespace
    name = _str(meta.get("name")) or req.name or _str(meta.get("generateName"))
    return f"{req.kind or _str(obj.get('kind'))} {ns + '/' if ns else ''}{name}"


def request_images(req: AdmissionRequest) -> tuple[str, ...]:
    """The image references of the request's object (what the caller looks verdicts up for); none for
    a request :func:`decide` will not check."""
    if req.operation not in ("CREATE", "UPDATE") or req.object is None:
        return ()
    return tuple(dict.fromkeys(ci.image for ci in container_images(_resource(req.object, req))))


def _break_glass(obj: dict[str, Any], policy: Policy) -> str:
    """The break-glass reason on the object ("" when absent, blank, or the policy does not honour it)."""
    if not policy.break_glass:
        return ""
    annotations = _meta(obj).get("annotations")
    value = annotations.get(BREAK_GLASS) if isinstance(annotations, dict) else None
    return " ".join(value.split())[:MAX_WARNING] if isinstance(value, str) else ""


def decide(
    req: AdmissionRequest, policy: Policy, verdicts: Mapping[str, StoredVerdict | None] | None = None
) -> Verdict:
    """The verdict on one request. ``verdicts``: the stored verdict of each image of the object (None
    for an image never scanned); None when there is no store (the image rules that need it are skipped)."""
    if req.operation not in ("CREATE", "UPDATE") or req.object is None:
        return Verdict(allowed=True, skipped=f"operation {req.operation} is not checked")
    obj = req.object
    meta = _meta(obj)
    namespace = _str(meta.get("namespace")) or req.namespace
    if namespace in policy.excluded_namespaces:
        return Verdict(allowed=True, skipped=f"namespace {namespace} is excluded by the policy")

    kept, exempted, notes = assess_object(obj, policy.controls, policy, req)
    deny_ids = {c.id for c in policy.deny}
    deny = [f for f in kept if f.detail.control_id in deny_ids]
    warn_only = [f for f in kept if f.detail.control_id not in deny_ids]

    existing: list[Finding[Misconfiguration]] = []
    if req.operation == "UPDATE" and req.old_object is not None and policy.existing_violations_on_update == "warn":
        old_kept, _, _ = assess_object(req.old_object, policy.deny, policy, req)
        before = {_key(f) for f in old_kept}
        existing = [f for f in deny if _key(f) in before]
        deny = [f for f in deny if _key(f) not in before]

    issues = judge_images(container_images(_resource(obj, req)), verdicts, policy.images)
    image_deny = [i for i in issues if i.action == "deny"]
    image_warn = [i for i in issues if i.action != "deny"]

    failures = [_failure(f.detail) for f in deny] + [_image_failure(i) for i in image_deny]
    # Break-glass counts as used only when it admits what enforce mode would deny.
    glass = _break_glass(obj, policy) if failures and policy.mode != "audit" else ""
    warnings: list[str] = []
    if policy.mode == "audit" or glass:
        prefix = "[audit: would deny] " if policy.mode == "audit" else "[break-glass: would deny] "
        warnings.extend(_warning(prefix, f.detail) for f in deny)
        warnings.extend(_cut(prefix + _image_failure(i)) for i in image_deny)
        audited, audited_images, deny, image_deny = deny, image_deny, [], []
    else:
        audited, audited_images = [], []
    warnings.extend(_warning("[already in oldObject] ", f.detail) for f in existing)
    warnings.extend(_warning("", f.detail) for f in warn_only)
    warnings.extend(_cut(_image_failure(i)) for i in image_warn)
    warnings.extend(notes)
    warnings = list(dict.fromkeys(warnings))
    if len(warnings) > MAX_LISTED:
        warnings = [*warnings[: MAX_LISTED - 1], f"… and {len(warnings) - MAX_LISTED + 1} more warnings"]

    message = ""
    if deny or image_deny:
        listed = [f"({i}) {text}" for i, text in enumerate(failures[:MAX_LISTED], 1)]
        more = f" … and {len(failures) - MAX_LISTED} more" if len(failures) > MAX_LISTED else ""
        parts = []
        if n := len({f.detail.control_id for f in deny}):
            parts.append(f"{n} control{'s' if n != 1 else ''}")
        if image_deny:
            parts.append(f"{len(image_deny)} image check{'s' if len(image_deny) != 1 else ''}")
        message = (
            f"garrison denied {req.operation} of {_display(req, obj)}: {' and '.join(parts)} failed "
            f"(policy {policy.origin}): " + " ".join(listed) + more
        )
    return Verdict(
        allowed=not (deny or image_deny),
        denied=tuple(deny),
        warned=(*audited, *existing, *warn_only),
        exempted=exempted,
        message=message,
        warnings=tuple(warnings),
        images_denied=tuple(image_deny),
        images_warned=(*audited_images, *image_warn),
        reasons=tuple(failures),
        break_glass=glass,
    )


def response(uid: str, verdict: Verdict) -> dict[str, Any]:
    """The ``AdmissionReview`` v1 answering request ``uid``."""
    resp: dict[str, Any] = {"uid": uid, "allowed": verdict.allowed}
    if not verdict.allowed:
        resp["status"] = {"code": 403, "reason": "Forbidden", "message": verdict.message}
    if verdict.warnings:
        resp["warnings"] = list(verdict.warnings)
    audit: dict[str, str] = {}
    if verdict.denied:
        audit["denied"] = ",".join(sorted({f.detail.control_id for f in verdict.denied}))
    if verdict.exempted:
        audit["exempted"] = ",".join(sorted({str(s.finding.rule.id) for s in verdict.exempted}))
    if verdict.images_denied:
        audit["images-denied"] = ",".join(sorted({i.rule for i in verdict.images_denied}))
    if verdict.break_glass:
        audit["break-glass"] = verdict.break_glass
    if verdict.skipped:
        audit["skipped"] = verdict.skipped
    if audit:
        resp["auditAnnotations"] = audit
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": resp}


def handle(
    body: bytes, policy: Policy, verdicts: Mapping[str, StoredVerdict | None] | None = None
) -> tuple[AdmissionRequest, Verdict, dict[str, Any]]:
    """Bytes of an AdmissionReview → (request, verdict, response document), without a store (the image
    rules that need one are skipped unless ``verdicts`` is given). Raises :class:`BadReview`."""
    req = parse_review(body, policy.max_request_bytes)
    verdict = decide(req, policy, verdicts)
    return req, verdict, response(req.uid, verdict)
