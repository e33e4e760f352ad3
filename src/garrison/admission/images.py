"""The images of an admitted object judged by what garrison already knows about them: the verdict its
store holds from the last scan (critical vulnerabilities with a fix, secrets), whether it was ever
scanned, and whether its registry is trusted. Pure: the caller looks the verdicts up (the server, in
its store) and passes them in; with no store at all (``garrison admission serve``, ``review``) only the
registry rule, which needs nothing but the reference, is judged.

Each rule is ``allow``, ``warn`` or ``deny`` by policy (:class:`ImagePolicy`); what a denial says names
the container, the image, the numbers and what to do about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from garrison.posture.expr import split_image
from garrison.posture.resources import Resource

ACTIONS = ("allow", "warn", "deny")

#: The rules, by the name a policy file and a decision use.
CRITICAL_WITH_FIX = "criticalWithFix"
SECRETS = "secrets"
UNTRUSTED_REGISTRY = "untrustedRegistry"
NOT_SCANNED = "notScanned"
RULES = (CRITICAL_WITH_FIX, SECRETS, UNTRUSTED_REGISTRY, NOT_SCANNED)


class StoredVerdict(Protocol):
    """What the store says of one image's last scan (``garrison.services.registry.ImageVerdict``)."""

    @property
    def digest(self) -> str: ...
    @property
    def scanned_at(self) -> str: ...
    @property
    def critical(self) -> int: ...
    @property
    def high(self) -> int: ...
    @property
    def critical_with_fix(self) -> int: ...
    @property
    def secrets(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ImagePolicy:
    """What each image rule does (``allow`` turns it off)."""

    critical_with_fix: str = "allow"
    secrets: str = "allow"
    untrusted_registry: str = "allow"
    not_scanned: str = "allow"
    #: Registries (``host[:port]``, ``docker.io`` for Docker Hub) images may come from.
    trusted_registries: frozenset[str] = frozenset()

    def action(self, rule: str) -> str:
        return {
            CRITICAL_WITH_FIX: self.critical_with_fix,
            SECRETS: self.secrets,
            UNTRUSTED_REGISTRY: self.untrusted_registry,
            NOT_SCANNED: self.not_scanned,
        }[rule]

    @property
    def needs_verdicts(self) -> bool:
        """Whether a rule reads the store (so the caller should look the verdicts up)."""
        return any(a != "allow" for a in (self.critical_with_fix, self.secrets, self.not_scanned))


@dataclass(frozen=True, slots=True)
class ContainerImage:
    """One container's image in the object."""

    #: The container's JSON path (``spec.template.spec.containers[0]``).
    path: str
    container: str
    image: str


@dataclass(frozen=True, slots=True)
class ImageIssue:
    """One image rule that did not pass."""

    rule: str
    #: ``warn`` or ``deny``.
    action: str
    container: str
    image: str
    #: The whole explanation: what was found and what to do.
    message: str


def container_images(resource: Resource) -> tuple[ContainerImage, ...]:
    """Every container's image (containers, init and ephemeral containers) of a pod or pod template; an
    object without one has none."""
    out = []
    for c in resource.containers():
        image = c.spec.get("image")
        if isinstance(image, str) and image:
            out.append(ContainerImage(c.path, c.name, image))
    return tuple(out)


def registry_of(image: str) -> str:
    """The registry an image is pulled from, as the container runtime reads the reference."""
    return split_image(image)[0]


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def judge_images(
    images: tuple[ContainerImage, ...],
    verdicts: Mapping[str, StoredVerdict | None] | None,
    policy: ImagePolicy,
) -> tuple[ImageIssue, ...]:
    """The issues of ``images``. ``verdicts`` maps each image reference to its stored verdict (None: never
    scanned); ``verdicts`` None means there is no store, and the rules that need one are not judged."""
    issues: list[ImageIssue] = []

    def add(rule: str, ci: ContainerImage, text: str) -> None:
        action = policy.action(rule)
        if action != "allow":
            issues.append(ImageIssue(rule, action, ci.container, ci.image, f"container {ci.container}: {text}"))

    for ci in images:
        if policy.untrusted_registry != "allow":
            registry = registry_of(ci.image)
            if registry not in policy.trusted_registries:
                trusted = ", ".join(sorted(policy.trusted_registries))
                add(
                    UNTRUSTED_REGISTRY,
                    ci,
                    f"image {ci.image} is from registry {registry}, which is not trusted (trusted: {trusted}); "
                    "fix: copy the image into a trusted registry and deploy it from there.",
                )
        if verdicts is None or not policy.needs_verdicts:
            continue
        v = verdicts.get(ci.image)
        if v is None:
            add(
                NOT_SCANNED,
                ci,
                f"image {ci.image} was never scanned by garrison; fix: push it to a registry garrison watches "
                "or request a scan (POST /api/v1/scans), then apply again.",
            )
            continue
        scanned = f"(digest {v.digest}, scanned {v.scanned_at})"
        criticals = _count(v.critical_with_fix, "critical vulnerability", "critical vulnerabilities")
        secrets = _count(v.secrets, "secret", "secrets")
        if v.critical_with_fix > 0:
            add(
                CRITICAL_WITH_FIX,
                ci,
                f"image {ci.image} has {criticals} with a fix "
                f"available {scanned}; fix: rebuild it on the fixed package versions (GET "
                f"/api/v1/images/{v.digest}/findings lists them) and deploy the new image.",
            )
        if v.secrets > 0:
            add(
                SECRETS,
                ci,
                f"image {ci.image} contains {secrets} {scanned}; fix: remove them from the "
                f"image (GET /api/v1/images/{v.digest}/findings names the files), rotate them, and rebuild.",
            )
    return tuple(issues)
