"""A secret found in a file of an image layer or a directory tree."""

from __future__ import annotations

from dataclasses import dataclass

from garrison.model.common import Finding, FindingKind, RuleId, RuleRef, Severity, Subject, SubjectKind


@dataclass(frozen=True, slots=True)
class Secret:
    """One match of a secret rule. Never holds the secret itself: only a masked form of it."""

    #: The rule's id (``aws-access-key-id``), as in ``rules/secrets/``.
    rule_id: str
    #: The rule's category (``AWS``, ``GitHub``, ``Private key``, ``Generic``…).
    category: str
    #: The rule's one-line title (``AWS access key ID``).
    title: str
    #: The rule's severity as written in the rule file (the finding's severity; there is no second one).
    severity: Severity
    #: File path inside the artifact, without a leading ``/``.
    path: str
    #: 1-based line of the match's first character.
    line: int
    #: The match with all but a few characters replaced by ``*`` (see ``secrets.mask``).
    masked: str
    #: ``diff_id`` of the layer that holds the file ("" for ``dir:`` scans). A secret in a file that an
    #: upper layer deleted is still reported, with the layer that holds it.
    layer: str = ""
    #: True when an upper layer deleted or replaced the file: the secret is still in the image's bytes.
    deleted: bool = False
    #: Version of the rule set that matched (the rule file's ``version``).
    rules_version: str = ""


def secret_finding(s: Secret, artifact: str = "", digest: str = "") -> Finding[Secret]:
    """The envelope for a secret: the subject is the file (and line) in its layer."""
    return Finding(
        kind=FindingKind.SECRET,
        rule=RuleRef(id=RuleId(s.rule_id), source="garrison/secrets", title=s.title, version=s.rules_version),
        subject=Subject(
            kind=SubjectKind.FILE, artifact=artifact, digest=digest, layer=s.layer, path=s.path, line=s.line
        ),
        severity=s.severity,
        title=f"{s.title} in {s.path}:{s.line}",
        detail=s,
        evidence=(("match", s.masked), ("layer", s.layer)) if s.layer else (("match", s.masked),),
    )
