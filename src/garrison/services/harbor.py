"""Harbor's pluggable scanner API (goharbor/pluggable-scanner-spec v1.1, and v1.2's SBOM capability):
garrison as Harbor's scanner.

Harbor registers a scanner by URL and an ``Authorization`` header, asks it for its metadata, posts scan
requests (a registry URL, the artifact, and a short-lived ``Authorization`` to pull it with) and polls
for the report. This module turns those into garrison's own scans (:func:`garrison.services.registry.request_scan`
with ``source="harbor"``; the registry header is sealed there) and the stored findings of the scanned
digest into Harbor's vulnerability report, or its stored SBOM into Harbor's SBOM report (SPDX or
CycloneDX, as Harbor asks with ``sbom_media_type``). Media types are negotiated here; the router only
moves bytes.

Harbor reads ``vendor_attributes`` as a JSON object (``{"CVSS": {source: {"V3Score", "V3Vector"}}}``, the
form Harbor's own converter parses), not as the list of key/value pairs the OpenAPI document draws;
garrison sends what Harbor reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from garrison.errors import GarrisonError, InputError
from garrison.model.common import Severity
from garrison.services import registry as reg
from garrison.services import server as svc
from garrison.store.records import Role

if TYPE_CHECKING:
    from garrison.jobs import Queue
    from garrison.services.server import Principal
    from garrison.services.settings import ServerSettings
    from garrison.store.images import ScanRecord, StoredImageFinding
    from garrison.store.repos import Store

# --- media types ---------------------------------------------------------------------------------

SCAN_REQUEST = "application/vnd.scanner.adapter.scan.request+json"
SCAN_RESPONSE = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
METADATA = "application/vnd.scanner.adapter.metadata+json"
ERROR = "application/vnd.scanner.adapter.error+json; version=1.0"
#: The report types garrison produces (one body, two names: Harbor 2.x asks for the first).
REPORT_SECURITY = "application/vnd.security.vulnerability.report; version=1.1"
REPORT_HARBOR = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
REPORTS = (REPORT_SECURITY, REPORT_HARBOR)
#: The SBOM report (spec v1.2), and the SBOM formats it carries: Harbor's ``sbom_media_type`` → the
#: server's SBOM format (the media types are the server's own, :data:`~garrison.services.registry.SBOM_FORMATS`).
REPORT_SBOM = "application/vnd.security.sbom.report+json; version=1.0"
SBOM_MEDIA_TYPES = {reg.SBOM_FORMATS[name]: name for name in ("spdx", "cyclonedx")}
#: Every report type garrison answers with.
PRODUCED = (*REPORTS, REPORT_SBOM)
#: Report types of the spec that garrison does not produce (answered 501, "no such capability").
NOT_PRODUCED = frozenset({"application/vnd.scanner.adapter.vuln.report.raw"})
#: The artifacts garrison consumes.
CONSUMES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json")
#: Seconds Harbor is told to wait before asking for a report again.
REFRESH_AFTER = 5
#: The scanner, as Harbor shows it.
SCANNER_NAME = "garrison"
SCANNER_VENDOR = "garrison"

_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HARBOR_SEVERITY = {
    Severity.CRITICAL: "Critical",
    Severity.HIGH: "High",
    Severity.MEDIUM: "Medium",
    Severity.LOW: "Low",
    # Harbor counts Low/Medium/High/Critical/Unknown; garrison's NEGLIGIBLE is the lowest it shows.
    Severity.NEGLIGIBLE: "Low",
    Severity.UNKNOWN: "Unknown",
}


class HarborError(GarrisonError):
    """An answer other than success, with its HTTP status (the router writes Harbor's error body)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class MediaType:
    """``type/subtype`` (lower case) and its parameters (``version``)."""

    essence: str
    params: Mapping[str, str]

    @property
    def version(self) -> str:
        return self.params.get("version", "")


def parse_media_type(text: str) -> MediaType:
    """``type/subtype; key=value; …`` (quotes and spaces tolerated); an empty essence when it is not one."""
    head, *rest = text.split(";")
    essence = head.strip().lower()
    if essence.count("/") != 1 or any(c.isspace() for c in essence):
        essence = ""
    params: dict[str, str] = {}
    for part in rest:
        key, sep, value = part.partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return MediaType(essence, params)


def _accepted(accept: str) -> Iterator[MediaType]:
    """The media ranges of an ``Accept`` header, best first (``q`` respected; ``q=0`` dropped)."""
    ranked: list[tuple[float, int, MediaType]] = []
    for i, item in enumerate(accept.split(",")):
        if not item.strip():
            continue
        mt = parse_media_type(item)
        try:
            q = float(mt.params.get("q", "1"))
        except ValueError:
            q = 0.0
        if q > 0:
            ranked.append((-q, i, mt))
    for _, _, mt in sorted(ranked, key=lambda r: (r[0], r[1])):
        yield mt


def report_type(accept: str) -> str:
    """The report media type to answer ``Accept`` with (none or a wildcard: Harbor 2.x's). Raises
    :class:`HarborError`: 501 for a report type of the spec garrison does not produce, 406 for one it
    does not know."""
    if not accept.strip():
        return REPORT_SECURITY
    wanted = list(_accepted(accept))
    for mt in wanted:
        if mt.essence in ("*/*", "application/*"):
            return REPORT_SECURITY
        for produced in PRODUCED:
            p = parse_media_type(produced)
            if mt.essence == p.essence and mt.version in ("", p.version):
                return produced
    if any(mt.essence in NOT_PRODUCED for mt in wanted):
        raise HarborError(501, f"garrison produces {', '.join(PRODUCED)} only")
    raise HarborError(406, f"cannot answer Accept {accept[:200]!r}: garrison produces {', '.join(PRODUCED)}")


def metadata_type(accept: str) -> str:
    """The metadata media type for ``Accept`` (version 1.1 unless only 1.0 is asked for)."""
    for mt in _accepted(accept) if accept.strip() else iter(()):
        if mt.essence in ("*/*", "application/*"):
            return f"{METADATA}; version=1.1"
        if mt.essence == METADATA and mt.version in ("", "1.1", "1.0"):
            return f"{METADATA}; version={mt.version or '1.1'}"
    if accept.strip():
        raise HarborError(406, f"cannot answer Accept {accept[:200]!r} with {METADATA}")
    return f"{METADATA}; version=1.1"


def check_scan_request_type(content_type: str) -> None:
    """A scan request is ``…scan.request+json`` version 1.0 or 1.1 (or plain ``application/json``, for
    people with curl); anything else is 415."""
    mt = parse_media_type(content_type)
    if mt.essence == "application/json" or (mt.essence == SCAN_REQUEST and mt.version in ("", "1.0", "1.1")):
        return
    raise HarborError(
        415, f"a scan request is {SCAN_REQUEST}; version=1.1 (or version=1.0), not {content_type[:200]!r}"
    )


# --- metadata ------------------------------------------------------------------------------------


def _database_built_at(settings: ServerSettings | None) -> str:
    """When the advisory database scans match against was built ("" when there is none yet)."""
    from garrison.config import Settings
    from garrison.errors import DatabaseError
    from garrison.vulndb.store import AdvisoryDB

    vulndb = settings.vulndb if settings is not None else None
    path = Settings(db_path=str(vulndb) if vulndb else "").database_file
    try:
        with AdvisoryDB.open(path) as db:
            return db.status().built_at
    except DatabaseError:
        return ""


def metadata(settings: ServerSettings | None, media_type: str) -> dict[str, Any]:
    """``GET /metadata``: the scanner, what it consumes and produces, and when its database was built."""
    from garrison import __version__

    capability: dict[str, Any] = {"consumes_mime_types": list(CONSUMES), "produces_mime_types": list(REPORTS)}
    capabilities = [capability]
    if media_type.endswith("1.1"):  # typed capabilities: the SBOM one is Harbor 2.11's (spec v1.2)
        capabilities = [
            {"type": "vulnerability", **capability},
            {
                "type": "sbom",
                "consumes_mime_types": list(CONSUMES),
                "produces_mime_types": [REPORT_SBOM],
                "additional_attributes": {"sbom_media_types": list(SBOM_MEDIA_TYPES)},
            },
        ]
    properties = {"harbor.scanner-adapter/scanner-type": "os-package-vulnerability"}
    if built := _database_built_at(settings):
        properties["harbor.scanner-adapter/vulnerability-database-updated-at"] = built
    return {
        "scanner": {"name": SCANNER_NAME, "vendor": SCANNER_VENDOR, "version": __version__},
        "capabilities": capabilities,
        "properties": properties,
    }


# --- scan requests -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """A validated scan request."""

    registry_url: str
    #: ``host[:port]`` of the registry.
    host: str
    #: The registry ``Authorization`` to pull with ("" none). A secret: sealed by the registry service.
    authorization: str
    repository: str
    digest: str
    tag: str
    mime_type: str

    @property
    def reference(self) -> str:
        """``host/repository[:tag]@digest``: the digest is what is pulled, the tag what people see."""
        return f"{self.host}/{self.repository}{':' + self.tag if self.tag else ''}@{self.digest}"


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise HarborError(400, f"{what}: a JSON object")
    return value


def _string(doc: Mapping[str, Any], key: str, what: str) -> str:
    value = doc.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise HarborError(400, f"{what}.{key}: a string")
    return value


def _registry(url: str) -> str:
    """``host[:port]`` of the registry's base URL (422 for anything else)."""
    if not url:
        raise HarborError(422, "missing registry.url")
    if len(url) > 2048 or any(c.isspace() or not c.isprintable() for c in url):
        raise HarborError(422, "invalid registry.url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise HarborError(422, "invalid registry.url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise HarborError(422, "invalid registry.url: http(s)://HOST[:PORT] of the registry")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise HarborError(422, "invalid registry.url: credentials go in registry.authorization")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return host if port is None else f"{host}:{port}"


def parse_scan_request(body: bytes) -> ScanRequest:
    """The scan request's JSON: 400 when it is not JSON or a value has the wrong type, 422 for a field
    that is missing or invalid (an unknown capability or SBOM format). The scan is the same whichever
    capabilities are enabled: it stores the image's findings and its SBOM, and the report asked for
    later says which one Harbor gets."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HarborError(400, "the scan request is not JSON") from None
    doc = _object(doc, "the scan request")
    registry = _object(doc.get("registry", {}), "registry")
    artifact = _object(doc.get("artifact", {}), "artifact")
    url = _string(registry, "url", "registry")
    authorization = _string(registry, "authorization", "registry")
    repository = _string(artifact, "repository", "artifact")
    digest = _string(artifact, "digest", "artifact")
    tag = _string(artifact, "tag", "artifact")
    mime_type = _string(artifact, "mime_type", "artifact")
    capabilities = doc.get("enabled_capabilities")
    if capabilities is not None:
        if not isinstance(capabilities, list):
            raise HarborError(400, "enabled_capabilities: a list")
        for c in capabilities:
            kind = _string(_object(c, "enabled_capabilities[]"), "type", "enabled_capabilities[]")
            if kind not in ("vulnerability", "sbom"):
                raise HarborError(422, "enabled_capabilities: types vulnerability or sbom")
            params = c.get("parameters")
            if kind == "sbom" and params is not None:
                formats = _object(params, "enabled_capabilities[].parameters").get("sbom_media_types", [])
                if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
                    raise HarborError(400, "enabled_capabilities[].parameters.sbom_media_types: a list of strings")
                if unknown := [f for f in formats if f not in SBOM_MEDIA_TYPES]:
                    raise HarborError(
                        422, f"sbom_media_types: {unknown[0][:80]!r} is not one of {', '.join(SBOM_MEDIA_TYPES)}"
                    )
    host = _registry(url)
    if not repository:
        raise HarborError(422, "missing artifact.repository")
    if len(repository) > 255 or not _REPOSITORY.match(repository):
        raise HarborError(422, "invalid artifact.repository")
    if not digest:
        raise HarborError(422, "missing artifact.digest")
    if not _DIGEST.match(digest):
        raise HarborError(422, "invalid artifact.digest: sha256:<64 hex> (or sha512)")
    if tag and not _TAG.match(tag):
        raise HarborError(422, "invalid artifact.tag")
    if mime_type and parse_media_type(mime_type).essence not in CONSUMES:
        raise HarborError(422, f"artifact.mime_type: garrison scans {' and '.join(CONSUMES)}")
    if len(authorization) > reg.MAX_SECRET or any(c in authorization for c in "\r\n\0"):
        raise HarborError(422, "invalid registry.authorization")
    return ScanRequest(url, host, authorization, repository, digest, tag, mime_type)


def accept_scan(store: Store, queue: Queue, settings: ServerSettings, who: Principal, req: ScanRequest) -> str:
    """Record and enqueue the scan (nothing is pulled here); the scan request id Harbor polls with.

    A plain-HTTP registry must be one garrison knows (``POST /api/v1/registries`` with its ``http://``
    URL): garrison never downgrades to plain HTTP on a request's word. An agent scans its own registry
    only (403 for another)."""
    if req.registry_url.startswith("http://"):
        with store.transaction() as tx:
            known = tx.images.registry_for_host(req.host)
        if known is None or not known.insecure:
            raise HarborError(422, f"{req.host} is plain HTTP: add it to garrison first (POST /api/v1/registries)")
    try:
        scan = reg.request_scan(
            store,
            queue,
            who.user.name,
            req.reference,
            authorization=req.authorization or None,
            source="harbor",
            settings=settings,
            principal=who,
        )
    except svc.Forbidden as e:
        raise HarborError(403, str(e)) from None
    except InputError as e:
        raise HarborError(422, str(e)) from None
    return str(scan.id)


# --- reports -------------------------------------------------------------------------------------


def _scan_of(store: Store, who: Principal, scan_request_id: str) -> ScanRecord:
    """The Harbor scan with this id that the caller may see (404 for any other: no hint that it exists)."""
    missing = HarborError(404, f"no scan request {scan_request_id[:80]!r}")
    if not scan_request_id.isdigit() or len(scan_request_id) > 18:
        raise missing
    try:
        scan = reg.get_scan(store, int(scan_request_id))
    except svc.NotFound:
        raise missing from None
    if scan.source != "harbor":
        raise missing
    if who.role is Role.AGENT:
        with store.transaction() as tx:
            registry = tx.images.get_registry(scan.registry_id) if scan.registry_id is not None else None
        if registry is None or registry.agent_user_id != who.user.id:
            raise missing
    return scan


def _severity(name: str) -> Severity:
    try:
        return Severity.parse(name)
    except ValueError:
        return Severity.UNKNOWN


def _harbor_severity(name: str) -> str:
    return _HARBOR_SEVERITY[_severity(name)]


def _cvss(vectors: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``preferred_cvss``, the ``CVSS`` vendor attribute's entry) from the advisory's first vector of
    each version, with its base score. v4 has no place in ``preferred_cvss``: it goes to the attribute
    only (``V4Vector``, ``V4Score``)."""
    from garrison.vulndb.osv import cvss_score

    preferred: dict[str, Any] = {}
    entry: dict[str, Any] = {}
    for vector in vectors:
        if vector.startswith("CVSS:4."):
            kind, version = "CVSS_V4", "4"
        elif vector.startswith("CVSS:3."):
            kind, version = "CVSS_V3", "3"
        elif not vector.startswith("CVSS:"):
            kind, version = "CVSS_V2", "2"
        else:
            continue
        if f"V{version}Vector" in entry:
            continue
        score = cvss_score(kind, vector)
        entry[f"V{version}Vector"] = vector
        if score is not None:
            entry[f"V{version}Score"] = score
        if version != "4":
            preferred[f"vector_v{version}"] = vector
            if score is not None:
                preferred[f"score_v{version}"] = score
    return preferred, entry


def vulnerability_item(f: StoredImageFinding) -> dict[str, Any]:
    """One stored vulnerability as Harbor's ``VulnerabilityItem``."""
    doc = f.document
    v: dict[str, Any] = doc.get("vulnerability") or {}
    rule: dict[str, Any] = doc.get("rule") or {}
    subject: dict[str, Any] = doc.get("subject") or {}
    links = [u for u in [rule.get("url", ""), *v.get("references", [])] if isinstance(u, str) and u]
    preferred, cvss_entry = _cvss([x for x in v.get("cvss_vectors", []) if isinstance(x, str)])
    item: dict[str, Any] = {
        "id": f.rule_id,
        "package": f.package,
        "version": f.installed,
        "fix_version": f.fixed_version,
        "severity": _harbor_severity(f.severity),
        "description": v.get("summary") or doc.get("title") or "",
        "links": list(dict.fromkeys(links)),
        "cwe_ids": [],
    }
    if subject.get("layer"):
        item["layer"] = {"diff_id": subject["layer"]}
    if preferred:
        item["preferred_cvss"] = preferred
    attributes: dict[str, Any] = {}
    if cvss_entry:
        attributes["CVSS"] = {str(v.get("source") or "garrison"): cvss_entry}
    if v.get("kev"):
        attributes["kev"] = True
    if v.get("aliases"):
        attributes["aliases"] = [a for a in v["aliases"] if isinstance(a, str)]
    if attributes:
        item["vendor_attributes"] = attributes
    return item


def _vulnerabilities(store: Store, digest: str) -> list[StoredImageFinding]:
    out: list[StoredImageFinding] = []
    while True:
        page = reg.image_findings(store, digest, kind="vulnerability", limit=1000, offset=len(out))
        out.extend(page.items)
        if not page.items or len(out) >= page.total:
            return out


@dataclass(frozen=True, slots=True)
class ReportState:
    """A report, or that it is not ready (``refresh_after`` seconds)."""

    report: dict[str, Any] | None
    refresh_after: int = 0


def get_report(
    store: Store, who: Principal, scan_request_id: str, report: str = REPORT_SECURITY, sbom_media_type: str = ""
) -> ReportState:
    """``GET /scan/{id}/report``: not ready while the scan is queued or running; 500 (Harbor stops
    polling) with the reason when it failed; else the report of the scanned digest's open findings, or
    (``report`` the SBOM report) its SBOM in ``sbom_media_type`` (400 when that is missing or unknown)."""
    from garrison import __version__

    sbom_format = ""
    if report == REPORT_SBOM:
        sbom_format = SBOM_MEDIA_TYPES.get(sbom_media_type.strip(), "")
        if not sbom_format:
            raise HarborError(400, f"an SBOM report needs ?sbom_media_type= one of {', '.join(SBOM_MEDIA_TYPES)}")
    scan = _scan_of(store, who, scan_request_id)
    if scan.status in ("queued", "running"):
        return ReportState(None, REFRESH_AFTER)
    if scan.status != "done":
        raise HarborError(500, f"the scan failed: {scan.error or scan.status}")
    from garrison.sources.reference import parse_registry_ref

    ref = parse_registry_ref(scan.reference)
    artifact: dict[str, Any] = {"repository": ref.repository, "digest": scan.digest}
    if ref.tag:
        artifact["tag"] = ref.tag
    # What both reports begin with.
    head = {
        "generated_at": scan.finished_at,
        "artifact": artifact,
        "scanner": {"name": SCANNER_NAME, "vendor": SCANNER_VENDOR, "version": __version__},
    }
    if sbom_format:
        try:
            sbom = reg.image_sbom(store, scan.digest, sbom_format)
        except svc.NotFound:  # the image was deleted since
            raise HarborError(500, f"no stored SBOM for {scan.digest}") from None
        return ReportState({**head, "media_type": sbom_media_type.strip(), "sbom": sbom})
    try:
        found = _vulnerabilities(store, scan.digest)
    except svc.NotFound:  # the image was deleted since
        raise HarborError(500, f"no stored results for {scan.digest}") from None
    worst = max((_severity(f.severity) for f in found), default=Severity.UNKNOWN)
    return ReportState(
        {**head, "severity": _HARBOR_SEVERITY[worst], "vulnerabilities": [vulnerability_item(f) for f in found]}
    )
