#!/usr/bin/env bash
# Run the whole test suite (real images, real registries, real advisory data; see docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest -q "$@"
