"""The one way tests find ``../shared``: read-only data that sits next to the repository (the offline OSV
mirror and the KEV catalog in ``vulndb/``, recorded Kubernetes traffic in ``k8s/``). Never copied into
the repository; a test that needs a part that is missing skips with :data:`needs_vulndb`'s reason.

``GARRISON_SHARED`` points elsewhere (another checkout); ``GARRISON_TEST_MIRROR`` replaces ``vulndb/``
alone (kept for the oracle tests' earlier spelling).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.support.cache import REPO_ROOT

#: ``../shared`` (or ``$GARRISON_SHARED``).
SHARED = Path(os.environ.get("GARRISON_SHARED") or REPO_ROOT.parent / "shared")
#: The offline advisory data: ``osv/<Ecosystem>/all.zip`` and ``kev/known_exploited_vulnerabilities.json``.
VULNDB = Path(os.environ.get("GARRISON_TEST_MIRROR") or SHARED / "vulndb")


def shared_path(*parts: str) -> Path:
    """A path below ``../shared`` (it may not exist: check, or use a ``needs_*`` marker)."""
    return SHARED.joinpath(*parts)


def osv_zip(ecosystem: str) -> Path:
    """The mirror's archive of one OSV ecosystem (``Debian``, ``PyPI``, ``npm`` …)."""
    return VULNDB / "osv" / ecosystem / "all.zip"


def have_vulndb(*ecosystems: str) -> bool:
    """True when the mirror holds every one of ``ecosystems`` (default: Debian, PyPI and npm)."""
    return all(osv_zip(e).is_file() for e in ecosystems or ("Debian", "PyPI", "npm"))


#: Skip unless the offline mirror (Debian, PyPI and npm at least) is present.
needs_vulndb = pytest.mark.skipif(not have_vulndb(), reason=f"no offline OSV mirror at {VULNDB}/osv")
