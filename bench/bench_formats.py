"""Output formats benchmark: what each SBOM and report format costs on a warm run of the app test image,
garrison against trivy's CycloneDX, side by side.

Run:  .venv/bin/python bench/bench_formats.py        (builds or reuses the test images)

Every run is warm (the layer cache is filled first), so the numbers are start-up + cache read +
rendering: the difference between two formats is the renderer's cost. Best of BENCH_REPEAT runs (default 5).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_inventory import GARRISON, best, ensure_tools, run  # noqa: E402

REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))


def main() -> None:
    from tests.support.images import test_images

    trivy, _ = ensure_tools()
    images = test_images()
    archive = str(images.app_archive)
    ref = f"docker-archive:{archive}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GARRISON_CACHE_DIR": f"{tmp}/g", "TRIVY_CACHE_DIR": f"{tmp}/t"}
        run([str(GARRISON), "-q", "sbom", ref, "-f", "json"], env)  # fill the layer cache
        trivy_cmd = [str(trivy), "image", "-q", "--scanners", "", "--input", archive, "-f", "cyclonedx"]
        run(trivy_cmd, env)
        rows: list[tuple[str, float, float]] = []
        for fmt in ("json", "cyclonedx", "spdx-json", "table"):
            r = best([run([str(GARRISON), "-q", "sbom", ref, "-f", fmt], env) for _ in range(REPEAT)])
            rows.append((f"garrison sbom -f {fmt}", r.seconds, r.max_rss_mb))
        t = best([run(trivy_cmd, env) for _ in range(REPEAT)])
        rows.append(("trivy image -f cyclonedx", t.seconds, t.max_rss_mb))
    base = rows[0][1]
    print(f"app image, docker-archive, warm, best of {REPEAT}")
    print(f"{'command':<28} {'seconds':>8} {'x json':>7} {'x trivy':>8} {'peak MB':>8}")
    for name, sec, mb in rows:
        print(f"{name:<28} {sec:8.3f} {sec / base:7.2f} {sec / t.seconds:8.2f} {mb:8.0f}")


if __name__ == "__main__":
    main()
