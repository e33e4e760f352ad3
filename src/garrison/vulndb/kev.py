"""Pure parsing of CISA's Known Exploited Vulnerabilities catalog
(https://www.cisa.gov/known-exploited-vulnerabilities-catalog, JSON feed)."""

from __future__ import annotations

import json
import re

from garrison.vulndb.osv import MalformedRecord

_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")


def parse_kev(data: bytes) -> frozenset[str]:
    """CVE ids of the catalog; raises :class:`MalformedRecord` when it is not a KEV document."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise MalformedRecord(f"KEV catalog is not JSON: {e}") from e
    vulns = doc.get("vulnerabilities") if isinstance(doc, dict) else None
    if not isinstance(vulns, list):
        raise MalformedRecord("KEV catalog has no 'vulnerabilities' list")
    ids = set()
    for v in vulns:
        cve = v.get("cveID") if isinstance(v, dict) else None
        if isinstance(cve, str) and _CVE.match(cve.strip()):
            ids.add(cve.strip())
    return frozenset(ids)
