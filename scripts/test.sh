#!/usr/bin/env bash
# Run the whole test suite: real images (built once and cached in .cache/test-images), real registries,
# real advisory data from ../shared/vulndb. Sets up first (a no-op when already done).
#   bash scripts/test.sh              everything (what CI runs)
#   bash scripts/test.sh --fast       the fast subset for everyday work (-m "not slow", under a minute)
#   bash scripts/test.sh tests/cli    any pytest arguments pass through
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# --fast: the everyday subset, no image builds, registries, dockerd or real-tool oracles (-m "not slow").
if [ "${1:-}" = "--fast" ]; then
  shift
  set -- -m "not slow" "$@"
fi
exec .venv/bin/python -m pytest -q "$@"
