"""``cluster[:CONTEXT]`` against tests/posture/k8s_server.py — a loopback SUBSTITUTE for a real
kube-apiserver (none can be installed here), checked first against the responses recorded from a real
API server v1.20.2 in ../shared/k8s/recorded/api/, then driven by kubectl, the official ``kubernetes``
Python client and garrison's own reader."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.posture.k8s_server import ApiServer, continue_token, parse_continue, start_api_server

from garrison.errors import AuthError, UsageError
from garrison.posture import cluster
from garrison.posture.controls import builtin_controls
from garrison.posture.engine import assess
from garrison.posture.inputs import load_source

pytestmark = pytest.mark.slow

RECORDED = Path(__file__).resolve().parents[3] / "shared" / "k8s" / "recorded" / "api"
POD = {"containers": [{"name": "c", "image": "nginx:1.25"}]}


def recorded(name: str) -> Any:
    if not RECORDED.is_dir():
        pytest.skip(f"{RECORDED} is absent (the recordings of a real API server live in ../shared)")
    path = RECORDED / name
    return (
        json.loads(path.read_text())
        if name.endswith(".json")
        else [json.loads(x) for x in path.read_text().splitlines() if x]
    )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    server = start_api_server(tmp_path_factory.mktemp("kube"))
    st = server.state
    st.tokens.update({"admin-token": "admin", "reader-token": "reader"})
    st.forbidden["reader"] = {"secrets"}
    for ns in ("shop", "web", "kube-system"):
        st.add({"kind": "Namespace", "metadata": {"name": ns}})
    st.add(
        {
            "kind": "Pod",
            "metadata": {"name": "priv", "namespace": "shop"},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.25", "securityContext": {"privileged": True}}]},
        }
    )
    for i in range(7):
        st.add({"kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "web"}, "spec": POD})
    dep = st.add(
        {
            "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "web"},
            "spec": {"template": {"metadata": {}, "spec": {"hostNetwork": True, **POD}}},
        }
    )
    owner = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "api",
        "uid": dep["metadata"]["uid"],
        "controller": True,
    }
    st.add(
        {
            "kind": "ReplicaSet",
            "metadata": {"name": "api-1", "namespace": "web", "ownerReferences": [owner]},
            "spec": {"template": {"spec": {"hostNetwork": True, **POD}}},
        }
    )
    st.add(
        {
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": "shop"},
            "type": "Opaque",
            "data": {"password": base64.b64encode(b"hunter2").decode()},
        }
    )
    st.add(
        {
            "kind": "ClusterRole",
            "metadata": {"name": "wild"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
        }
    )
    yield server
    server.stop()


def _kubeconfig(api: ApiServer, tmp_path: Path, **kw: Any) -> str:
    return str(api.kubeconfig(tmp_path / "kubeconfig", **kw))


# ------------------------------------------------------------------------------ the server vs the recordings


def test_status_bodies_match_the_recorded_ones(api: ApiServer) -> None:
    import httpx

    with httpx.Client(verify=ssl.create_default_context(cafile=str(api.ca.cert_file))) as c:
        bad = c.get(f"{api.url}/api/v1/namespaces", headers={"Authorization": "Bearer nope"})
        anon = c.get(f"{api.url}/api/v1/namespaces")
        reader = c.get(f"{api.url}/api/v1/secrets", headers={"Authorization": "Bearer reader-token"})
        missing = c.get(f"{api.url}/api/v1/namespaces/shop/pods/nope", headers={"Authorization": "Bearer admin-token"})
    assert (bad.status_code, bad.json()) == (401, recorded("get-namespaces-401-bad-token.json"))
    assert (anon.status_code, anon.json()) == (403, recorded("get-namespaces-403-anonymous.json"))
    assert (reader.status_code, reader.json()) == (403, recorded("list-secrets-403-reader.json"))
    assert (missing.status_code, missing.json()) == (404, recorded("get-pod-404.json"))


def test_discovery_and_lists_have_the_recorded_shape(api: ApiServer) -> None:
    import httpx

    h = {"Authorization": "Bearer admin-token"}
    with httpx.Client(
        verify=ssl.create_default_context(cafile=str(api.ca.cert_file)), headers=h, base_url=api.url
    ) as c:
        assert set(c.get("/api").json()) == set(recorded("api.json"))
        assert set(c.get("/apis").json()) == set(recorded("apis.json"))
        assert set(c.get("/version").json()) == set(recorded("version.json"))
        for name, path in [
            ("api-v1.json", "/api/v1"),
            ("apis-apps-v1.json", "/apis/apps/v1"),
            ("apis-rbac-v1.json", "/apis/rbac.authorization.k8s.io/v1"),
            ("apis-networking-v1.json", "/apis/networking.k8s.io/v1"),
            ("apis-batch-v1.json", "/apis/batch/v1"),
        ]:
            real, ours = recorded(name), c.get(path).json()
            assert [k for k in ours if k != "resources"] == [k for k in real if k != "resources"], name
            real_by_name = {r["name"]: r for r in real["resources"]}
            for res in ours["resources"]:
                if res["name"] == "cronjobs" and name == "apis-batch-v1.json":
                    continue  # batch/v1 gained CronJob in v1.21; the recording is from v1.20
                want = real_by_name[res["name"]]
                assert {k: res[k] for k in ("name", "namespaced", "kind", "verbs")} == {
                    k: want[k] for k in ("name", "namespaced", "kind", "verbs")
                }, res["name"]
        first = c.get("/api/v1/pods", params={"limit": "1"}).json()
        real_first, real_rest = recorded("list-pods-limit1.json"), recorded("list-pods-continue.json")
        assert list(first) == list(real_first) and set(first["metadata"]) == set(real_first["metadata"])
        assert "kind" not in first["items"][0] and "apiVersion" not in first["items"][0]
        # The continue token has the real server's shape: base64url JSON {"v","rv","start"}, no padding.
        real_rv, real_start = parse_continue(real_first["metadata"]["continue"])
        assert continue_token(real_rv, real_start) == real_first["metadata"]["continue"]
        rest = c.get("/api/v1/pods", params={"limit": "100", "continue": first["metadata"]["continue"]}).json()
        assert set(rest["metadata"]) == set(real_rest["metadata"])
        assert len(first["items"]) + len(rest["items"]) == len(c.get("/api/v1/pods").json()["items"])


def test_watch_replays_and_expires(api: ApiServer, tmp_path: Path) -> None:
    st = api.state
    start = st.rv
    st.add({"kind": "Pod", "metadata": {"name": "watched", "namespace": "shop"}, "spec": POD})
    st.delete("Pod", "shop", "watched")
    creds = cluster.credentials_from_kubeconfig(kubeconfig=_kubeconfig(api, tmp_path, token="admin-token"))
    with cluster.KubeClient(creds) as client:
        events = list(client.watch("/api/v1/pods", str(start), timeout_seconds=1))
    assert [(t, o["metadata"]["name"]) for t, o in events] == [("ADDED", "watched"), ("DELETED", "watched")]
    real = recorded("watch-pods.jsonl")
    assert {e["type"] for e in real} >= {"MODIFIED", "DELETED"}
    assert set(events[0][1]) >= {"kind", "apiVersion", "metadata"} and set(real[0]) == {"type", "object"}
    st.compact()
    with cluster.KubeClient(creds) as client, pytest.raises(cluster.ExpiredError, match="410 Expired"):
        list(client.watch("/api/v1/pods", str(start), timeout_seconds=1))


# ------------------------------------------------------------------------------ independent clients


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_reads_the_server(api: ApiServer, tmp_path: Path) -> None:
    kc = _kubeconfig(api, tmp_path, token="admin-token")
    out = subprocess.run(
        ["kubectl", "--kubeconfig", kc, "get", "pods", "-A", "-o", "json", "--chunk-size", "3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["kind"] == "List" and {i["metadata"]["name"] for i in doc["items"]} >= {"priv", "p0", "p6"}
    assert all(i["kind"] == "Pod" and i["apiVersion"] == "v1" for i in doc["items"])
    # With a client certificate instead of a token.
    kc2 = str(api.kubeconfig(tmp_path / "kc-cert", client=api.client_cert("admin"), embed=False))
    out = subprocess.run(
        ["kubectl", "--kubeconfig", kc2, "get", "deployments", "-n", "web", "-o", "name"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (out.returncode, out.stdout.strip()) == (0, "deployment.apps/api"), out.stderr
    refused = subprocess.run(
        ["kubectl", "--kubeconfig", _kubeconfig(api, tmp_path, token="reader-token"), "get", "secrets", "-A"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0 and 'User "reader" cannot list resource "secrets"' in refused.stderr


def test_kubernetes_python_client_reads_the_server(api: ApiServer, tmp_path: Path) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    client = kubernetes.config.new_client_from_config(_kubeconfig(api, tmp_path, token="admin-token"))
    core = kubernetes.client.CoreV1Api(client)
    page = core.list_pod_for_all_namespaces(limit=3)
    names = [p.metadata.name for p in page.items]
    while page.metadata._continue:
        page = core.list_pod_for_all_namespaces(limit=3, _continue=page.metadata._continue)
        names += [p.metadata.name for p in page.items]
    assert sorted(names) == sorted(["priv", *(f"p{i}" for i in range(7))])
    with pytest.raises(kubernetes.client.ApiException) as err:
        core.read_namespaced_pod("nope", "shop")
    assert err.value.status == 404


# ------------------------------------------------------------------------------ garrison's reader


def test_read_cluster_pages_assesses_and_uses_get_only(api: ApiServer, tmp_path: Path) -> None:
    before = len(api.requests)
    snap = cluster.read_cluster(kubeconfig=_kubeconfig(api, tmp_path, token="admin-token", context="prod"), page=2)
    reqs = api.requests[before:]
    assert {r.method for r in reqs} == {"GET"}
    pod_pages = [r for r in reqs if r.path == "/api/v1/pods"]
    assert len(pod_pages) == 4 and pod_pages[1].query["continue"]  # 8 pods, 2 a page
    kinds = sorted({r.kind for r in snap.resources})
    assert kinds == ["ClusterRole", "Deployment", "Namespace", "Pod", "ReplicaSet", "Secret"]
    assert snap.warnings == [] and snap.context == "prod"
    assert all(r.cluster == "prod" and r.obj["apiVersion"] for r in snap.resources)
    secret = next(r for r in snap.resources if r.kind == "Secret")
    assert secret.obj["data"] == {"password": ""}  # keys kept, values never held
    found = {(f.detail.control_id, f.detail.object.name) for f in assess(snap.resources, builtin_controls())}
    assert ("GAR-PSS-003", "priv") in found and ("GAR-PSS-002", "api") in found


def test_forbidden_kind_is_a_warning_and_bad_token_an_error(api: ApiServer, tmp_path: Path) -> None:
    loaded = load_source("cluster:test", {"kubeconfig": _kubeconfig(api, tmp_path, token="reader-token")})
    assert [w for w in loaded.warnings if "Secret not assessed" in w and "403 Forbidden" in w]
    assert "Pod" in {r.kind for r in loaded.resources} and "Secret" not in {r.kind for r in loaded.resources}
    with pytest.raises(AuthError, match="401 Unauthorized"):
        cluster.read_cluster(kubeconfig=_kubeconfig(api, tmp_path, token="wrong"))


def test_namespace_filter(api: ApiServer, tmp_path: Path) -> None:
    before = len(api.requests)
    snap = cluster.read_cluster(kubeconfig=_kubeconfig(api, tmp_path, token="admin-token"), namespaces=["shop"])
    assert {r.namespace for r in snap.resources if r.namespace} == {"shop"}
    assert [r.name for r in snap.resources if r.kind == "Namespace"] == ["shop"]
    assert "wild" in {r.name for r in snap.resources}  # cluster-scoped RBAC is still read
    assert "/api/v1/namespaces/shop/pods" in {r.path for r in api.requests[before:]}


def test_expired_continue_token_restarts_the_list(api: ApiServer, tmp_path: Path) -> None:
    creds = cluster.credentials_from_kubeconfig(kubeconfig=_kubeconfig(api, tmp_path, token="admin-token"))
    kind = cluster.ApiKind("", "v1", "pods", "Pod", True)
    with cluster.KubeClient(creds) as client:
        items = cluster.list_kind(client, kind, page=3)
        first = [next(items) for _ in range(3)]
        api.state.add({"kind": "ConfigMap", "metadata": {"name": "bump", "namespace": "shop"}})
        api.state.compact()  # the token handed out with page one is now older than the compaction
        rest = list(items)
    names = [o["metadata"]["name"] for o in first + rest]
    assert sorted(names) == sorted(set(names)) and len(names) == 8


def test_kubeconfig_merge_relative_paths_and_errors(
    api: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ca.crt").write_bytes(api.ca.cert_file.read_bytes())
    (tmp_path / "a" / "token").write_text("admin-token\n")
    first = {
        "current-context": "one",
        "contexts": [{"name": "one", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": {"server": api.url, "certificate-authority": "ca.crt"}}],
        "users": [{"name": "u", "user": {"tokenFile": "token"}}],
    }
    second = {"current-context": "two", "contexts": [{"name": "one", "context": {"cluster": "x", "user": "x"}}]}
    (tmp_path / "a" / "config").write_text(json.dumps(first))
    (tmp_path / "second").write_text(json.dumps(second))
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'a' / 'config'}:{tmp_path / 'second'}")
    creds = cluster.resolve_credentials()
    assert (creds.context, creds.server, creds.token_file) == ("one", api.url, str(tmp_path / "a" / "token"))
    assert cluster.read_cluster(creds=creds).resources
    with pytest.raises(UsageError, match="no context 'nope'"):
        cluster.credentials_from_kubeconfig("nope")


def test_exec_credential_plugin(api: ApiServer, tmp_path: Path) -> None:
    plugin = tmp_path / "plugin.sh"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": "admin-token"},
    }
    plugin.write_text(f"#!/bin/sh\necho '{json.dumps(credential)}'\n")
    plugin.chmod(0o755)
    doc = json.loads(Path(_kubeconfig(api, tmp_path)).read_text())
    doc["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin)}}
    (tmp_path / "kc-exec").write_text(json.dumps(doc))
    snap = cluster.read_cluster(kubeconfig=str(tmp_path / "kc-exec"))
    assert "Secret" in {r.kind for r in snap.resources}


def test_cli_assesses_the_cluster(api: ApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from garrison.cli.main import main

    kc = str(api.kubeconfig(tmp_path / "kc-cli", token="admin-token", context="prod"))
    code = main(["posture", "cluster:prod", "--kubeconfig", kc, "--namespace", "web", "-f", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    text = json.dumps(out)
    # The Deployment's hostNetwork is found on the Deployment, not again on its ReplicaSet; shop's
    # privileged pod is outside the namespace filter.
    assert '"api"' in text and '"api-1"' not in text and '"priv"' not in text
    assert "GAR-PSS-002" in text


def test_in_cluster_service_account(api: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "ca.crt").write_bytes(api.ca.cert_file.read_bytes())
    (sa / "token").write_text("reader-token")
    host, port = api.url.removeprefix("https://").rsplit(":", 1)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kube/config
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    monkeypatch.setattr(cluster, "SA_DIR", sa)
    creds = cluster.resolve_credentials()
    assert (creds.context, creds.server, creds.token_file) == ("in-cluster", api.url, str(sa / "token"))
    snap = cluster.read_cluster(creds=creds)
    assert "Pod" in {r.kind for r in snap.resources} and any("Secret not assessed" in w for w in snap.warnings)
    # The token file is read on every request: a rotated token is used without a restart.
    (sa / "token").write_text("admin-token")
    assert "Secret" in {r.kind for r in cluster.read_cluster(creds=creds).resources}
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(UsageError, match="not running in a cluster"):
        cluster.resolve_credentials()
