"""Each real registry setup accepts a push (skopeo) and serves the manifest back (httpx), with its auth."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.imagewriter import Dir, File, Layer, build_image
from tests.support.registry import Registry, fetch_manifest

pytestmark = [pytest.mark.slow, pytest.mark.registry]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def tiny_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A two-layer image small enough to push to every registry quickly."""
    root = tmp_path_factory.mktemp("tiny")
    refs = build_image(
        [
            Layer(entries=[Dir("etc"), File("etc/os-release", b"ID=tiny\nVERSION_ID=1\n")]),
            Layer(entries=[Dir("app"), File("app/hello.txt", b"hello registry\n")]),
        ],
        work=root / "work",
        oci_dir=root / "oci",
        tag="v1",
    )
    return refs.oci_ref


def assert_served(reg: Registry, repo: str, tag: str, pushed_digest: str) -> None:
    resp = fetch_manifest(reg, repo, tag)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == OCI_MANIFEST
    assert resp.headers["Docker-Content-Digest"] == pushed_digest
    assert "sha256:" + hashlib.sha256(resp.content).hexdigest() == pushed_digest
    assert len(json.loads(resp.content)["layers"]) == 2
    by_digest = fetch_manifest(reg, repo, pushed_digest, method="HEAD")
    assert by_digest.status_code == 200


@pytest.mark.parametrize("kind", ["plain", "htpasswd", "token", "tls"])
def test_push_and_pull_manifest(request: pytest.FixtureRequest, tiny_image: str, kind: str) -> None:
    reg: Registry = request.getfixturevalue(f"registry_{kind}")
    assert reg.host.startswith("127.0.0.1:")
    digest = reg.push(tiny_image, "garrison/tiny:v1")
    assert digest.startswith("sha256:")
    assert_served(reg, "garrison/tiny", "v1", digest)


def test_htpasswd_refuses_anonymous_and_wrong_password(registry_htpasswd: Registry) -> None:
    with registry_htpasswd.client() as client:
        resp = client.get("/v2/")
        assert resp.status_code == 401
        assert resp.headers["WWW-Authenticate"].startswith("Basic ")
        assert client.get("/v2/", auth=("alice", "wrong")).status_code == 401
        assert (
            client.get("/v2/", auth=(registry_htpasswd.username or "", registry_htpasswd.password or "")).status_code
            == 200
        )


def test_token_server_dance(registry_token: Registry, tiny_image: str) -> None:
    registry_token.push(tiny_image, "garrison/token-dance:v1")
    with registry_token.client() as client:
        resp = client.get("/v2/garrison/token-dance/manifests/v1")
    assert resp.status_code == 401
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'scope="repository:garrison/token-dance:pull"' in challenge
    server = registry_token.token_server
    assert server is not None
    bad = httpx.get(
        server.realm, params={"service": server.service, "scope": "repository:x:pull"}, auth=("alice", "nope")
    )
    assert bad.status_code == 401
    # An anonymous token carries no access: the registry still refuses.
    anon = httpx.get(
        server.realm, params={"service": server.service, "scope": "repository:garrison/token-dance:pull"}
    ).json()["token"]
    with registry_token.client() as client:
        denied = client.get(
            "/v2/garrison/token-dance/manifests/v1",
            headers={"Authorization": f"Bearer {anon}", "Accept": OCI_MANIFEST},
        )
    assert denied.status_code == 401
    assert any(r.account == "alice" and r.authorized for r in server.requests)


def test_tls_registry_needs_its_ca(registry_tls: Registry) -> None:
    assert registry_tls.scheme == "https" and registry_tls.ca_file is not None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{registry_tls.url}/v2/")
    assert httpx.get(f"{registry_tls.url}/v2/", verify=registry_tls.ssl_context()).status_code == 200


def test_docker_v2_accept_only_gets_404_for_oci_manifest(registry_plain: Registry, tiny_image: str) -> None:
    """Documents the distribution 2.8 quirk clients must handle (see ENVIRONMENT.md)."""
    registry_plain.push(tiny_image, "garrison/quirk:v1")
    resp = fetch_manifest(
        registry_plain, "garrison/quirk", "v1", accept="application/vnd.docker.distribution.manifest.v2+json"
    )
    assert resp.status_code == 404


def test_push_real_debian_image(registry_plain: Registry, test_images: Any) -> None:
    digest = registry_plain.push(test_images.debian_oci_ref, "library/debian:12")
    assert digest == test_images.debian.manifest_digest  # skopeo kept the manifest byte for byte
    resp = fetch_manifest(registry_plain, "library/debian", "12")
    assert resp.status_code == 200
    layer = json.loads(resp.content)["layers"][0]
    with registry_plain.client() as client:
        head = client.head(f"/v2/library/debian/blobs/{layer['digest']}")
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == layer["size"]


class _Collector:
    """A loopback endpoint that records notification envelopes."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.content_types: list[str] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                collector.content_types.append(self.headers["Content-Type"])
                collector.events.extend(json.loads(body)["events"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/events"


@pytest.fixture(scope="module")
def collector() -> Iterator[_Collector]:
    c = _Collector()
    yield c
    c.httpd.shutdown()
    c.httpd.server_close()


def test_notifications_hook_posts_push_events(
    registry_factory: Any, collector: _Collector, tiny_image: str, tmp_path: Path
) -> None:
    reg = registry_factory(
        "htpasswd", notify_url=collector.url, notify_headers={"Authorization": ["Bearer hook-secret"]}
    )
    digest = reg.push(tiny_image, "garrison/notified:v1")
    deadline = time.monotonic() + 15
    push = None
    while time.monotonic() < deadline and push is None:
        push = next(
            (e for e in collector.events if e["action"] == "push" and e["target"].get("mediaType") == OCI_MANIFEST),
            None,
        )
        time.sleep(0.1)
    assert push is not None, collector.events
    assert push["target"]["repository"] == "garrison/notified"
    assert push["target"]["digest"] == digest and push["target"]["tag"] == "v1"
    assert push["actor"]["name"] == "alice"
    assert len(push["target"]["references"]) == 3  # config + 2 layers
    assert collector.content_types[0] == "application/vnd.docker.distribution.events.v1+json"


def test_multiarch_index_push(registry_plain: Registry) -> None:
    from tests.support.images import MULTIARCH_TAG, multiarch_image

    layout = multiarch_image()
    digest = registry_plain.push(f"oci:{layout}:{MULTIARCH_TAG}", "garrison/multi:v1", all_images=True)
    resp = fetch_manifest(registry_plain, "garrison/multi", "v1")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/vnd.oci.image.index.v1+json"
    assert "sha256:" + hashlib.sha256(resp.content).hexdigest() == digest
    platforms = {(m["platform"]["architecture"], m["platform"].get("variant")) for m in resp.json()["manifests"]}
    assert platforms == {("amd64", None), ("arm64", "v8")}
    for m in resp.json()["manifests"]:
        child = fetch_manifest(registry_plain, "garrison/multi", m["digest"])
        assert child.status_code == 200 and child.headers["Content-Type"] == OCI_MANIFEST


def test_docker_schema2_push(registry_plain: Registry, tiny_image: str) -> None:
    digest = registry_plain.push(tiny_image, "garrison/docker-format:v1", manifest_format="v2s2")
    resp = fetch_manifest(registry_plain, "garrison/docker-format", "v1")
    assert resp.headers["Content-Type"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert resp.headers["Docker-Content-Digest"] == digest
    assert resp.json()["layers"][0]["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"


def test_registry_dies_with_a_killed_test_process(tmp_path: Path) -> None:
    """A pytest killed with SIGKILL runs no teardown; the kernel must still stop its registry."""
    import os
    import signal
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from tests.support.registry import start_registry\n"
        "reg = start_registry(Path(sys.argv[1]), 'plain')\n"
        "print(reg.process.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{child_pid}/stat") as fh:
                if fh.read().split(") ")[1].startswith("Z"):
                    break  # exited, waiting to be reaped by init
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        os.kill(child_pid, signal.SIGKILL)
        pytest.fail("docker-registry outlived its parent")
