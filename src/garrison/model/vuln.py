"""What is known bad: advisories and the findings that tie them to packages."""

from __future__ import annotations

from dataclasses import dataclass

from garrison.model.common import Finding, FindingKind, RuleId, RuleRef, Severity, Subject, SubjectKind
from garrison.model.package import Package


@dataclass(frozen=True, slots=True)
class Advisory:
    """One advisory record (an OSV record, reduced to what reports need)."""

    #: The OSV id (``DSA-5532-1``, ``GHSA-…``, ``PYSEC-…``, ``CVE-…``).
    id: str
    #: OSV ``aliases``: the same vulnerability under other ids (usually the CVE).
    aliases: tuple[str, ...] = ()
    #: One-line OSV ``summary`` ("" when the source gives none).
    summary: str = ""
    #: OSV ``details`` (Markdown).
    details: str = ""
    #: The advisory's own severity: from its CVSS vector when it has one, else the source's rating
    #: (``database_specific.severity``). A finding's severity is the highest of its merged advisories'.
    severity: Severity = Severity.UNKNOWN
    #: CVSS vector strings, e.g. ``CVSS:3.1/AV:N/…``.
    cvss_vectors: tuple[str, ...] = ()
    #: Base score of the highest CVSS vector (None when there is no vector).
    cvss_score: float | None = None
    #: Reference URLs, in the record's order.
    references: tuple[str, ...] = ()
    #: OSV ``published``: when the record was first published (ISO 8601, as in the record).
    published: str = ""
    #: OSV ``modified``: when the record last changed (a finding's rule ``version``).
    modified: str = ""
    #: Which source in the advisory database it came from (the OSV ecosystem of the mirror file).
    source: str = ""


@dataclass(frozen=True, slots=True)
class MatchDetail:
    """Why a finding was reported, so that a user can check it by hand."""

    #: The OSV ecosystem and package name that were looked up (``Debian:12`` / ``openssl``).
    ecosystem: str
    #: The package name looked up in that ecosystem (the source package for Debian binaries).
    searched_name: str
    #: The version compared (the source version for Debian binaries).
    searched_version: str
    #: Human-readable range that matched (``introduced 0, fixed 3.0.11-1~deb12u2``) or ``versions list``.
    matched_range: str
    #: Version scheme used for the comparison (``dpkg``, ``pep440``, ``semver``…).
    scheme: str


@dataclass(frozen=True, slots=True)
class Vulnerability:
    """A package affected by an advisory: the payload of a vulnerability :class:`Finding`."""

    #: The affected package, as installed.
    package: Package
    #: The primary advisory (the one whose range matched and whose text reports show).
    advisory: Advisory
    #: The advisory id shown to users: a CVE alias when there is one, else the advisory id.
    vulnerability_id: str
    #: The finding's severity: the highest of the merged advisories' own severities (each from CVSS when
    #: the record has a vector, else from the source's rating). ``advisory.severity`` is the primary's alone.
    severity: Severity
    #: Versions that fix it in the same range; empty means "no fix yet".
    fixed_versions: tuple[str, ...]
    #: True when the CVE is in CISA's Known Exploited Vulnerabilities catalog.
    kev: bool = False
    #: What was looked up and what matched, so that a user can check the finding by hand.
    match: MatchDetail | None = None
    #: Other advisory ids merged into this finding (one CVE reported by two sources is one finding).
    merged_ids: tuple[str, ...] = ()

    def ids(self) -> tuple[str, ...]:
        """Every id this finding answers to: the shown id, the advisory, its aliases and merged ids."""
        seen = dict.fromkeys((self.vulnerability_id, self.advisory.id, *self.advisory.aliases, *self.merged_ids))
        return tuple(seen)


def package_ref(pkg: Package) -> str:
    """The purl of a package, or ``type:name@version`` when it has none (what a Subject names)."""
    return pkg.purl or f"{pkg.type.value}:{pkg.name}@{pkg.version}"


def vulnerability_finding(v: Vulnerability, artifact: str = "", digest: str = "") -> Finding[Vulnerability]:
    """The envelope for a vulnerability: the subject is the package where its declaring file is."""
    pkg = v.package
    fixed = ", ".join(v.fixed_versions) or "no fix yet"
    return Finding(
        kind=FindingKind.VULNERABILITY,
        rule=RuleRef(
            id=RuleId(v.vulnerability_id),
            source=f"osv:{v.match.ecosystem}" if v.match else v.advisory.source,
            title=v.advisory.summary or v.advisory.details.strip().split("\n", 1)[0][:120],
            url=f"https://osv.dev/vulnerability/{v.advisory.id}",
            aliases=tuple(i for i in v.ids() if i != v.vulnerability_id),
            version=v.advisory.modified,
        ),
        subject=Subject(
            kind=SubjectKind.PACKAGE,
            artifact=artifact,
            digest=digest,
            layer=pkg.layer,
            path=pkg.locations[0] if pkg.locations else "",
            package=package_ref(pkg),
            package_name=pkg.name,
        ),
        severity=v.severity,
        title=f"{pkg.name} {pkg.version}: {v.vulnerability_id}",
        detail=v,
        evidence=(("installed", pkg.version), ("fixed", fixed))
        + ((("range", v.match.matched_range),) if v.match else ()),
    )


@dataclass(frozen=True, slots=True)
class RangeEvent:
    """One OSV range event: ``kind`` is ``introduced``, ``fixed``, ``last_affected`` or ``limit``."""

    #: ``introduced``, ``fixed``, ``last_affected`` or ``limit``.
    kind: str
    #: The version the event names (``0`` for "from the beginning").
    value: str


@dataclass(frozen=True, slots=True)
class AffectedRange:
    """An OSV ``ranges[]`` entry."""

    #: ``ECOSYSTEM``, ``SEMVER`` or ``GIT`` (GIT ranges name commits and are never matched).
    type: str
    #: The events in the record's order.
    events: tuple[RangeEvent, ...]


@dataclass(frozen=True, slots=True)
class Affected:
    """One OSV ``affected[]`` entry for one package, as stored in the advisory database."""

    #: The OSV id of the record the entry belongs to.
    advisory_id: str
    #: Exact OSV ecosystem string (``Debian:12``, ``PyPI``, ``Alpine:v3.19``).
    ecosystem: str
    #: The package name as the advisory spells it (a Debian source package, a PyPI project…).
    package_name: str
    #: OSV ``ranges``: affected when any range says so.
    ranges: tuple[AffectedRange, ...] = ()
    #: Explicit affected versions (OSV ``versions``).
    versions: tuple[str, ...] = ()
