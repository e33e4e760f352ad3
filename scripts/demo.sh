#!/usr/bin/env bash
# Set up everything and run garrison's main job end to end:
#   bash scripts/demo.sh                 build a real image (Debian 12 from debootstrap + an app layer with
#                                        real old pip and npm packages; cached), then scan it
#   bash scripts/demo.sh IMAGE-REFERENCE scan the image you name instead (registry ref, oci:DIR, docker-archive:FILE…)
# The advisory mirror is ../shared/vulndb/osv when it exists (offline), else GARRISON_MIRROR or the public OSV bucket.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ref="${1:-}"
if [ -z "$ref" ]; then
  echo "Building the demo image (first time: a few minutes; then cached in .cache/test-images)…" >&2
  ref=$(.venv/bin/python -c "
import sys; sys.path.insert(0, '.')
from tests.support.images import test_images
print(test_images().app_oci_ref)")
fi
if [ -z "${GARRISON_MIRROR:-}" ] && [ -d ../shared/vulndb/osv ]; then
  export GARRISON_MIRROR="file://$(cd ../shared/vulndb/osv && pwd)"
fi
echo "+ garrison sbom $ref" >&2
.venv/bin/garrison sbom "$ref" | head -n 25
echo "+ garrison scan image $ref --severity HIGH,CRITICAL" >&2
.venv/bin/garrison scan image "$ref" --severity HIGH,CRITICAL
