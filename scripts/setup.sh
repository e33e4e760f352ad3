#!/usr/bin/env bash
# Set up everything garrison and its tests need on a fresh Debian 12 machine (as root):
# Debian packages (debootstrap, skopeo, docker-registry, …), a virtual environment in .venv with
# garrison and its pinned development dependencies. Idempotent: a second run does almost nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import garrison, pytest, hypothesis, jwt, nodesemver" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.garrison-installed ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch .venv/.garrison-installed
fi
