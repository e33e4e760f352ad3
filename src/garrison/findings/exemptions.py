"""Exemptions: accepted posture risks, per control and namespace, resource or label selector, with a
reason and an expiry — from a file, and from annotations on the objects themselves. An exempted
finding is kept aside as :class:`~garrison.model.common.Suppressed` with ``Suppression(by="exemption")``
(reported as exempted, never dropped).

Exemptions file (YAML)::

    exemptions:
      - controls: [GAR-PSS-002, GAR-PSS-005]   # or control: ID; "*" = every control
        namespaces: [kube-system]              # optional
        resources: ["DaemonSet/kube-system/calico-*"]   # optional globs on Kind/namespace/name
                                               # (Kind/name when cluster-scoped)
        selector:                              # optional: a label selector on the object's labels
          matchLabels: {k8s-app: calico-node}
        reason: the CNI needs the host network # required
        expires: 2027-06-30                    # optional: the exemption stops applying after this day
        by: platform-team@example.com          # optional

When several conditions are given, all must match. On an object::

    metadata:
      annotations:
        garrison.dev/exempt: GAR-PSS-002,GAR-WL-010
        garrison.dev/exempt-reason: node exporter reads host metrics

An unknown control id in the file is an error (a typo would otherwise exempt nothing and look fine);
in an annotation it is a warning naming the object. An expired exemption is reported as a warning
and the finding comes back.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.errors import InputError
from garrison.findings.suppress import as_list, load_yaml, parse_date
from garrison.model.common import Finding, Suppressed, Suppression
from garrison.model.posture import Misconfiguration, ObjectRef
from garrison.posture.resources import selector_matches

ANNOTATION = "garrison.dev/exempt"
REASON_ANNOTATION = "garrison.dev/exempt-reason"


@dataclass(frozen=True, slots=True)
class Exemption:
    """One accepted risk."""

    #: Control ids (``*`` = every control).
    controls: tuple[str, ...]
    reason: str
    namespaces: tuple[str, ...] = ()
    #: fnmatch globs on ``Kind/namespace/name`` (``Kind/name`` for cluster-scoped objects).
    resources: tuple[str, ...] = ()
    #: A label selector (``matchLabels``/``matchExpressions``), or None.
    selector: Mapping[str, Any] | None = None
    expires: dt.date | None = None
    decided_by: str = ""
    #: Where it is written (``FILE exemption N`` or ``annotation on Kind/ns/name``).
    origin: str = ""

    def active(self, today: dt.date) -> bool:
        return self.expires is None or today <= self.expires


#: What the exemption step knows of each object: (labels, annotations), keyed by :func:`object_key`.
ObjectMeta = tuple[Mapping[str, str], Mapping[str, str]]


def object_key(o: ObjectRef) -> tuple[str, str, str, str, int]:
    """The key of an object's metadata in the table :func:`apply_exemptions` receives."""
    return (o.kind, o.namespace, o.name, o.source, o.document)


@dataclass(frozen=True, slots=True)
class ExemptionResult:
    kept: tuple[Finding[Any], ...]
    exempted: tuple[Suppressed[Any], ...]
    warnings: tuple[str, ...] = ()


def parse_exemptions(text: str, origin: str, known_controls: Iterable[str]) -> tuple[Exemption, ...]:
    """An exemptions file's YAML. Raises :class:`InputError` naming the file and entry."""
    known = set(known_controls)
    data = load_yaml(text, origin)
    if data is None:
        return ()
    if not isinstance(data, dict) or not isinstance(data.get("exemptions", []), list):
        raise InputError(f"{origin}: expected a mapping with an 'exemptions' list")
    out: list[Exemption] = []
    for i, entry in enumerate(data.get("exemptions") or []):
        where = f"{origin} exemption {i + 1}"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: must be a mapping")
        controls = as_list(entry.get("control")) + as_list(entry.get("controls"))
        if not controls:
            raise InputError(f"{where}: needs 'controls' (control ids, or \"*\")")
        for cid in controls:
            if cid != "*" and cid not in known:
                import difflib

                near = difflib.get_close_matches(cid, sorted(known), n=1)
                hint = f" (did you mean {near[0]}?)" if near else ""
                raise InputError(f"{where}: unknown control {cid!r}{hint}")
        reason = str(entry.get("reason") or "").strip()
        if not reason:
            raise InputError(f"{where}: needs a 'reason'")
        selector = entry.get("selector")
        check_selector(selector, f"{where}: selector")
        out.append(
            Exemption(
                controls=controls,
                reason=reason,
                namespaces=as_list(entry.get("namespace")) + as_list(entry.get("namespaces")),
                resources=as_list(entry.get("resource")) + as_list(entry.get("resources")),
                selector=selector,
                expires=parse_date(entry.get("expires"), where),
                decided_by=str(entry.get("by") or ""),
                origin=where,
            )
        )
    return tuple(out)


def load_exemptions(path: Path, known_controls: Iterable[str]) -> tuple[Exemption, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read exemptions file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_exemptions(text, str(path), known_controls)


def _applies(e: Exemption, m: Misconfiguration, labels: Mapping[str, str]) -> bool:
    if "*" not in e.controls and m.control_id not in e.controls:
        return False
    o = m.object
    if e.namespaces and o.namespace not in e.namespaces:
        return False
    if e.resources and not any(fnmatch.fnmatchcase(o.display(), g) for g in e.resources):
        return False
    return e.selector is None or selector_matches(e.selector, labels)


@dataclass
class _AnnotationCache:
    known: frozenset[str]
    warnings: list[str] = field(default_factory=list)
    seen: dict[tuple[str, str, str, str, int], tuple[frozenset[str], str]] = field(default_factory=dict)

    def get(
        self, key: tuple[str, str, str, str, int], o: ObjectRef, annotations: Mapping[str, str]
    ) -> tuple[frozenset[str], str]:
        found = self.seen.get(key)
        if found is None:
            raw = annotations.get(ANNOTATION, "")
            ids = {x.strip() for x in raw.split(",") if x.strip()}
            unknown = sorted(i for i in ids if i not in self.known and i != "*")
            if unknown:
                self.warnings.append(
                    f"{o.display()}: annotation {ANNOTATION} names unknown control(s) {', '.join(unknown)}; ignored"
                )
            if ids and not annotations.get(REASON_ANNOTATION, "").strip():
                self.warnings.append(f"{o.display()}: annotation {ANNOTATION} without {REASON_ANNOTATION}")
            found = (frozenset(ids - set(unknown)), annotations.get(REASON_ANNOTATION, "").strip())
            self.seen[key] = found
        return found


def apply_exemptions(
    findings: Iterable[Finding[Any]],
    exemptions: Iterable[Exemption],
    meta: Mapping[tuple[str, str, str, str, int], ObjectMeta],
    known_controls: Iterable[str],
    today: dt.date | None = None,
) -> ExemptionResult:
    """Split misconfiguration findings into kept and exempted (other kinds pass through untouched).
    ``meta`` gives each object's labels and annotations (for selectors and ``garrison.dev/exempt``)."""
    today = today or dt.date.today()
    rules = list(exemptions)
    active = [e for e in rules if e.active(today)]
    warnings = [
        f"{e.origin}: expired on {e.expires.isoformat()}, no longer applied"
        for e in rules
        if not e.active(today) and e.expires is not None
    ]
    cache = _AnnotationCache(frozenset(known_controls))
    kept: list[Finding[Any]] = []
    exempted: list[Suppressed[Any]] = []
    for f in findings:
        m = f.detail
        if not isinstance(m, Misconfiguration):
            kept.append(f)
            continue
        key = object_key(m.object)
        labels, annotations = meta.get(key, ({}, {}))
        why: Suppression | None = None
        if annotations.get(ANNOTATION):
            ids, reason = cache.get(key, m.object, annotations)
            if m.control_id in ids or "*" in ids:
                why = Suppression(
                    "exemption",
                    reason or "exempted by annotation",
                    origin=f"annotation {ANNOTATION} on {m.object.display()}",
                )
        if why is None:
            for e in active:
                if _applies(e, m, labels):
                    why = Suppression(
                        "exemption",
                        e.reason,
                        decided_by=e.decided_by,
                        expires=e.expires.isoformat() if e.expires else "",
                        origin=e.origin,
                    )
                    break
        if why is None:
            kept.append(f)
        else:
            exempted.append(Suppressed(f, why))
    return ExemptionResult(tuple(kept), tuple(exempted), tuple(warnings + cache.warnings))


_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def check_selector(sel: Any, where: str = "selector") -> None:
    """A label selector as Kubernetes defines it, or None; InputError otherwise. Strict on purpose: a
    selector with a mistyped key (``matchLabel``) or none at all would select every object and so
    exempt the whole cluster."""
    if sel is None:
        return
    if not isinstance(sel, dict):
        raise InputError(f"{where}: a label selector (matchLabels, matchExpressions)")
    unknown = set(sel) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise InputError(f"{where}: unknown key {sorted(map(str, unknown))[0]!r} (matchLabels, matchExpressions)")
    labels = sel.get("matchLabels", {})
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise InputError(f"{where}.matchLabels: a mapping of label names to values (strings)")
    exprs = sel.get("matchExpressions", [])
    if not isinstance(exprs, list):
        raise InputError(f"{where}.matchExpressions: a list")
    for i, e in enumerate(exprs):
        at = f"{where}.matchExpressions[{i}]"
        if not isinstance(e, dict) or not isinstance(e.get("key"), str) or e.get("operator") not in _OPERATORS:
            raise InputError(f"{at}: {{key, operator ({', '.join(_OPERATORS)}), values}}")
        values = e.get("values", [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InputError(f"{at}.values: a list of strings")
        if (e["operator"] in ("In", "NotIn")) != bool(values):
            raise InputError(f"{at}: In and NotIn need values, Exists and DoesNotExist take none")
    if not labels and not exprs:
        raise InputError(f"{where}: an empty selector would select every object; leave it out instead")
