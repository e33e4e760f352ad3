"""Posture benchmark: garrison vs Checkov vs ``trivy config`` on the same generated manifests.

Generates realistic charts (a Deployment, StatefulSet, DaemonSet or CronJob with its Service,
ConfigMap, Secret, ServiceAccount, Role and RoleBinding, NetworkPolicy, Ingress, HPA and PDB; about a
third hardened, the rest with the usual mistakes) as multi-document YAML files, one file per chart, and
runs each tool as a subprocess on the folder: wall time and peak RSS (``wait4``) side by side.

    python bench/bench_posture.py                 # 1,000 and 10,000 objects, all three tools
    python bench/bench_posture.py --sizes 1000 --tools garrison
    python bench/bench_posture.py --diff          # also the differential verdicts (see docs/posture.md)
    python bench/bench_posture.py --sizes 1000 --repeat 3   # each tool three times, the median run
    python bench/bench_posture.py --sizes 1000 --repeat 5 --floor   # also what any Python tool pays

The reference tools live in a venv of their own: ``python3 -m venv bench/.tools/posture &&
bench/.tools/posture/bin/pip install checkov``; trivy at ``bench/.tools/venv/bin/trivy``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
GARRISON = [str(ROOT / ".venv" / "bin" / "garrison")]
CHECKOV = ROOT / "bench" / ".tools" / "posture" / "bin" / "checkov"
TRIVY = ROOT / "bench" / ".tools" / "venv" / "bin" / "trivy"
DIGEST = "sha256:" + "9f" * 32


# ---------------------------------------------------------------------------------------------- corpus


def _container(rng: random.Random, name: str, hardened: bool) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "ports": [{"containerPort": rng.choice([8080, 8443, 3000, 9090])}]}
    if hardened:
        c["image"] = f"registry.example.com/team/{name}:1.{rng.randint(0, 9)}.{rng.randint(0, 20)}@{DIGEST}"
        c["imagePullPolicy"] = "Always"
        c["resources"] = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}
        c["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": c["ports"][0]["containerPort"]}}
        c["readinessProbe"] = {"httpGet": {"path": "/ready", "port": c["ports"][0]["containerPort"]}}
        c["securityContext"] = {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        return c
    c["image"] = rng.choice([f"{name}:latest", name, f"docker.io/library/{name}:1.25", f"quay.io/org/{name}:v2"])
    if rng.random() < 0.5:
        c["resources"] = {"requests": {"cpu": "50m", "memory": "64Mi"}}
    sc: dict[str, Any] = {}
    if rng.random() < 0.15:
        sc["privileged"] = True
    if rng.random() < 0.2:
        sc["capabilities"] = {"add": [rng.choice(["NET_ADMIN", "SYS_ADMIN", "NET_RAW", "SYS_PTRACE"])]}
    if rng.random() < 0.3:
        sc["runAsUser"] = 0
    if rng.random() < 0.3:
        sc["allowPrivilegeEscalation"] = True
    if sc:
        c["securityContext"] = sc
    if rng.random() < 0.3:
        c["env"] = [
            {"name": "DB_PASSWORD", "value": "changeme"},
            {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": f"{name}-secret", "key": "key"}}},
        ]
    if rng.random() < 0.4:
        c["livenessProbe"] = {"tcpSocket": {"port": c["ports"][0]["containerPort"]}}
    if rng.random() < 0.1:
        c["ports"][0]["hostPort"] = c["ports"][0]["containerPort"]
    return c


def _pod(rng: random.Random, app: str, hardened: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceAccountName": app,
        "containers": [_container(rng, app, hardened)],
    }
    if rng.random() < 0.3:
        spec["containers"].append(_container(rng, f"{app}-sidecar", hardened))
    if rng.random() < 0.3:
        spec["initContainers"] = [_container(rng, f"{app}-init", hardened)]
    if hardened:
        spec["automountServiceAccountToken"] = False
        spec["securityContext"] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 10001}
    else:
        if rng.random() < 0.1:
            spec["hostNetwork"] = True
        if rng.random() < 0.05:
            spec["hostPID"] = True
        if rng.random() < 0.15:
            spec["volumes"] = [
                {"name": "host", "hostPath": {"path": rng.choice(["/var/run/docker.sock", "/var/log", "/data"])}}
            ]
            spec["containers"][0]["volumeMounts"] = [{"name": "host", "mountPath": "/host"}]
    return {"metadata": {"labels": {"app": app, "tier": rng.choice(["web", "api", "worker"])}}, "spec": spec}


def chart(rng: random.Random, i: int) -> list[dict[str, Any]]:
    """One application's objects (10 or 11)."""
    app = f"app{i:05d}"
    ns = f"team{i % 37:02d}" if rng.random() > 0.05 else "default"
    hardened = rng.random() < 0.35
    meta = {"name": app, "namespace": ns, "labels": {"app": app, "app.kubernetes.io/managed-by": "Helm"}}
    kind = rng.choices(["Deployment", "StatefulSet", "DaemonSet", "CronJob"], weights=[70, 15, 7, 8])[0]
    pod = _pod(rng, app, hardened)
    if kind == "CronJob":
        pod["spec"]["restartPolicy"] = "OnFailure"
        workload: dict[str, Any] = {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": meta,
            "spec": {"schedule": "*/15 * * * *", "jobTemplate": {"spec": {"template": pod}}},
        }
    else:
        workload = {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": meta,
            "spec": {"selector": {"matchLabels": {"app": app}}, "template": pod},
        }
        if kind != "DaemonSet":
            workload["spec"]["replicas"] = rng.randint(1, 5)
    svc_type = "ClusterIP" if hardened or rng.random() < 0.7 else rng.choice(["LoadBalancer", "NodePort"])
    port = rng.choice([80, 443, 6379, 5432, 9200, 3000])
    objs: list[dict[str, Any]] = [
        workload,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "type": svc_type,
                "selector": {"app": app},
                "ports": [{"name": "http", "port": port, "targetPort": 8080}],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {**meta, "name": f"{app}-config"},
            "data": {
                "LOG_LEVEL": "info",
                **({"db_password": "hunter2"} if not hardened and rng.random() < 0.2 else {}),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {**meta, "name": f"{app}-secret"},
            "type": "Opaque",
            "data": {"key": "c2VjcmV0"},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta,
            **({"automountServiceAccountToken": False} if hardened else {}),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "watch", "list"]},
                *(
                    []
                    if hardened
                    else [
                        {
                            "apiGroups": [""],
                            "resources": rng.choice([["secrets"], ["*"], ["pods/exec"]]),
                            "verbs": rng.choice([["get", "list"], ["*"], ["create"]]),
                        }
                    ]
                ),
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": app},
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": app if hardened or rng.random() < 0.8 else "default",
                    "namespace": ns,
                }
            ],
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": meta,
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": app},
                "minReplicas": 2,
                "maxReplicas": 10,
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta,
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": app}}},
        },
    ]
    if hardened or rng.random() < 0.4:
        objs.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": meta,
                "spec": {
                    "podSelector": {"matchLabels": {"app": app}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"podSelector": {}}]}],
                },
            }
        )
    ingress: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta,
        "spec": {
            "rules": [
                {
                    "host": f"{app}.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": app, "port": {"number": port}}},
                            }
                        ]
                    },
                }
            ]
        },
    }
    if hardened or rng.random() < 0.5:
        ingress["spec"]["tls"] = [{"hosts": [f"{app}.example.com"], "secretName": f"{app}-tls"}]
    objs.append(ingress)
    return objs


def generate(folder: Path, objects: int, seed: int = 7) -> int:
    """Write about ``objects`` objects into ``folder`` (one file per chart); returns the exact count."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n = i = 0
    while n < objects:
        objs = chart(rng, i)[: objects - n]
        (folder / f"{i:05d}.yaml").write_text(yaml.safe_dump_all(objs, sort_keys=False))
        n += len(objs)
        i += 1
    return n


# ---------------------------------------------------------------------------------------------- runs


def measure(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, float, int, str]:
    """(wall seconds, CPU seconds (user + system), peak RSS MiB, exit code, stdout) of a subprocess."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode, text


def _fresh_bytecode() -> None:
    """Compile garrison's modules first, as ``pip install`` does: a development tree edited under
    ``PYTHONDONTWRITEBYTECODE`` would otherwise compile its changed modules on every timed run (~30 ms
    of a 1,000-object run), which no installed copy does (nor do the reference tools' venvs)."""
    python = ROOT / ".venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "compileall", "-q", str(ROOT / "src" / "garrison")], check=False)


def tool_commands(folder: Path, out_dir: Path) -> dict[str, list[str]]:
    cmds = {"garrison": [*GARRISON, "posture", str(folder), "-f", "json", "-o", str(out_dir / "garrison.json"), "-q"]}
    if CHECKOV.exists():
        cmds["checkov"] = [
            str(CHECKOV),
            "-d",
            str(folder),
            "--framework",
            "kubernetes",
            "--skip-download",
            "-o",
            "json",
            "--quiet",
            "--compact",
        ]
    if TRIVY.exists():
        cmds["trivy"] = [
            str(TRIVY),
            "config",
            str(folder),
            "-f",
            "json",
            "-q",
            "--skip-check-update",
            "--timeout",
            "60m",
        ]
    return cmds


# ---------------------------------------------------------------------------------------------- differential


def split_corpus(src: Path, dest: Path, extra: list[Path]) -> int:
    """One object per file (so that a file names the object for every tool): the generated charts
    and ``extra`` manifests (the control fixtures, Kubernetes' PSS fixtures)."""
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    for i, f in enumerate(sorted(src.glob("*.yaml")) + extra):
        suffix = f"-f{i}" if f in extra else ""
        for doc in yaml.safe_load_all(f.read_text()):
            if isinstance(doc, dict) and doc.get("kind"):
                if suffix:
                    _rename(doc, suffix)
                (dest / f"{n:05d}-{doc['kind'].lower()}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
                n += 1
    return n


#: Built-in ClusterRoles a fixture may bind (their names stay).
_BUILTIN_ROLES = frozenset({"cluster-admin", "admin", "edit", "view"})


def _rename(doc: dict[str, Any], suffix: str) -> None:
    """Give a fixture file's objects names of their own (the fixtures reuse ``app``, ``web`` and
    ``shop``), so that objects of different fixtures do not bind or select each other in one folder."""
    meta = doc.setdefault("metadata", {})
    meta["name"] = f"{meta.get('name', 'x')}{suffix}"
    if meta.get("namespace"):
        meta["namespace"] = f"{meta['namespace']}{suffix}"
    ref = doc.get("roleRef")
    if isinstance(ref, dict) and ref.get("name") not in _BUILTIN_ROLES:
        ref["name"] = f"{ref['name']}{suffix}"


def _garrison_verdicts(path: Path) -> dict[str, set[str]]:
    doc = json.loads(path.read_text())
    out: dict[str, set[str]] = {}
    for f in doc["findings"]:
        src = Path(f["misconfiguration"]["object"]["source"]).name
        out.setdefault(f["rule"]["id"], set()).add(src)
    return out


def _checkov_verdicts(text: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    doc = json.loads(text) if text.strip() else {}
    docs = doc if isinstance(doc, list) else [doc]
    failed: dict[str, set[str]] = {}
    passed: dict[str, set[str]] = {}
    for d in docs:
        res = d.get("results", {}) if isinstance(d, dict) else {}
        for key, target in (("failed_checks", failed), ("passed_checks", passed)):
            for c in res.get(key, []):
                target.setdefault(c["check_id"], set()).add(Path(c["file_path"]).name)
    return failed, passed


def _ksv(ident: str) -> str:
    """``KSV-0017``, ``KSV017`` and ``AVD-KSV-0017`` → ``KSV17`` (trivy changed its spelling)."""
    import re

    m = re.search(r"KSV-?0*(\d+)", ident)
    return f"KSV{m.group(1)}" if m else ident


def _trivy_verdicts(text: str) -> dict[str, set[str]]:
    doc = json.loads(text) if text.strip() else {}
    out: dict[str, set[str]] = {}
    for r in doc.get("Results") or []:
        for m in r.get("Misconfigurations") or []:
            if m.get("Status", "FAIL") == "FAIL":
                out.setdefault(_ksv(m["ID"]), set()).add(Path(r["Target"]).name)
    return out


def differential(base: Path, size: int) -> int:
    """Verdicts per object and overlapping control, garrison vs Checkov vs trivy."""
    sys.path.insert(0, str(ROOT / "src"))
    from garrison.posture.controls import builtin_controls

    corpus = base / f"corpus-{size}"
    if not corpus.exists():
        generate(corpus, size)
    extra = sorted((ROOT / "tests" / "posture" / "controls").glob("*/*.yaml"))
    extra += sorted((ROOT.parent / "shared" / "reference" / "pss").glob("*/v*/*/*.yaml"))
    flat = base / "diff-corpus"
    if flat.exists():
        shutil.rmtree(flat)
    n = split_corpus(corpus, flat, extra)
    files = {p.name for p in flat.glob("*.yaml")}
    out_dir = base / "diff-out"
    out_dir.mkdir(exist_ok=True)
    cmds = tool_commands(flat, out_dir)
    _, _, _, _, _ = measure(cmds["garrison"])
    g = _garrison_verdicts(out_dir / "garrison.json")
    ck_failed: dict[str, set[str]] = {}
    ck_passed: dict[str, set[str]] = {}
    tv: dict[str, set[str]] = {}
    if "checkov" in cmds:
        ck_failed, ck_passed = _checkov_verdicts(measure(cmds["checkov"])[4])
    if "trivy" in cmds:
        tv = _trivy_verdicts(measure(cmds["trivy"])[4])
    print(f"differential on {n} objects (one per file)")
    report: dict[str, Any] = {}
    for c in builtin_controls():
        if c.family not in ("pod-security", "workload", "rbac", "network"):
            continue
        mine = g.get(c.id, set())
        for tool, ids, verdicts in (
            ("checkov", c.equivalents.get("checkov", ()), ck_failed),
            ("trivy", c.equivalents.get("trivy", ()), tv),
        ):
            ids = tuple(dict.fromkeys(_ksv(i) if tool == "trivy" else i for i in ids if not i.startswith("AVD-")))
            if not ids or (tool == "checkov" and not ck_failed) or (tool == "trivy" and not tv):
                continue
            theirs = set().union(*(verdicts.get(i, set()) for i in ids))
            # Checkov only judges objects it has a check for: compare where it said pass or fail.
            ck_judged = theirs | set().union(*(ck_passed.get(i, set()) for i in ids))
            judged = ck_judged if tool == "checkov" else files
            only_g = sorted((mine - theirs) & judged)
            only_t = sorted(theirs - mine)
            both = len(mine & theirs)
            report[f"{c.id}~{tool}:{'+'.join(ids)}"] = {"both": both, "only_garrison": only_g, "only_tool": only_t}
            pair = f"{c.id:<13} {tool:<8} {'+'.join(ids):<28}"
            print(f"{pair} agree-fail {both:5}  only garrison {len(only_g):5}  only {tool} {len(only_t):5}")
    (base / "differential.json").write_text(json.dumps(report, indent=1))
    print(f"details: {base / 'differential.json'}")
    return 0


# ---------------------------------------------------------------------------------------------- floor

#: Reads every YAML file of a folder with ryaml and nothing else (no checks, no objects kept apart):
#: what a Python tool pays at least to have the input, in one process (argv[2] == "1") or in two
#: processes that split the files by bytes and do not hand anything back (argv[2] == "2").
_READ_ONLY = """
import os, sys, ryaml
files = sorted(os.path.join(sys.argv[1], n) for n in os.listdir(sys.argv[1]) if n.endswith(".yaml"))
sizes = [os.path.getsize(f) for f in files]
cut, acc = len(files), 0
if sys.argv[2] == "2":
    for cut, size in enumerate(sizes):
        if acc >= sum(sizes) / 2:
            break
        acc += size
    pid = os.fork()
    files = files[:cut] if pid == 0 else files[cut:]
for f in files:
    with open(f, encoding="utf-8") as fh:
        ryaml.loads_all(fh.read())
if sys.argv[2] == "2":
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
"""

#: Writes garrison's report (read from argv[1] first, not timed) with orjson: what writing it costs at least.
_WRITE_ONLY = """
import sys, time, orjson
doc = orjson.loads(open(sys.argv[1], "rb").read())
start = time.perf_counter()
with open(sys.argv[2], "wb") as out:
    out.write(orjson.dumps(doc))
print(time.perf_counter() - start)
"""


def floor(folder: Path, out_dir: Path, repeat: int, rows: list[tuple[int, str, float, float, float, int]]) -> None:
    """What a Python tool cannot avoid at this size, next to garrison and to each tool's time / 50:
    interpreter start, reading the input with ryaml alone (one process, and split over two), and
    writing garrison's report with orjson."""
    python = str(ROOT / ".venv" / "bin" / "python")
    n = len(list(folder.glob("*.yaml")))

    def best(cmd: list[str]) -> tuple[float, float]:
        runs = sorted(measure(cmd)[0] for _ in range(repeat))
        return runs[0], runs[len(runs) // 2]

    lines: list[tuple[str, float, float]] = [
        ("interpreter start (python -c pass)", *best([python, "-c", "pass"])),
        ("interpreter + ryaml reading the files, 1 process", *best([python, "-c", _READ_ONLY, str(folder), "1"])),
        ("interpreter + ryaml reading the files, 2 processes", *best([python, "-c", _READ_ONLY, str(folder), "2"])),
    ]
    # garrison's own fixed cost: its imports alone, and a whole run on one object (controls loaded, the
    # report written): what is left of the budget for the objects themselves.
    imports = "import garrison.cli.main, garrison.cli.posture, garrison.services.posture, garrison.report.json_report"
    lines.append(
        ("garrison: interpreter + imports (CLI, engine, findings model, renderer)", *best([python, "-c", imports]))
    )
    one = out_dir / "one-object.yaml"
    one.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one, namespace: default}\n")
    lines.append(
        (
            "garrison posture on 1 object (-f json)",
            *best([*GARRISON, "posture", str(one), "-f", "json", "-o", os.devnull, "-q"]),
        )
    )
    report = out_dir / "garrison.json"
    if report.exists():
        writes = sorted(
            float(measure([python, "-c", _WRITE_ONLY, str(report), str(out_dir / "floor.json")])[4] or "nan")
            for _ in range(repeat)
        )
        label = f"writing garrison's report with orjson ({report.stat().st_size >> 10} KiB)"
        lines.append((label, writes[0], writes[len(writes) // 2]))
    size = next((r[0] for r in rows), 0)
    for tool in ("garrison", "checkov", "trivy"):
        got = [r for r in rows if r[1] == tool and r[0] == size]
        if got:
            label = "garrison posture, all of it" if tool == "garrison" else f"{tool} / 50 (the target)"
            secs = got[0][2] if tool == "garrison" else got[0][2] / 50
            lines.append((label, secs, secs))
    print(f"\nfloor: {size} objects in {n} files; min / median of {repeat} runs (tools: their median run)")
    for label, lo, med in lines:
        print(f"  {label:<72} {lo * 1000:7.1f} ms {med * 1000:7.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--tools", default="garrison,checkov,trivy")
    ap.add_argument("--keep", type=Path, default=None, help="write the corpus here and keep it")
    ap.add_argument("--repeat", type=int, default=1, help="run each tool N times and report the median run")
    ap.add_argument("--diff", action="store_true", help="the differential verdicts instead of timings")
    ap.add_argument("--floor", action="store_true", help="also what any Python tool pays at the first size")
    args = ap.parse_args()
    if args.diff:
        base = args.keep or Path(tempfile.mkdtemp(prefix="diff-posture-"))
        return differential(base, int(args.sizes.split(",")[0]))
    tools = args.tools.split(",")
    if "garrison" in tools:
        _fresh_bytecode()
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-posture-"))
    rows: list[tuple[int, str, float, float, float, int]] = []
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            folder = base / f"corpus-{size}"
            if folder.exists():
                shutil.rmtree(folder)
            n = generate(folder, size)
            out_dir = base / f"out-{size}"
            out_dir.mkdir(exist_ok=True)
            for tool, cmd in tool_commands(folder, out_dir).items():
                if tool not in tools:
                    continue
                runs = sorted((measure(cmd) for _ in range(args.repeat)), key=lambda r: r[0])
                secs, cpu, mib, code, stdout = runs[len(runs) // 2]  # the median run by wall time
                if tool != "garrison":
                    (out_dir / f"{tool}.json").write_text(stdout)
                count = _count(tool, out_dir)
                line = f"{n:>6} objects  {tool:<9} {secs:8.2f} s  cpu {cpu:7.2f} s  {mib:7.0f} MiB"
                print(f"{line}  exit {code}  findings {count}", flush=True)
                rows.append((n, tool, secs, cpu, mib, count))
            if args.floor and n == rows[0][0]:
                floor(folder, out_dir, max(args.repeat, 5), [r for r in rows if r[0] == n])
        print()
        head = f"{'objects':>7}  {'tool':<9} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9}"
        print(f"{head} {'findings':>9} {'wall vs garrison':>17}")
        for n, tool, secs, cpu, mib, count in rows:
            g = next((r for r in rows if r[0] == n and r[1] == "garrison"), None)
            ratio = f"{secs / g[2]:16.1f}x" if g else ""
            print(f"{n:>7}  {tool:<9} {secs:8.2f} {cpu:8.2f} {mib:9.0f} {count:9} {ratio}")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


def _count(tool: str, out_dir: Path) -> int:
    p = out_dir / f"{tool}.json"
    try:
        doc = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return -1
    if tool == "garrison":
        return len(doc.get("findings", []))
    if tool == "checkov":
        docs = doc if isinstance(doc, list) else [doc]
        return sum(len(d.get("results", {}).get("failed_checks", [])) for d in docs if isinstance(d, dict))
    return sum(len(r.get("Misconfigurations") or []) for r in doc.get("Results") or [])


if __name__ == "__main__":
    sys.exit(main())
