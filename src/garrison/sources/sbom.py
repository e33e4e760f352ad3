"""``sbom:FILE``: an inventory read from a CycloneDX (1.4-1.7 JSON) or SPDX 2.x JSON document, as written
by garrison, trivy or syft, so that an SBOM can be scanned without the image.

What each producer says and where:

* package type, name, version: the purl (``pkg:deb/debian/bash@5.2.15-2%2Bb13``); trivy moves a Debian
  epoch into an ``epoch=`` qualifier, which is put back in front of the version;
* Debian source package (advisories are keyed by it): syft's purl qualifier ``upstream=NAME[@VERSION]``,
  trivy's ``aquasecurity:trivy:SrcName`` / ``SrcVersion`` / ``SrcRelease`` / ``SrcEpoch`` properties,
  garrison's ``garrison:package:source_name`` / ``source_version`` properties, or SPDX
  ``sourceInfo: built package from: NAME VERSION`` (trivy);
* operating system: a CycloneDX ``operating-system`` component or an SPDX ``OPERATING_SYSTEM`` package
  (trivy, syft, garrison), else the purls' ``distro=`` qualifier (``debian-12``);
* where a package was found: ``aquasecurity:trivy:FilePath``, ``syft:location:N:path``,
  ``garrison:location``; the layer from ``aquasecurity:trivy:LayerDiffID`` or ``garrison:layer:diff_id``.

Anything without a purl of a known type is skipped and counted in one warning.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from garrison.errors import InputError
from garrison.model import Artifact, Inventory, OSInfo, Package, PackageType, SourceKind
from garrison.model.ecosystem import from_purl_type

_SPDX_BUILT_FROM = re.compile(r"built package from:\s*(\S+)(?:\s+(\S+))?")
_DISTRO = re.compile(r"^([a-z][a-z0-9._-]*?)-(\d[\w.]*)$")
MAX_SBOM_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Purl:
    type: str
    namespace: str
    name: str
    version: str
    qualifiers: Mapping[str, str]


def _parse_purl(text: str) -> _Purl | None:
    from packageurl import PackageURL

    try:
        p = PackageURL.from_string(text)
    except ValueError:
        return None
    quals = p.qualifiers if isinstance(p.qualifiers, dict) else {}
    return _Purl(
        str(p.type),
        str(p.namespace or ""),
        str(p.name),
        str(p.version or ""),
        {str(k): str(v) for k, v in quals.items()},
    )


def _name(ptype: PackageType, purl: _Purl, declared: str) -> tuple[str, str]:
    """(name, namespace) as garrison's analyzers spell them."""
    if ptype.ecosystem.namespace_in_name and purl.namespace:
        return f"{purl.namespace}/{purl.name}", ""
    if ptype is PackageType.JAVA:
        return purl.name, purl.namespace
    if ptype is PackageType.PYTHON and declared:
        return declared, ""  # the distribution's own spelling (Django), the purl's is normalized
    return purl.name, ""


def _debian_source(purl: _Purl, props: Mapping[str, list[str]], version: str) -> tuple[str, str]:
    first = {k: v[0] for k, v in props.items() if v}
    if "garrison:package:source_name" in first:
        return first["garrison:package:source_name"], first.get("garrison:package:source_version", version)
    if "aquasecurity:trivy:SrcName" in first:
        src_version = first.get("aquasecurity:trivy:SrcVersion", "")
        if src_version and first.get("aquasecurity:trivy:SrcRelease"):
            src_version += "-" + first["aquasecurity:trivy:SrcRelease"]
        if src_version and first.get("aquasecurity:trivy:SrcEpoch", "0") not in ("", "0"):
            src_version = f"{first['aquasecurity:trivy:SrcEpoch']}:{src_version}"
        return first["aquasecurity:trivy:SrcName"], src_version or version
    upstream = purl.qualifiers.get("upstream", "")
    if upstream:
        name, _, src_version = unquote(upstream).partition("@")
        return name, src_version or version
    return "", ""


def _os_from_distro(purls: Iterable[_Purl]) -> OSInfo | None:
    for p in purls:
        m = _DISTRO.match(p.qualifiers.get("distro", ""))
        if m:
            return OSInfo(family=m.group(1), version_id=m.group(2))
    return None


def _package(
    purl_text: str,
    declared_name: str,
    declared_version: str,
    props: Mapping[str, list[str]],
    licenses: tuple[str, ...],
) -> tuple[Package | None, _Purl | None, str]:
    """A package from one SBOM entry, or (None, purl, reason-to-count)."""
    purl = _parse_purl(purl_text) if purl_text else None
    if purl is None:
        return None, None, "no purl"
    ptype = from_purl_type(purl.type)
    if ptype is None:
        return None, purl, f"purl type {purl.type}"
    version = purl.version or declared_version
    epoch = purl.qualifiers.get("epoch", "")
    rpm_epoch: int | None = None
    if epoch and ptype is PackageType.RPM:
        rpm_epoch = int(epoch) if epoch.isdigit() else None
    elif epoch and epoch != "0" and ":" not in version:
        version = f"{epoch}:{version}"
    name, namespace = _name(ptype, purl, declared_name)
    source_name = source_version = ""
    if ptype is PackageType.DEB:
        source_name, source_version = _debian_source(purl, props, version)
    elif ptype in (PackageType.APK, PackageType.RPM):
        first = {k: v[0] for k, v in props.items() if v}
        source_name = first.get("garrison:package:source_name") or first.get("aquasecurity:trivy:SrcName", "")
    locations = tuple(
        loc.lstrip("/") for key in ("garrison:location", "aquasecurity:trivy:FilePath") for loc in props.get(key, [])
    ) + tuple(
        sorted(
            (v[0].lstrip("/") for k, v in props.items() if re.fullmatch(r"syft:location:\d+:path", k)),
            key=lambda p: (not p.endswith(("status", "METADATA", "package.json")), p),
        )
    )
    layer = next(iter(props.get("garrison:layer:diff_id", []) or props.get("aquasecurity:trivy:LayerDiffID", [])), "")
    pkg = Package(
        name=name,
        version=version,
        type=ptype,
        purl=purl_text,
        locations=tuple(dict.fromkeys(locations)),
        layer=layer,
        source_name=source_name,
        source_version=source_version,
        arch=purl.qualifiers.get("arch", ""),
        licenses=licenses,
        epoch=rpm_epoch,
        namespace=namespace,
    )
    return pkg, purl, ""


def _props(raw: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in raw or []:
        if isinstance(p, dict) and "name" in p:
            out.setdefault(str(p["name"]), []).append(str(p.get("value", "")))
    return out


def _cdx_licenses(raw: Any) -> tuple[str, ...]:
    out: list[str] = []
    for entry in raw or []:
        if not isinstance(entry, dict):
            continue
        if entry.get("expression"):
            out.append(str(entry["expression"]))
        lic = entry.get("license") or {}
        if isinstance(lic, dict) and (lic.get("id") or lic.get("name")):
            out.append(str(lic.get("id") or lic.get("name")))
    return tuple(out)


def _walk_components(components: Any) -> Iterable[dict[str, Any]]:
    for c in components or []:
        if isinstance(c, dict):
            yield c
            yield from _walk_components(c.get("components"))


def _from_cyclonedx(doc: dict[str, Any], origin: str) -> Inventory:
    spec = str(doc.get("specVersion", ""))
    if not re.fullmatch(r"1\.[4-7]", spec):
        raise InputError(f"{origin}: CycloneDX {spec or '(no specVersion)'} is not supported (1.4 to 1.7)")
    meta = doc.get("metadata") or {}
    root = meta.get("component") or {}
    os_info: OSInfo | None = None
    packages: list[Package] = []
    purls: list[_Purl] = []
    skipped: Counter[str] = Counter()
    for c in [
        *([root] if root.get("type") == "operating-system" else []),
        *_walk_components(doc.get("components")),
    ]:
        if c.get("type") == "operating-system":
            os_info = os_info or OSInfo(
                family=str(c.get("name", "")).lower(),
                version_id=str(c.get("version", "")),
                pretty_name=str(c.get("description", "")),
            )
            continue
        pkg, purl, why = _package(
            str(c.get("purl", "")),
            str(c.get("name", "")),
            str(c.get("version", "")),
            _props(c.get("properties")),
            _cdx_licenses(c.get("licenses")),
        )
        if purl is not None:
            purls.append(purl)
        if pkg is None:
            if c.get("type") not in ("file", "container", "application") or c.get("purl"):
                skipped[why] += 1
            continue
        packages.append(pkg)
    name = str(root.get("name") or origin)
    return _inventory(name, os_info or _os_from_distro(purls), packages, skipped, f"CycloneDX {spec}")


def _from_spdx(doc: dict[str, Any], origin: str) -> Inventory:
    version = str(doc.get("spdxVersion", ""))
    if not version.startswith("SPDX-2."):
        raise InputError(f"{origin}: {version or 'no spdxVersion'}: only SPDX 2.x JSON is supported")
    os_info: OSInfo | None = None
    packages: list[Package] = []
    purls: list[_Purl] = []
    skipped: Counter[str] = Counter()
    for p in doc.get("packages") or []:
        if not isinstance(p, dict):
            continue
        if p.get("primaryPackagePurpose") in ("OPERATING_SYSTEM", "OPERATING-SYSTEM"):
            os_info = os_info or OSInfo(family=str(p.get("name", "")).lower(), version_id=str(p.get("versionInfo", "")))
            continue
        refs = [r for r in p.get("externalRefs") or [] if isinstance(r, dict) and r.get("referenceType") == "purl"]
        if not refs:
            if p.get("primaryPackagePurpose") not in ("CONTAINER", "FILE", "SOURCE", "APPLICATION"):
                skipped["no purl"] += 1
            continue
        props: dict[str, list[str]] = {}
        m = _SPDX_BUILT_FROM.match(str(p.get("sourceInfo", "")))
        if m:
            props["garrison:package:source_name"] = [m.group(1)]
            if m.group(2):
                props["garrison:package:source_version"] = [m.group(2)]
        lic = str(p.get("licenseDeclared") or "")
        licenses = (lic,) if lic and lic not in ("NOASSERTION", "NONE") else ()
        pkg, purl, why = _package(
            str(refs[0].get("referenceLocator", "")),
            str(p.get("name", "")),
            str(p.get("versionInfo", "")),
            props,
            licenses,
        )
        if purl is not None:
            purls.append(purl)
        if pkg is None:
            skipped[why] += 1
            continue
        packages.append(pkg)
    name = str(doc.get("name") or origin)
    return _inventory(name, os_info or _os_from_distro(purls), packages, skipped, version)


def _inventory(
    name: str, os_info: OSInfo | None, packages: list[Package], skipped: Counter[str], fmt: str
) -> Inventory:
    warnings = tuple(f"SBOM ({fmt}): skipped {n} entries ({why})" for why, n in sorted(skipped.items()))
    if os_info is not None and not os_info.family:
        os_info = None
    return Inventory(Artifact(name=name, kind=SourceKind.SBOM), os_info, tuple(packages), warnings)


def parse_sbom(text: str | bytes, origin: str = "SBOM") -> Inventory:
    """An inventory from an SBOM document's text. Raises :class:`InputError` when it is not one."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{origin}: not a JSON SBOM ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{origin}: not a JSON SBOM (top level is not an object)")
    if doc.get("bomFormat") == "CycloneDX":
        return _from_cyclonedx(doc, origin)
    if "spdxVersion" in doc:
        return _from_spdx(doc, origin)
    raise InputError(f"{origin}: neither CycloneDX (bomFormat) nor SPDX (spdxVersion) JSON")


def load_sbom(path: Path) -> Inventory:
    """Read an SBOM file (``garrison scan sbom:FILE``)."""
    try:
        if path.stat().st_size > MAX_SBOM_BYTES:
            raise InputError(f"{path}: SBOM larger than {MAX_SBOM_BYTES // (1024 * 1024)} MiB")
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such SBOM file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read SBOM ({exc.strerror})") from None
    inv = parse_sbom(data, str(path))
    if inv.artifact.name == str(path):
        return inv
    return Inventory(
        Artifact(name=f"sbom:{path}", kind=SourceKind.SBOM, labels={"sbom.subject": inv.artifact.name}),
        inv.os,
        inv.packages,
        inv.warnings,
    )
