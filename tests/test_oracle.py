"""Oracle test: garrison's findings on the real test images equal an independent computation.

The oracle shares no code with garrison's matching or database: it lists installed packages with
``dpkg-query`` / by walking ``*.dist-info`` and ``node_modules`` itself, reads the OSV records straight from
the mirror zips, and compares versions with ``dpkg --compare-versions`` (Debian), ``packaging`` (PyPI) and
``nodesemver`` (npm). A package is vulnerable to an advisory exactly when its version lies in one of the
advisory's ``introduced``..``fixed`` (or ..``last_affected``) intervals, or a fixed-less open interval, or
is listed in ``versions``. Garrison's findings, flattened to (package, advisory id) pairs over every
merged id, must equal the oracle's pairs exactly, with the same fixed versions.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from email.parser import Parser
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from tests.test_oracle_support import have_mirror, mirror_zip, real_db_path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not have_mirror(), reason="the OSV mirror files are not present"),
    pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg for the Debian oracle"),
]

Pairs = dict[tuple[str, str, str], tuple[str, ...]]  # (package, version, advisory id) -> fixed versions


# --------------------------------------------------------------------------------------------- inputs


@pytest.fixture(scope="module")
def images() -> Any:
    from tests.support.images import test_images

    return test_images()


@pytest.fixture(scope="module")
def db() -> Iterator[Any]:
    from garrison.vulndb.store import AdvisoryDB

    with AdvisoryDB.open(real_db_path()) as d:
        yield d


def garrison_findings(ref: str, db: Any, tmp: Path, ptype: str) -> tuple[Any, Pairs]:
    from garrison.api import inventory
    from garrison.config import Settings
    from garrison.matching import match_inventory

    inv = inventory(ref, Settings(cache_dir=tmp, no_cache=True))
    result = match_inventory(inv, db)
    assert result.not_comparable == ()
    pairs: Pairs = {}
    for f in result.findings:
        if f.package.type.value != ptype:
            continue
        for adv_id in (f.advisory.id, *f.merged_ids):
            pairs[(f.package.name, f.package.version, adv_id)] = tuple(sorted(f.fixed_versions))
    return inv, pairs


def osv_records(ecosystem: str) -> Iterator[dict[str, Any]]:
    with zipfile.ZipFile(mirror_zip(ecosystem)) as zf:
        for name in zf.namelist():
            if name.endswith(".json"):
                rec = json.loads(zf.read(name))
                if not rec.get("withdrawn"):
                    yield rec


def affected_index(
    ecosystem: str, exact: str, norm: Callable[[str], str]
) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """normalized package name -> [(advisory id, affected entry)] for one OSV ecosystem string."""
    index: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for rec in osv_records(ecosystem):
        for aff in rec.get("affected", []):
            pkg = aff.get("package", {})
            if pkg.get("ecosystem") == exact:
                index.setdefault(norm(pkg["name"]), []).append((rec["id"], aff))
    return index


def oracle_verdict(aff: dict[str, Any], version: str, lt: Callable[[str, str], bool]) -> tuple[bool, set[str]]:
    """Is ``version`` affected by this OSV entry, and the fixed versions of the intervals above it."""
    hit, fixed = False, set()
    for rng in aff.get("ranges", []):
        if rng.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue
        try:
            # Intervals in the order the record lists them: introduced, then its fixed/last_affected.
            start: str | None = None
            intervals: list[tuple[str, str | None, str | None]] = []
            limit = [e["limit"] for e in rng["events"] if "limit" in e]
            for ev in rng["events"]:
                if "introduced" in ev:
                    if start is not None:
                        intervals.append((start, None, None))
                    start = ev["introduced"]
                elif "fixed" in ev and start is not None:
                    intervals.append((start, ev["fixed"], None))
                    start = None
                elif "last_affected" in ev and start is not None:
                    intervals.append((start, None, ev["last_affected"]))
                    start = None
            if start is not None:
                intervals.append((start, None, None))
            range_hit = False
            for intro, fix, last in intervals:
                above = intro == "0" or not lt(version, intro)
                below = (fix is None or lt(version, fix)) and (last is None or not lt(last, version))
                if above and below:
                    range_hit = True
            if range_hit and limit and not any(lt(version, lim) for lim in limit):
                range_hit = False
            if range_hit:
                hit = True
                fixed |= {f for _, f, _ in intervals if f is not None and lt(version, f)}
        except ValueError:
            continue  # an advisory version the comparator rejects: garrison skips that range too
    if not hit and version in aff.get("versions", []):
        hit = True
    return hit, fixed


def oracle_pairs(
    installed: list[tuple[str, str, str, str]],
    index: dict[str, list[tuple[str, dict[str, Any]]]],
    lt: Callable[[str, str], bool],
) -> Pairs:
    """installed: (package name, package version, lookup name, compared version)."""
    pairs: Pairs = {}
    for name, version, key, cmp_version in installed:
        for adv_id, aff in index.get(key, []):
            hit, fixed = oracle_verdict(aff, cmp_version, lt)
            if hit:
                pairs[(name, version, adv_id)] = tuple(sorted(fixed))
    return pairs


def diff(a: Pairs, b: Pairs) -> str:
    only_a = sorted(set(a) - set(b))[:10]
    only_b = sorted(set(b) - set(a))[:10]
    fixed = sorted(k for k in set(a) & set(b) if a[k] != b[k])[:10]
    return f"garrison only: {only_a}\noracle only: {only_b}\nfixed differs: {[(k, a[k], b[k]) for k in fixed]}"


# --------------------------------------------------------------------------------------------- Debian


@cache
def dpkg_lt(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0


def dpkg_installed(rootfs: Path) -> list[tuple[str, str, str, str]]:
    out = subprocess.run(
        [
            "dpkg-query",
            f"--admindir={rootfs}/var/lib/dpkg",
            "-W",
            "-f=${Package}\t${Version}\t${source:Package}\t${source:Version}\t${db:Status-Abbrev}\n",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        name, version, src, src_version, status = line.split("\t")
        if status.startswith("ii"):
            rows.append((name, version, src or name, src_version or version))
    return rows


@pytest.mark.parametrize("image", ["debian", "app"])
def test_debian_packages_match_dpkg_oracle(image: str, images: Any, db: Any, tmp_path: Path) -> None:
    rootfs, ref = (
        (images.debian_rootfs, images.debian_oci_ref) if image == "debian" else (images.app_rootfs, images.app_oci_ref)
    )
    installed = dpkg_installed(rootfs)
    assert len(installed) > 50
    inv, got = garrison_findings(ref, db, tmp_path, "deb")
    assert {(p.name, p.version) for p in inv.packages if p.type.value == "deb"} == {(n, v) for n, v, _, _ in installed}
    index = affected_index("Debian", "Debian:12", lambda n: n)
    expected = oracle_pairs(installed, index, dpkg_lt)
    assert len(expected) > 5, "the oracle should find real vulnerabilities in Debian 12 minbase"
    assert got == expected, diff(got, expected)


def test_binnmu_rebuild_is_vulnerable_via_source_version(images: Any, db: Any) -> None:
    """A real Debian package rebuilt as +b1 keeps the source's advisories (checked with dpkg itself)."""
    from garrison.matching import match_inventory
    from garrison.model import Artifact, Inventory, OSInfo, Package, PackageType, SourceKind

    installed = dpkg_installed(images.debian_rootfs)
    index = affected_index("Debian", "Debian:12", lambda n: n)
    name, version, src, src_version = next(r for r in installed if oracle_pairs([r], index, dpkg_lt))
    rebuilt = Package(name, version + "+b1", PackageType.DEB, source_name=src, source_version=src_version)
    inv = Inventory(Artifact("x", SourceKind.DIR), OSInfo("debian", "12"), (rebuilt,))
    got = {(f.package.name, f.advisory.id) for f in match_inventory(inv, db).findings}
    want = {(n, a) for n, _, a in oracle_pairs([(name, rebuilt.version, src, src_version)], index, dpkg_lt)}
    assert got == want and got
    # and the +b1 binary version itself sorts after the source version, as dpkg says
    assert dpkg_lt(src_version, rebuilt.version) or src_version != version


# --------------------------------------------------------------------------------------------- PyPI


def pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dist_infos(root: Path) -> list[tuple[str, str, str, str]]:
    rows = []
    for meta in sorted(root.glob("app/**/*.dist-info/METADATA")):
        msg = Parser().parsestr(meta.read_text(encoding="utf-8", errors="replace"), headersonly=True)
        rows.append((msg["Name"], msg["Version"], pep503(msg["Name"]), msg["Version"]))
    return rows


def pep440_lt(a: str, b: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) < Version(b)
    except InvalidVersion as exc:
        raise ValueError(str(exc)) from None


def test_app_image_pypi_matches_packaging_oracle(images: Any, db: Any, tmp_path: Path) -> None:
    installed = dist_infos(images.app_rootfs)
    assert {"Django", "Jinja2", "requests"} <= {n for n, *_ in installed}
    inv, got = garrison_findings(images.app_oci_ref, db, tmp_path, "pypi")
    assert {(p.name, p.version) for p in inv.packages if p.type.value == "pypi"} == {(n, v) for n, v, *_ in installed}
    expected = oracle_pairs(installed, affected_index("PyPI", "PyPI", pep503), pep440_lt)
    assert len(expected) > 10
    assert got == expected, diff(got, expected)


# --------------------------------------------------------------------------------------------- npm


def node_packages(root: Path) -> list[tuple[str, str, str, str]]:
    rows = []
    for pj in sorted((root / "app" / "node_modules").rglob("package.json")):
        rel = pj.relative_to(root / "app").parts
        # a package directory is node_modules/<name> or node_modules/@scope/<name>
        if len(rel) < 3 or (
            rel[-3] != "node_modules" and not (len(rel) >= 4 and rel[-4] == "node_modules" and rel[-3].startswith("@"))
        ):
            continue
        data = json.loads(pj.read_text(encoding="utf-8"))
        if "name" in data and "version" in data:
            rows.append((data["name"], data["version"], data["name"], data["version"]))
    return rows


def semver_lt(a: str, b: str) -> bool:
    import nodesemver

    return bool(nodesemver.lt(a, b, False))


def test_app_image_npm_matches_nodesemver_oracle(images: Any, db: Any, tmp_path: Path) -> None:
    installed = node_packages(images.app_rootfs)
    assert {"lodash", "minimist", "express"} <= {n for n, *_ in installed}
    inv, got = garrison_findings(images.app_oci_ref, db, tmp_path, "npm")
    assert sorted((p.name, p.version) for p in inv.packages if p.type.value == "npm") == sorted(
        (n, v) for n, v, *_ in installed
    )
    expected = oracle_pairs(installed, affected_index("npm", "npm", str.lower), semver_lt)
    assert expected, "lodash 4.17.15 is affected by NSWG-ECO-516 in the mirror"
    assert got == expected, diff(got, expected)


# --------------------------------------------------------------------------------------------- speed


def test_thousand_packages_with_the_real_db(images: Any, db: Any, tmp_path: Path) -> None:
    """1,000 packages (the app image's real packages, repeated under distinct layers) against the real
    database, with a fresh database handle so that nothing is cached. Prints the time (not asserted)."""
    from garrison.api import inventory
    from garrison.config import Settings
    from garrison.matching import match_inventory
    from garrison.model import Inventory
    from garrison.vulndb.store import AdvisoryDB

    inv = inventory(images.app_oci_ref, Settings(cache_dir=tmp_path, no_cache=True))
    pkgs = [replace(p, layer=f"copy{i}") for i in range(6) for p in inv.packages][:1000]
    big = Inventory(inv.artifact, inv.os, tuple(pkgs))
    assert len(big.packages) == 1000
    with AdvisoryDB.open(real_db_path()) as fresh:
        start = time.perf_counter()
        result = match_inventory(big, fresh)
        elapsed = time.perf_counter() - start
    print(f"match_inventory: 1000 packages, {len(result.findings)} findings, {elapsed * 1000:.1f} ms")
    assert len(result.findings) > 500  # its speed is bench/bench_matching.py's to measure, not a test's


def test_withdrawn_records_never_match(db: Any) -> None:
    """Withdrawn OSV records are dropped at ingest: a package inside a withdrawn record's range is not
    reported for it (picked from the real mirror, so the case is real)."""
    from garrison.matching import match_inventory
    from garrison.model import Artifact, Inventory, Package, PackageType, SourceKind

    with zipfile.ZipFile(mirror_zip("PyPI")) as zf:
        for name in zf.namelist():
            rec = json.loads(zf.read(name))
            if not rec.get("withdrawn"):
                continue
            aff = next((a for a in rec.get("affected", []) if a.get("versions")), None)
            if aff is not None:
                break
        else:
            pytest.skip("no withdrawn PyPI record with a versions list in the mirror")
    pkg = Package(aff["package"]["name"], aff["versions"][0], PackageType.PYTHON)
    found = match_inventory(Inventory(Artifact("x", SourceKind.DIR), None, (pkg,)), db).findings
    assert rec["id"] not in {i for f in found for i in (f.advisory.id, *f.merged_ids)}
    assert db.advisories([rec["id"]]) == {}
