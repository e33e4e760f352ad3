"""Session fixtures shared by every test: real images, real registries, a real dockerd.

All of them are lazy (nothing is built or started unless a test asks) and session-scoped. Heavy inputs
are cached on disk across runs (see :mod:`tests.support.cache`); servers are started per session and
stopped by PID at the end. A missing system tool turns into a skip with the reason, never an error.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# `tests.support` must import however pytest was started (`pytest`, `python -m pytest`, from any cwd).
_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from tests.support.dockerd import Dockerd, DockerUnavailable, start_dockerd  # noqa: E402
from tests.support.images import BuiltImages, images_ready  # noqa: E402
from tests.support.images import test_images as _build_test_images  # noqa: E402
from tests.support.registry import Registry, RegistryKind, RegistryUnavailable, start_registry  # noqa: E402


@pytest.fixture(autouse=True)
def _root_logging() -> Iterator[None]:
    """The root logger as it was before each test: a command run in-process (``garrison server run``
    with a bad flag, say) installs its handler on the standard error pytest captured for that test, and
    a thread that logs later (procrastinate's worker) would write to the closed capture ("--- Logging
    error ---")."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if getattr(h, "_garrison", False) and h not in handlers:  # garrison's own (pytest's stay)
            root.removeHandler(h)
    root.setLevel(level)


#: Fixtures that build images or start servers: every test that uses one (directly or through another
#: fixture) is marked ``slow``, so ``-m "not slow"`` can never run one by accident. Tests that build or
#: start things without these fixtures carry ``@pytest.mark.slow`` themselves.
SLOW_FIXTURES = frozenset(
    {
        "test_images",
        "registry_factory",
        "registry_plain",
        "registry_htpasswd",
        "registry_token",
        "registry_tls",
        "dockerd",
        "http_mirror",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def _require(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing system tools {missing}: run scripts/install-system-deps.sh as root")


@pytest.fixture(scope="session")
def test_images() -> BuiltImages:
    """The cached real images (Debian 12 minbase, app image with python/npm packages); see images.py."""
    if not images_ready():
        _require("debootstrap", "chroot", "npm")
    return _build_test_images()


RegistryFactory = Callable[..., Registry]


@pytest.fixture(scope="session")
def registry_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryFactory]:
    """``registry_factory(kind="plain", notify_url=None, notify_headers=None) -> Registry``: start an extra
    registry (e.g. with push notifications to a test's own endpoint); all are stopped at session end."""
    started: list[Registry] = []

    def make(kind: RegistryKind = "plain", **kw: Any) -> Registry:
        _require("docker-registry", "skopeo", "htpasswd")
        try:
            reg = start_registry(tmp_path_factory.mktemp(f"registry-{kind}"), kind, **kw)
        except RegistryUnavailable as exc:
            pytest.skip(str(exc))
        started.append(reg)
        return reg

    yield make
    for reg in started:
        reg.stop()


@pytest.fixture(scope="session")
def registry_plain(registry_factory: RegistryFactory) -> Registry:
    """No auth, plain HTTP."""
    return registry_factory("plain")


@pytest.fixture(scope="session")
def registry_htpasswd(registry_factory: RegistryFactory) -> Registry:
    """Basic auth (bcrypt htpasswd, user ``alice`` / ``s3cret``), plain HTTP."""
    return registry_factory("htpasswd")


@pytest.fixture(scope="session")
def registry_token(registry_factory: RegistryFactory) -> Registry:
    """Bearer-token auth via the loopback token server (``registry.token_server``), plain HTTP."""
    return registry_factory("token")


@pytest.fixture(scope="session")
def registry_tls(registry_factory: RegistryFactory) -> Registry:
    """HTTPS with a throw-away CA (``registry.ca_file``), no auth."""
    return registry_factory("tls")


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    """A private loopback-only Docker daemon.

    Attributes/methods: ``.socket``, ``.host`` (DOCKER_HOST), ``.load(archive)``, ``.cli(*args)``.
    """
    try:
        daemon = start_dockerd()
    except DockerUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield daemon
    finally:
        daemon.stop()
