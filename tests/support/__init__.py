"""Shared test infrastructure: real images, real registries, a real dockerd and crafted bad inputs.

Everything expensive is built once and cached under ``<repo>/.cache/test-images/`` (``GARRISON_TEST_CACHE``
overrides it), so a second test run starts in seconds and two pytest processes never build twice.
Warm the cache by hand with ``python -m tests.support.images`` (about 2 minutes cold).

Map (import as ``tests.support.<module>``):

``images``       ``test_images() -> BuiltImages`` (Debian 12 minbase and an app image on top, as OCI layouts
                 (gzip/zstd/plain) and docker archives, plus their root filesystems);
                 ``multiarch_image() -> Path`` (amd64 + arm64 image index)
``debian``       ``debian_rootfs()``, ``app_layer()``, ``diff_trees()`` and the package lists used
``imagewriter``  layers, OCI layouts (single and multi-platform), docker archives (legacy and Docker 25+),
                 from dirs or entry lists; raw hostile tars
``crafted``      bad inputs (traversal, link escapes, loops, bombs, truncation, broken layouts)
``registry``     ``start_registry(dir, kind)`` (plain/htpasswd/token/tls), ``push``, ``fetch_manifest``
``tokenserver``  the RS256/x5c token server behind the ``token`` registry
``dockerd``      ``start_dockerd() -> Dockerd`` (private, loopback-only)
``certs``        throw-away CA and leaf certificates
``cache``        ``cached(name, version, build)``: stamp-last, flock-protected cache entries

Fixtures (``tests/conftest.py``): ``test_images``, ``registry_plain``, ``registry_htpasswd``,
``registry_token``, ``registry_tls``, ``registry_factory``, ``dockerd`` — all session-scoped.
"""
