"""What is known bad: advisories and the findings that tie them to packages."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from garrison.model.package import Package


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
        """Parse a severity name case-insensitively ("moderate" and "important" are common synonyms)."""
        t = text.strip().upper()
        aliases = {
            "MODERATE": "MEDIUM",
            "IMPORTANT": "HIGH",
            "NONE": "NEGLIGIBLE",
            "UNIMPORTANT": "NEGLIGIBLE",
        }
        t = aliases.get(t, t)
        try:
            return cls[t]
        except KeyError:
            raise ValueError(f"unknown severity {text!r}") from None


@dataclass(frozen=True, slots=True)
class Advisory:
    """One advisory record (an OSV record, reduced to what reports need)."""

    id: str
    aliases: tuple[str, ...] = ()
    summary: str = ""
    details: str = ""
    severity: Severity = Severity.UNKNOWN
    #: CVSS vector strings, e.g. ``CVSS:3.1/AV:N/…``.
    cvss_vectors: tuple[str, ...] = ()
    cvss_score: float | None = None
    references: tuple[str, ...] = ()
    published: str = ""
    modified: str = ""
    #: Which source in the advisory database it came from (the OSV ecosystem of the mirror file).
    source: str = ""


@dataclass(frozen=True, slots=True)
class MatchDetail:
    """Why a finding was reported, so that a user can check it by hand."""

    #: The OSV ecosystem and package name that were looked up (``Debian:12`` / ``openssl``).
    ecosystem: str
    searched_name: str
    #: The version compared (the source version for Debian binaries).
    searched_version: str
    #: Human-readable range that matched (``introduced 0, fixed 3.0.11-1~deb12u2``) or ``versions list``.
    matched_range: str
    #: Version scheme used for the comparison (``dpkg``, ``pep440``, ``semver``…).
    scheme: str


@dataclass(frozen=True, slots=True)
class Finding:
    """A package affected by an advisory."""

    package: Package
    advisory: Advisory
    #: The advisory id shown to users: a CVE alias when there is one, else the advisory id.
    vulnerability_id: str
    severity: Severity
    #: Versions that fix it in the same range; empty means "no fix yet".
    fixed_versions: tuple[str, ...]
    kev: bool = False
    match: MatchDetail | None = None
    #: Other advisory ids merged into this finding (one CVE reported by two sources is one finding).
    merged_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RangeEvent:
    """One OSV range event: ``kind`` is ``introduced``, ``fixed``, ``last_affected`` or ``limit``."""

    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class AffectedRange:
    """An OSV ``ranges[]`` entry. ``type`` is ``ECOSYSTEM``, ``SEMVER`` or ``GIT`` (GIT is never matched)."""

    type: str
    events: tuple[RangeEvent, ...]


@dataclass(frozen=True, slots=True)
class Affected:
    """One OSV ``affected[]`` entry for one package, as stored in the advisory database."""

    advisory_id: str
    #: Exact OSV ecosystem string (``Debian:12``, ``PyPI``, ``Alpine:v3.19``).
    ecosystem: str
    package_name: str
    ranges: tuple[AffectedRange, ...] = ()
    #: Explicit affected versions (OSV ``versions``).
    versions: tuple[str, ...] = ()
