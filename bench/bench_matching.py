"""Matching benchmark: time to match the app image's packages and two synthetic inventories against the
real advisory database (a worst case where every package is vulnerable, and a realistic 1,000-package
maintained inventory whose packages sit at their newest fixed version), and what matching adds to an
end-to-end ``garrison scan image``.

    .venv/bin/python bench/bench_matching.py

Uses the real test images (built or reused) and a database built from ../shared/vulndb/osv (cached in
.cache/test-images like the tests' database). Targets (issue 3): matching 1,000 packages <= 50 ms;
scan image <= 1.10 x the inventory-only run.
"""

from __future__ import annotations

import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from garrison import api  # noqa: E402
from garrison.config import Settings  # noqa: E402
from garrison.matching.matcher import match_inventory  # noqa: E402
from garrison.model import Artifact, Inventory, OSInfo, Package, PackageType, SourceKind  # noqa: E402
from garrison.vulndb.store import AdvisoryDB  # noqa: E402
from garrison.vulndb.versions import scheme_for  # noqa: E402

GARRISON = ROOT / ".venv" / "bin" / "garrison"
MIX = {
    "Debian:12": (PackageType.DEB, 600),
    "PyPI": (PackageType.PYTHON, 200),
    "npm": (PackageType.NPM, 100),
    "Go": (PackageType.GO, 100),
}


def synthetic_inventory(db_path: Path, seed: int = 11) -> Inventory:
    """Up to 1,000 packages (the mirror has no Go data: 900) whose names really occur in the database (so
    most are looked up for real), with versions low enough to hit many ranges: the worst case for a matcher."""
    rng = random.Random(seed)
    conn = sqlite3.connect(db_path)
    pkgs: list[Package] = []
    for eco, (ptype, n) in MIX.items():
        names = [r[0] for r in conn.execute("SELECT DISTINCT name FROM affected WHERE ecosystem = ?", (eco,))]
        rng.shuffle(names)
        for name in names[:n]:
            version = {"Debian:12": "1.0-1", "PyPI": "1.0.0", "npm": "1.0.0", "Go": "v1.0.0"}[eco]
            pkgs.append(
                Package(
                    name,
                    version,
                    ptype,
                    source_name=name if ptype is PackageType.DEB else "",
                    source_version=version if ptype is PackageType.DEB else "",
                )
            )
    conn.close()
    return Inventory(Artifact("synthetic", SourceKind.DIR), OSInfo("debian", "12", "bookworm"), tuple(pkgs))


REALISTIC_MIX = {"Debian:12": (PackageType.DEB, 650), "PyPI": (PackageType.PYTHON, 250), "npm": (PackageType.NPM, 100)}


def _newest_fix(db: AdvisoryDB, eco: str, name: str) -> str | None:
    """The highest fixed version of any range for the package (any event value when nothing is fixed)."""
    scheme = scheme_for(eco)
    best: tuple[object, str] | None = None
    fallback: tuple[object, str] | None = None
    for entry in db.affected(eco, name):
        for rng in entry.ranges:
            for ev in rng.events:
                if ev.value == "0" or rng.type not in ("ECOSYSTEM", "SEMVER"):
                    continue
                try:
                    k = scheme.key(ev.value)
                except ValueError:
                    continue
                if ev.kind == "fixed" and (best is None or k > best[0]):
                    best = (k, ev.value)
                if fallback is None or k > fallback[0]:
                    fallback = (k, ev.value)
    chosen = best or fallback
    return chosen[1] if chosen else None


def realistic_inventory(db_path: Path, seed: int = 12) -> Inventory:
    """1,000 packages whose names occur in the database, each at (or above) its newest fixed version: a
    maintained image. Every range of every advisory is still evaluated, but few findings are made (only
    advisories without a fix, or fixed only on another branch)."""
    rng = random.Random(seed)
    conn = sqlite3.connect(db_path)
    pkgs: list[Package] = []
    with AdvisoryDB.open(db_path) as db:
        for eco, (ptype, n) in REALISTIC_MIX.items():
            names = [r[0] for r in conn.execute("SELECT name FROM affected WHERE ecosystem = ? ORDER BY name", (eco,))]
            rng.shuffle(names)
            for name in names[:n]:
                version = _newest_fix(db, eco, name) or "0"
                deb = ptype is PackageType.DEB
                pkgs.append(
                    Package(
                        name, version, ptype, source_name=name if deb else "", source_version=version if deb else ""
                    )
                )
    conn.close()
    return Inventory(Artifact("realistic", SourceKind.DIR), OSInfo("debian", "12", "bookworm"), tuple(pkgs))


def time_match(db_path: Path, inv: Inventory, repeat: int = 5) -> tuple[float, float, int]:
    """(cold ms with a fresh connection, best warm ms, findings)."""
    cold = []
    findings = 0
    for _ in range(repeat):
        with AdvisoryDB.open(db_path) as db:
            t0 = time.perf_counter()
            findings = len(match_inventory(inv, db).findings)
            cold.append((time.perf_counter() - t0) * 1000)
    with AdvisoryDB.open(db_path) as db:
        match_inventory(inv, db)
        warm = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            match_inventory(inv, db)
            warm.append((time.perf_counter() - t0) * 1000)
    return statistics.median(cold), min(warm), findings


def wall(cmd: list[str], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    from tests.support.images import test_images
    from tests.test_oracle_support import real_db_path

    imgs = test_images()
    db_path = real_db_path()
    with tempfile.TemporaryDirectory(prefix="garrison-bench-") as tmp:
        settings = Settings(cache_dir=Path(tmp) / "cache", db_path=str(db_path), offline=True)
        app = api.inventory(imgs.app_oci_ref, settings)
        c, w, n = time_match(db_path, app)
        print(f"match app image ({len(app.packages)} packages): cold {c:6.1f} ms, warm {w:6.1f} ms, {n} findings")
        syn = synthetic_inventory(db_path)
        c, w, n = time_match(db_path, syn)
        print(
            f"match worst case: synthetic, all versions vulnerable ({len(syn.packages)} packages): "
            f"cold {c:6.1f} ms, warm {w:6.1f} ms, {n} findings"
        )
        real = realistic_inventory(db_path)
        c, w, n = time_match(db_path, real)
        print(
            f"match realistic: synthetic, maintained ({len(real.packages)} packages): "
            f"cold {c:6.1f} ms, warm {w:6.1f} ms, {n} findings   target <= 50 ms"
        )

        for label, ref in (("debian OCI", imgs.debian_oci_ref), ("app OCI", imgs.app_oci_ref)):
            common = ["-q", "--cache-dir", str(Path(tmp) / "cache"), "-f", "json"]
            env_db = ["--db", str(db_path), "--offline"]
            # warm the layer cache once, then compare warm runs (the layer walk is the same in both)
            subprocess.run([str(GARRISON), "sbom", ref, *common], check=True, stdout=subprocess.DEVNULL)
            inv_t = wall([str(GARRISON), "sbom", ref, *common])
            scan_t = wall([str(GARRISON), "scan", "image", ref, "--scanners", "vuln", *common, *env_db])
            cold_inv: list[float] = []
            cold_scan: list[float] = []
            for i in range(3):
                for which, out in (("sbom", cold_inv), ("scan", cold_scan)):
                    cache = Path(tmp) / f"cold-{which}-{i}"
                    # like for like: the scan adds matching alone (the secret scanner is off)
                    scan_cmd = [str(GARRISON), "scan", "image", ref, "--scanners", "vuln"]
                    cmd = [str(GARRISON), "sbom", ref] if which == "sbom" else scan_cmd
                    cmd += ["-q", "--cache-dir", str(cache), "-f", "json"]
                    if which == "scan":
                        cmd += env_db
                    out.append(wall(cmd, repeat=1))
            ci, cs = statistics.median(cold_inv), statistics.median(cold_scan)
            print(
                f"{label:11} inventory-only: cold {ci:5.2f} s, warm {inv_t:5.2f} s | scan image: cold {cs:5.2f} s"
                f" (x{cs / ci:4.2f}), warm {scan_t:5.2f} s (x{scan_t / inv_t:4.2f})   target x1.10"
            )
    print(f"(machine load now: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
