"""The posture service: sources → resources → engine → exemptions → suppression → score → report.

``assess(sources, options)`` is the one function the CLI, the Python API and the server call. The
selection (``--framework``, ``--control``), the exemptions file and the ignore file are checked before
any source is read, so a typo fails at once (exit 2 or 5) and never as an empty report that passes a
gate. Nothing here prints or exits.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.errors import UsageError
from garrison.findings.exemptions import ObjectMeta, apply_exemptions, load_exemptions
from garrison.findings.suppress import build_options, suppress
from garrison.model.common import Finding, Suppressed
from garrison.model.posture import Misconfiguration
from garrison.posture.controls import Control, builtin_controls, parse_version, select
from garrison.posture.engine import evaluate
from garrison.posture.inputs import Loaded, load_source
from garrison.posture.report import PostureReport
from garrison.posture.resources import Resource
from garrison.posture.score import compute


@dataclass(frozen=True)
class PostureOptions:
    """What to assess and what to keep of the findings (the CLI's flags)."""

    #: ``pss-baseline``, ``pss-restricted`` (includes baseline), ``cis-kubernetes``, ``cis-docker``, ``nsa``,
    #: ``mitre``, ``garrison``; empty = every control.
    frameworks: tuple[str, ...] = ()
    #: Control ids to run (narrows the frameworks' controls); empty = all of them.
    controls: tuple[str, ...] = ()
    #: ``--severity`` (``HIGH,CRITICAL`` or ``HIGH+``): a view filter, the score still counts the rest.
    severity: str = ""
    exemptions_file: Path | None = None
    ignore_file: Path | None = None
    #: Control parameters: ``{"trusted_registries": [...]}`` for every control that declares the name,
    #: ``{"GAR-WL-018": {...}}`` for one control.
    params: dict[str, Any] = field(default_factory=dict)
    #: Pod security version (``latest`` = v1.37, or ``v1.N``).
    kubernetes_version: str = "latest"
    #: Extra control files (another family, your own controls).
    control_files: tuple[Path, ...] = ()
    #: Options for live sources (cluster: namespace filter, kubeconfig…); ``readahead``: a
    #: :class:`~garrison.posture.readahead.ReadAhead` already reading the local sources.
    source_options: dict[str, Any] = field(default_factory=dict)
    #: The day expiries are judged against (tests pin it).
    today: dt.date | None = None


def _all_controls(options: PostureOptions) -> tuple[Control, ...]:
    from garrison.posture.controls import load_controls

    controls = builtin_controls()
    if options.control_files:
        extra = load_controls(options.control_files)
        clash = {c.id for c in extra} & {c.id for c in controls}
        if clash:
            raise UsageError(f"control {sorted(clash)[0]} is already a built-in control")
        controls = controls + extra
    return controls


_OWNER_KINDS = frozenset(
    {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController"}
)


def _drop_owned(resources: list[Resource]) -> tuple[list[Resource], int]:
    """Objects whose controlling owner is in the input are assessed through that owner (a snapshot has
    the Deployment, its ReplicaSets and their Pods: one finding, on the Deployment)."""
    present = {(r.kind, r.namespace, r.name) for r in resources if r.kind in _OWNER_KINDS}
    if not present:
        return resources, 0
    kept: list[Resource] = []
    dropped = 0
    for r in resources:
        owners = r.metadata.get("ownerReferences")
        if r.is_workload and isinstance(owners, list):
            owned = any(
                isinstance(o, dict)
                and o.get("controller")
                and (str(o.get("kind")), r.namespace, str(o.get("name"))) in present
                for o in owners
            )
            if owned:
                dropped += 1
                continue
        kept.append(r)
    return kept, dropped


def _meta(
    resources: Sequence[Resource], findings: Sequence[Finding[Misconfiguration]]
) -> dict[tuple[str, str, str, str, int], ObjectMeta]:
    """Labels and annotations of the objects that have findings (the only ones exemptions look at)."""
    wanted = {(o.kind, o.namespace, o.name, o.source, o.document) for o in (f.detail.object for f in findings)}
    out: dict[tuple[str, str, str, str, int], ObjectMeta] = {}
    for r in resources:
        key = (r.kind, r.namespace, r.name, r.source, r.document)
        if key in wanted:
            out[key] = (r.labels, r.annotations)
    return out


def _sort_key(f: Finding[Any]) -> tuple[Any, ...]:
    d = f.detail
    if isinstance(d, Misconfiguration):
        return (-int(f.severity), d.object.display(), d.control_id, d.path)
    return (-int(f.severity), f.rule.id, f.title)


def assess(sources: Sequence[str], options: PostureOptions | None = None) -> PostureReport:
    """Assess every source against the selected controls."""
    options = options or PostureOptions()
    if not sources:
        raise UsageError("posture: name at least one SOURCE (a file, a folder, -, snapshot:FILE, cluster, docker)")
    version = parse_version(options.kubernetes_version)
    every = _all_controls(options)
    controls = select(every, options.frameworks, options.controls)
    known_ids = [c.id for c in every]
    exemptions = load_exemptions(options.exemptions_file, known_ids) if options.exemptions_file else ()
    suppress_opts = build_options(severity=options.severity, ignore_file=options.ignore_file, today=options.today)

    loaded = Loaded()
    # The CLI may have started reading the local sources in a second process (posture/readahead.py):
    # what it did not read is read here, in order, as without it.
    ahead = options.source_options.get("readahead")
    for src in sources:
        got = ahead.take(src) if ahead is not None else None
        loaded.extend(got if got is not None else load_source(src, options.source_options))
    resources, owned = _drop_owned(loaded.resources)

    ev = evaluate(resources, controls, options.params, version=version)
    ex = apply_exemptions(ev.findings, exemptions, _meta(resources, ev.findings), known_ids, options.today)
    sup = suppress(ex.kept, suppress_opts)
    suppressed: tuple[Suppressed[Any], ...] = (*ex.exempted, *sup.suppressed)
    score = compute(controls, ev.applicable, sup.kept, suppressed)

    kinds = Counter(r.kind for r in resources)
    wanted = frozenset().union(*(c.kinds for c in controls))
    assessed_kinds = {r.kind for r in resources if r.matches_kind(wanted)}
    unassessed = {k: n for k, n in kinds.items() if k not in assessed_kinds}
    return PostureReport(
        target=" ".join(sources),
        findings=tuple(sorted(sup.kept, key=_sort_key)),
        suppressed=tuple(sorted(suppressed, key=lambda s: _sort_key(s.finding))),
        warnings=(*loaded.warnings, *ex.warnings),
        score=score,
        resources=dict(kinds),
        unassessed_kinds=unassessed,
        owned_skipped=owned,
        documents=loaded.documents,
        files=loaded.files,
        skipped_documents=loaded.skipped,
        controls=tuple(c.id for c in controls),
        frameworks=tuple(options.frameworks),
        kubernetes_version="latest" if options.kubernetes_version in ("", "latest") else f"v{version[0]}.{version[1]}",
    )
