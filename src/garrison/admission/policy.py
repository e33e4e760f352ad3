"""The admission policy: which posture controls deny, which only warn, which namespaces are left alone.

A policy is a YAML file validated by ``rules/admission/schema.json`` and compiled once, at start, into a
:class:`Policy` holding the compiled controls: a typo in a framework or control id, an unknown key or a
bad value is a :class:`~garrison.errors.UsageError` before the webhook answers its first request. The
packaged default (``rules/admission/policy.yaml``) denies the Pod Security Standards baseline and warns
about the rest of restricted, as Kubernetes' pod-security admission does with ``enforce: baseline`` and
``warn: restricted``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

from garrison.errors import UsageError
from garrison.posture.controls import Control, builtin_controls, parse_version, select

#: Largest AdmissionReview accepted by default: etcd stores objects up to 1.5 MiB and an UPDATE review
#: carries two of them, plus the envelope.
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024

_ROOT = importlib_resources.files("garrison.rules") / "admission"


@dataclass(frozen=True, slots=True)
class Policy:
    """A compiled policy."""

    #: Controls whose failure refuses the request (in ``enforce`` mode).
    deny: tuple[Control, ...]
    #: Controls whose failure is only a warning (never one of ``deny``).
    warn: tuple[Control, ...]
    #: ``enforce`` or ``audit`` (would-be denials become warnings).
    mode: str = "enforce"
    #: Namespaces never checked.
    excluded_namespaces: frozenset[str] = frozenset({"kube-system"})
    #: Pod security checks of this Kubernetes version.
    kubernetes_version: tuple[int, int] = (1, 37)
    #: Control parameters (as ``garrison posture``'s ``params``).
    params: dict[str, Any] = field(default_factory=dict)
    #: ``deny`` or ``warn``: what becomes of a failure the old object of an UPDATE already had.
    existing_violations_on_update: str = "deny"
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    #: Where the policy came from (a file name, or ``default``), for messages.
    origin: str = "default"
    #: Every control id known (annotation exemptions may name any of them).
    known_ids: frozenset[str] = frozenset()

    @property
    def controls(self) -> tuple[Control, ...]:
        return self.deny + self.warn


def schema() -> dict[str, Any]:
    """The JSON schema of a policy file."""
    data: dict[str, Any] = json.loads((_ROOT / "schema.json").read_text(encoding="utf-8"))
    return data


def _validate(data: Any, where: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        err = errors[0]
        loc = "/".join(map(str, err.absolute_path)) or "(top level)"
        raise UsageError(f"admission policy {where}: {loc}: {err.message}")


def _selection(every: tuple[Control, ...], raw: Any, where: str) -> tuple[Control, ...]:
    """The union of the named frameworks' controls and the named controls."""
    raw = raw or {}
    frameworks = tuple(raw.get("frameworks") or ())
    ids = tuple(raw.get("controls") or ())
    try:
        picked = list(select(every, frameworks)) if frameworks else []
        if ids:
            picked.extend(select(every, (), ids))
    except UsageError as exc:
        raise UsageError(f"admission policy {where}: {exc}") from None
    unique: dict[str, Control] = {}
    for c in picked:
        unique.setdefault(c.id, c)
    return tuple(unique.values())


def compile_policy(data: Any, where: str) -> Policy:
    """A parsed policy document → :class:`Policy` (:class:`UsageError` naming the first problem)."""
    _validate(data, where)
    every = builtin_controls()
    deny = _selection(every, data.get("deny"), where)
    deny_ids = {c.id for c in deny}
    warn = tuple(c for c in _selection(every, data.get("warn"), where) if c.id not in deny_ids)
    if not deny and not warn:
        raise UsageError(f"admission policy {where}: selects no control (name frameworks or controls in deny or warn)")
    exclude = data.get("exclude") or {}
    return Policy(
        deny=deny,
        warn=warn,
        mode=str(data.get("mode") or "enforce"),
        excluded_namespaces=frozenset(exclude.get("namespaces", ["kube-system"])),
        kubernetes_version=parse_version(str(data.get("kubernetesVersion") or "latest")),
        params=dict(data.get("params") or {}),
        existing_violations_on_update=str(data.get("existingViolationsOnUpdate") or "deny"),
        max_request_bytes=int(data.get("maxRequestBytes") or DEFAULT_MAX_REQUEST_BYTES),
        origin=where,
        known_ids=frozenset(c.id for c in every),
    )


def parse_policy(text: str, where: str) -> Policy:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"admission policy {where}: not valid YAML ({' '.join(str(exc).split())})") from None
    if data is None:
        data = {}
    return compile_policy(data, where)


def load_policy(path: Path | None = None) -> Policy:
    """The policy in ``path``, or the packaged default."""
    if path is None:
        return default_policy()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read admission policy {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_policy(text, str(path))


@cache
def default_policy() -> Policy:
    """The packaged default policy (compiled once per process)."""
    return parse_policy((_ROOT / "policy.yaml").read_text(encoding="utf-8"), "default")
