"""What every result of every pillar shares: severity, typed ids, the subject, the finding envelope and
suppressions.

A vulnerability, a leaked secret, a misconfiguration and a runtime alert are all a :class:`Finding`: a
fixed envelope (kind, rule, subject, severity, evidence, fingerprint, timestamps) around a payload of its
own kind (``detail``: :class:`~garrison.model.vuln.Vulnerability`, :class:`~garrison.model.secret.Secret`,
…). Suppression, de-duplication, the CI gate, the renderers and the store work on the envelope alone;
only a renderer that wants kind-specific columns looks into ``detail``.

Pure data: no I/O, no imports from other garrison packages.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any, Generic, NewType, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterable

#: The stable identity of a finding within its artifact or cluster (see :attr:`Finding.fingerprint`).
FindingId = NewType("FindingId", str)
#: A rule, control or advisory id: ``CVE-2024-3651``, ``aws-access-key-id``, ``KSV001``…
RuleId = NewType("RuleId", str)
#: A content digest, ``sha256:<64 hex>`` (an image manifest, a layer's diff_id…).
Digest = NewType("Digest", str)
#: A registered cluster's id (the server assigns it; a CLI run uses the kubeconfig context name).
ClusterId = NewType("ClusterId", str)


class Severity(IntEnum):
    """Ordered severities; comparisons (``>=``) implement ``--severity HIGH+`` style thresholds."""

    UNKNOWN = 0
    NEGLIGIBLE = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Parse a severity name case-insensitively. The synonyms are the ones advisory sources and
        rule sets use: "moderate" (GitHub), "important" (Red Hat), "none" (CVSS), "unimportant" (Debian),
        and Falco's priorities (emergency … debug), so one parser serves every pillar."""
        t = text.strip().upper()
        t = _SEVERITY_ALIASES.get(t, t)
        try:
            return cls[t]
        except KeyError:
            raise ValueError(f"unknown severity {text!r}") from None


_SEVERITY_ALIASES = {
    "MODERATE": "MEDIUM",
    "IMPORTANT": "HIGH",
    "NONE": "NEGLIGIBLE",
    "UNIMPORTANT": "NEGLIGIBLE",
    "EMERGENCY": "CRITICAL",
    "ALERT": "CRITICAL",
    "ERROR": "HIGH",
    "WARNING": "MEDIUM",
    "NOTICE": "LOW",
    "INFORMATIONAL": "NEGLIGIBLE",
    "INFO": "NEGLIGIBLE",
    "DEBUG": "NEGLIGIBLE",
}


class FindingKind(StrEnum):
    """Which pillar a finding comes from; also the ``kind`` field of every JSON finding."""

    VULNERABILITY = "vulnerability"
    SECRET = "secret"  # noqa: S105 - a kind name, not a password
    MISCONFIGURATION = "misconfiguration"
    ALERT = "alert"


class SubjectKind(StrEnum):
    """What sort of thing a finding is about."""

    #: An installed package inside an image or a directory tree.
    PACKAGE = "package"
    #: A file inside an image layer or a directory tree.
    FILE = "file"
    #: A Kubernetes object (a workload, a role binding, a namespace…).
    RESOURCE = "resource"
    #: A machine: a Docker host or a Kubernetes node.
    HOST = "host"
    #: A process (a runtime alert on a node).
    PROCESS = "process"


@dataclass(frozen=True, slots=True)
class Subject:
    """What a finding is about, as precisely as its kind allows. Unused fields stay empty.

    One shape for every pillar, so that one ignore file, one store table and one renderer column work
    for all of them.
    """

    #: Which sort of thing: decides which of the fields below are set and what :meth:`key` uses.
    kind: SubjectKind
    #: The scanned artifact as the user named it (``oci:build/app:1``, ``127.0.0.1:5000/app:1``), or the
    #: manifest, snapshot or host the finding came from.
    artifact: str = ""
    #: Manifest digest of the image (``sha256:…``) when known.
    digest: str = ""
    #: ``diff_id`` of the image layer that holds the file or introduced the package.
    layer: str = ""
    #: File path inside the artifact, without a leading ``/`` (a package's declaring file, a secret's file).
    path: str = ""
    #: 1-based line in ``path`` (0 = not applicable).
    line: int = 0
    #: Package URL of the package (``pkg:deb/debian/openssl@3.0.11-1~deb12u2``), else ``type:name@version``.
    package: str = ""
    #: The package's name alone, for ignore rules that name a package without a purl.
    package_name: str = ""
    #: Kubernetes cluster id (a kubeconfig context, a registered cluster).
    cluster: str = ""
    #: Kubernetes namespace of the object ("" for cluster-scoped objects and for images).
    namespace: str = ""
    #: Kubernetes kind of the object (``Deployment``) or the Docker object type (``container``).
    resource_kind: str = ""
    #: Name of the object, container or process executable.
    name: str = ""
    #: Container (name or id) inside the object, for per-container findings.
    container: str = ""
    #: Host name of a node or Docker host.
    host: str = ""

    def key(self) -> str:
        """The part of the subject that identifies a finding across scans. Deliberately left out: the
        artifact name and digest (the store keys findings per artifact; a rebuilt image keeps its
        findings), the layer (a rebuild changes it) and the package version (an upgrade that is still
        vulnerable is the same finding)."""
        if self.kind is SubjectKind.PACKAGE:
            # The purl without its version: type/namespace/name.
            ident = self.package.split("@", 1)[0].split("?", 1)[0]
            return f"package|{ident}|{self.path}"
        if self.kind is SubjectKind.FILE:
            return f"file|{self.path}|{self.line}"
        return "|".join(
            (
                self.kind.value,
                self.cluster,
                self.namespace,
                self.resource_kind,
                self.name,
                self.container,
                self.host,
                self.path,
            )
        )


@dataclass(frozen=True, slots=True)
class RuleRef:
    """The rule, control or advisory a finding comes from."""

    #: The id users search for and ignore by: a CVE alias when there is one, a secret rule id, a control id.
    id: RuleId
    #: Where the rule is defined: an advisory source (``osv:Debian:12``), ``garrison/secrets``, ``falco``….
    source: str = ""
    #: One-line title of the rule or advisory.
    title: str = ""
    #: Other ids of the same rule (advisory aliases, merged advisories, equivalent ids in other tools).
    aliases: tuple[str, ...] = ()
    #: Where a user reads more.
    url: str = ""
    #: Version of the rule data (a rule file's version, an advisory's ``modified`` time).
    version: str = ""


#: Evidence: ordered (label, value) pairs that a renderer prints as they are. Secrets appear masked.
Evidence = tuple[tuple[str, str], ...]

D = TypeVar("D", covariant=True)


@dataclass(frozen=True, slots=True)
class Finding(Generic[D]):
    """The envelope every result of every pillar travels in.

    ``severity`` is the one that filters, gates and sorts; a payload that carries a second severity
    (an advisory's own rating) says so in its own field's docstring.
    """

    #: Which pillar made it; decides the type of ``detail``.
    kind: FindingKind
    #: The rule, control or advisory it comes from.
    rule: RuleRef
    #: What it is about.
    subject: Subject
    #: The severity that filters, gates and sorts (see the class docstring when a payload has two).
    severity: Severity
    #: One line for a person: ``openssl 3.0.11-1~deb12u1: CVE-2024-0727``, ``AWS access key in app/.env``.
    title: str
    #: The kind-specific payload (:class:`~garrison.model.vuln.Vulnerability`, :class:`~garrison.model.secret.Secret`…).
    detail: D
    #: Ordered (label, value) pairs a renderer prints as they are; secrets appear masked.
    evidence: Evidence = ()
    #: When this finding was first and last seen (ISO 8601 UTC); a single scan sets both to its own time.
    first_seen: str = ""
    #: When it was last seen (ISO 8601 UTC); equals ``first_seen`` after one scan.
    last_seen: str = ""

    @property
    def fingerprint(self) -> FindingId:
        """Stable across re-scans of the same artifact: kind, rule and :meth:`Subject.key` (derived, never
        stored apart, so it cannot disagree with the finding). SARIF ``partialFingerprints``, the ignore
        file's ``fingerprint`` entries, de-duplication and the store all use it."""
        text = f"{self.kind.value}|{self.rule.id}|{self.subject.key()}"
        return FindingId(hashlib.sha256(text.encode()).hexdigest()[:32])


@dataclass(frozen=True, slots=True)
class Suppression:
    """Why a finding is not reported as open: a filter flag, an ignore rule, a VEX statement or an exemption."""

    #: Which step decided: ``severity``, ``unfixed``, ``ignore-file``, ``vex``, ``exemption``.
    by: str
    #: The reason as given (an ignore rule's ``reason``, a VEX justification and statement).
    reason: str = ""
    #: Who decided (an ignore rule's ``by``, a VEX document's author, the user who made an exemption).
    decided_by: str = ""
    #: Last day the decision holds (ISO date); "" = no expiry.
    expires: str = ""
    #: Where the decision is written (the ignore file's path, the VEX document's path or ``@id``).
    origin: str = ""


@dataclass(frozen=True, slots=True)
class Suppressed(Generic[D]):
    """A finding kept aside with the decision that suppressed it: reported as suppressed, never dropped."""

    #: The finding, unchanged.
    finding: Finding[D]
    #: The decision that set it aside.
    suppression: Suppression


def severity_counts(findings: Iterable[Finding[Any]]) -> dict[Severity, int]:
    """Findings per severity, every severity present (highest first), for summaries."""
    c: dict[Severity, int] = {}
    for f in findings:
        c[f.severity] = c.get(f.severity, 0) + 1
    return {s: c.get(s, 0) for s in sorted(Severity, reverse=True)}
