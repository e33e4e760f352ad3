#!/usr/bin/env bash
# Run the whole test suite: real images (built once and cached in .cache/test-images), real registries,
# real advisory data from ../shared/vulndb. Sets up first (a no-op when already done).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
