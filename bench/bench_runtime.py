"""Runtime engine throughput: audit events per second on one core, from a JSON-lines file, through
garrison's file input, Falco's k8saudit rules and garrison's control-plane rules together, with alert
de-duplication — the path of ``garrison runtime audit FILE``.

The file is built from real events: the 129 recorded from a real kube-apiserver (../shared/k8s/recorded)
and Falco's 47 audit traces, repeated to --events lines. Also measured: the JSON parsers alone (the
standard library's json, orjson, msgspec with the top-level keys only), and the engine without its index
(every rule on every event).

    .venv/bin/python bench/bench_runtime.py [--events 100000] [--cpu 0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GARRISON_SHARED") or ROOT.parent / "shared")
FALCO = SHARED / "reference" / "falco"
RECORDED = SHARED / "k8s" / "recorded" / "audit-events.jsonl"


def build_file(path: Path, n: int) -> int:
    lines = [line for line in RECORDED.read_bytes().splitlines() if line.strip()]
    for trace in sorted((FALCO / "k8s_audit_trace_files").glob("*.json")):
        if trace.name != "fal_01_003.json":  # the non-event line is a test of bad input, not of speed
            lines += [line for line in trace.read_bytes().splitlines() if line.strip()]
    with path.open("wb") as f:
        written = 0
        while written < n:
            for line in lines:
                f.write(line + b"\n")
                written += 1
                if written == n:
                    break
    return written


def timed(fn) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: the first allowed)")
    args = ap.parse_args()
    if not RECORDED.is_file() or not FALCO.is_dir():
        print(f"needs {RECORDED} and {FALCO}", file=sys.stderr)
        return 2
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {args.cpu if args.cpu is not None else cpus[0]})

    import orjson

    from garrison.runtime.audit_source import ReadStats, read_events
    from garrison.runtime.engine import load_rules
    from garrison.runtime.k8saudit import _HEAD
    from garrison.services.runtime import RULES_DIR, evaluate_events

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.jsonl"
        n = build_file(path, args.events)
        data = path.read_bytes()
        size = len(data)
        lines = data.splitlines()
        core = sorted(os.sched_getaffinity(0))[0]
        print(f"{n} events, {size / 1e6:.1f} MB ({size / n:.0f} bytes/event), 1 core (cpu {core})")

        for name, fn in (
            ("json.loads (standard library)", json.loads),
            ("orjson.loads", orjson.loads),
            ("msgspec, top-level keys (garrison)", _HEAD.decode),
        ):

            def parse_all(fn=fn) -> None:  # type: ignore[no-untyped-def]
                for x in lines:
                    fn(x)

            wall, cpu, _ = timed(parse_all)
            print(f"  parse only  {name:38s} {n / wall:10,.0f} events/s (cpu {n / cpu:,.0f}/s)")

        t0 = time.perf_counter()
        ruleset = load_rules([RULES_DIR / "k8s_audit.yaml", FALCO / "k8s_audit_rules.yaml"])
        load_ms = (time.perf_counter() - t0) * 1000
        print(
            f"rules: {len(ruleset.enabled())} enabled (garrison's k8s_audit.yaml + Falco's k8s_audit_rules.yaml), "
            f"loaded and compiled in {load_ms:.0f} ms"
        )

        def full() -> object:
            stats = ReadStats()
            with path.open("rb") as f:
                return evaluate_events(read_events(f, stats), ruleset)

        def read_only() -> int:
            stats = ReadStats()
            with path.open("rb") as f:
                return sum(1 for _ in read_events(f, stats))

        def read_and_match() -> int:
            stats = ReadStats()
            with path.open("rb") as f:
                return sum(len(ruleset.evaluate(e)) for e in read_events(f, stats))

        read_and_match()  # warm the index (each verb and resource's rules compiled once)
        stages: tuple[tuple[str, Callable[[], int]], ...] = (
            ("file → events (garrison's reader)", read_only),
            ("file → events → rules", read_and_match),
        )
        for name, stage in stages:
            wall, cpu, _ = timed(stage)
            print(f"  {name:48s} {n / wall:10,.0f} events/s (cpu {n / cpu:,.0f}/s)")
        best = None
        for _ in range(3):
            wall, cpu, ev = timed(full)
            if best is None or wall < best[0]:
                best = (wall, cpu, ev)
        assert best is not None
        wall, cpu, ev = best
        print(
            f"  {'file → events → rules → alerts (runtime audit)':48s} {n / wall:10,.0f} events/s "
            f"(cpu {n / cpu:,.0f}/s); "
            f"{ev.matches:,} matches in {len(ev.alerts)} alerts"  # type: ignore[attr-defined]
        )

        compiled = ruleset._compiled["k8s_audit"]
        from garrison.runtime.k8saudit import parse_event

        sample = lines[: min(n, 20_000)]

        def no_index() -> int:
            hits = 0
            for x in sample:
                for e in parse_event(x):
                    hits += sum(1 for c in compiled if c.predicate(e))
            return hits

        wall, cpu, _ = timed(no_index)
        print(f"  without the index (every rule on every event) {len(sample) / wall:10,.0f} events/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
