"""The admission policy: which posture controls deny, which only warn, what the images' stored verdicts
do (:class:`~garrison.admission.images.ImagePolicy`), whether the break-glass annotation is honoured, and
which namespaces are left alone.

A policy is a YAML file validated by ``rules/admission/schema.json`` and compiled once, at start, into a
:class:`Policy` holding the compiled controls: a typo in a framework or control id, an unknown key or a
bad value is a :class:`~garrison.errors.UsageError` before the webhook answers its first request. The
packaged default (``rules/admission/policy.yaml``) denies the Pod Security Standards baseline and warns
about the rest of restricted, as Kubernetes' pod-security admission does with ``enforce: baseline`` and
``warn: restricted``; it warns about images with critical vulnerabilities that have a fix, with secrets,
or never scanned. A file written before the ``images`` key existed keeps its meaning: no image rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

from garrison.admission.images import ImagePolicy
from garrison.errors import UsageError
from garrison.posture.controls import Control, builtin_controls, parse_version, select

#: Largest AdmissionReview accepted by default: etcd stores objects up to 1.5 MiB and an UPDATE review
#: carries two of them, plus the envelope.
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024

_ROOT = importlib_resources.files("garrison.rules") / "admission"

#: The annotation that admits a request the policy would deny, recorded with its value as the reason.
BREAK_GLASS = "garrison.dev/break-glass"
#: Namespaces left alone when the policy names none: Kubernetes' own and garrison's.
DEFAULT_EXCLUDED = ("kube-system", "garrison")


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
    excluded_namespaces: frozenset[str] = frozenset(DEFAULT_EXCLUDED)
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
    #: What the images' stored verdicts and registries do.
    images: ImagePolicy = field(default_factory=ImagePolicy)
    #: Whether :data:`BREAK_GLASS` on the object admits what would be denied.
    break_glass: bool = True

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
    images = _images(data.get("images") or {}, where)
    return Policy(
        deny=deny,
        warn=warn,
        mode=str(data.get("mode") or "enforce"),
        excluded_namespaces=frozenset(exclude.get("namespaces", DEFAULT_EXCLUDED)),
        kubernetes_version=parse_version(str(data.get("kubernetesVersion") or "latest")),
        params=dict(data.get("params") or {}),
        existing_violations_on_update=str(data.get("existingViolationsOnUpdate") or "deny"),
        max_request_bytes=int(data.get("maxRequestBytes") or DEFAULT_MAX_REQUEST_BYTES),
        origin=where,
        known_ids=frozenset(c.id for c in every),
        images=images,
        break_glass=bool(data.get("breakGlass", True)),
    )


def _images(raw: dict[str, Any], where: str) -> ImagePolicy:
    """The ``images`` section (already schema-checked)."""
    trusted = frozenset(str(r) for r in raw.get("trustedRegistries") or ())
    p = ImagePolicy(
        critical_with_fix=str(raw.get("criticalWithFix", "allow")),
        secrets=str(raw.get("secrets", "allow")),
        untrusted_registry=str(raw.get("untrustedRegistry", "allow")),
        not_scanned=str(raw.get("notScanned", "allow")),
        trusted_registries=trusted,
    )
    if p.untrusted_registry != "allow" and not trusted:
        raise UsageError(
            f"admission policy {where}: images/untrustedRegistry is {p.untrusted_registry} but "
            "images/trustedRegistries is empty (every image would fail): name the trusted registries"
        )
    return p


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
