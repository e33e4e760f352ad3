"""End to end: ``kubectl apply`` → an API server → garrison's webhook on ``garrison server run`` → the
answer kubectl prints.

The API server is the loopback stand-in of :mod:`tests.admission.apiserver`: it **substitutes for
kube-apiserver, which cannot run here**, and calls the webhook as Kubernetes does, from the
``ValidatingWebhookConfiguration`` that ``garrison admission config`` printed (HTTPS verified against its
``caBundle``, ``?timeout=10s``, the AdmissionReview v1 built like the recorded ones, the bearer token of the
kubeconfig an ``AdmissionConfiguration`` names, ``failurePolicy`` when the webhook is down).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.admission.apiserver import ApiServer, create_app, kubeconfig, load_webhooks
from tests.admission.recorded import needs_recorded, review
from tests.admission.serving import serve_tls
from tests.support.certs import make_ca, make_leaf
from tests.support.procs import die_with_parent
from tests.support.registry import free_port

from garrison.cli.main import run
from garrison.services import server as svc
from garrison.store.admission import DecisionFilter
from garrison.store.db import migrate, open_engine
from garrison.store.repos import SqlStore

pytestmark = [
    pytest.mark.slow,
    needs_recorded,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]

KUBECTL_TOKEN = "kubectl-admin-token"


def _garrison(*args: str) -> str:
    """A garrison command in-process (as tests/admission/test_admission_cli.py runs them); its output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run(list(args)) == 0
    return out.getvalue()


@dataclass
class Cluster:
    api: ApiServer
    kubeconfig: Path
    tmp: Path
    env: dict[str, str]
    garrison_url: str
    admin_token: str
    ca: Path
    admission_configuration: Path
    server: subprocess.Popen[bytes]

    def apply(self, manifest: dict[str, Any], name: str) -> subprocess.CompletedProcess[str]:
        f = self.tmp / f"{name}.yaml"
        f.write_text(yaml.safe_dump(manifest), encoding="utf-8")
        return subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                str(self.kubeconfig),
                "--cache-dir",
                str(self.tmp / "kcache"),
                "apply",
                "-f",
                str(f),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.tmp,
            env={**os.environ, "HOME": str(self.tmp)},
        )

    def configure(self, *flags: str) -> None:
        """Point the API server at the webhook with ``garrison admission config`` and these flags."""
        url = f"{self.garrison_url}/admission/validate"
        printed = _garrison("admission", "config", "--ca", str(self.ca), "--url", url, *flags)
        self.api.webhooks = load_webhooks(yaml.safe_load(printed), self.admission_configuration)


@pytest.fixture
def cluster(running: Cluster) -> Cluster:
    running.api.calls.clear()
    return running


def _manifest(name: str, *, privileged: bool = False, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "nginx:1.25"}
    if privileged:
        container["securityContext"] = {"privileged": True}
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "labels": {"app": name}}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [container]}}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One garrison server and one API server for the module (the webhook-down test comes last)."""
    tmp_path = tmp_path_factory.mktemp("cluster")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    env.update(GARRISON_DATA_DIR=str(tmp_path / "data"), GARRISON_CONFIG=os.devnull, PYTHONUNBUFFERED="1")
    # The server's database made as `garrison server init` and `server user add ... --cluster prod` make it.
    engine = open_engine(f"sqlite:///{tmp_path / 'data' / 'server.db'}")
    migrate(engine)
    store = SqlStore(engine)
    admin = svc.init_admin(store).secret
    agent = svc.create_user(store, svc.CLI_ACTOR, "prod-apiserver", "agent", cluster="prod")[1].secret
    engine.dispose()
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "garrison.cli.main",
            "server",
            "run",
            "--listen",
            f"127.0.0.1:{port}",
            "--tls-self-signed",
        ],
        env=env,
        stdout=log,
        stderr=log,
        preexec_fn=die_with_parent,
    )
    ca = tmp_path / "data" / "tls" / "ca.crt"
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert server.poll() is None, (tmp_path / "server.log").read_text()
        try:
            if (
                ca.is_file()
                and httpx.get(f"{url}/healthz", verify=ssl.create_default_context(cafile=ca), timeout=2).status_code
                == 200
            ):
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
        time.sleep(0.1)
    # What a cluster admin writes for kube-apiserver's --admission-control-config-file (docs/admission.md).
    hook_kubeconfig = tmp_path / "garrison-webhook.kubeconfig"
    hook_kubeconfig.write_text(
        yaml.safe_dump(
            {"apiVersion": "v1", "kind": "Config", "users": [{"name": f"127.0.0.1:{port}", "user": {"token": agent}}]}
        ),
        encoding="utf-8",
    )
    admission_configuration = tmp_path / "admission-configuration.yaml"
    admission_configuration.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apiserver.config.k8s.io/v1",
                "kind": "AdmissionConfiguration",
                "plugins": [
                    {
                        "name": "ValidatingAdmissionWebhook",
                        "configuration": {
                            "apiVersion": "apiserver.config.k8s.io/v1",
                            "kind": "WebhookAdmissionConfiguration",
                            "kubeConfigFile": str(hook_kubeconfig),
                        },
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    tls = make_ca(tmp_path / "api-tls")
    leaf = make_leaf(tls, tmp_path / "api-tls", "apiserver")
    api = ApiServer(kubectl_token=KUBECTL_TOKEN)
    try:
        with serve_tls(create_app(api), leaf.cert_file, leaf.key_file) as api_url:
            kc = kubeconfig(tmp_path / "kubeconfig", api_url, tls.cert_file, KUBECTL_TOKEN)
            c = Cluster(api, kc, tmp_path, env, url, admin, ca, admission_configuration, server)
            c.configure("--failure-policy", "Fail", "--timeout", "10")
            yield c
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()


def test_kubectl_apply_of_a_privileged_pod_shows_the_denial(cluster: Cluster) -> None:
    r = cluster.apply(_manifest("priv", privileged=True), "priv")
    assert r.returncode == 1, r.stdout + r.stderr
    *warnings, error = r.stderr.splitlines()
    assert warnings and all(w.startswith("Warning: ") for w in warnings), "the restricted controls warn"
    assert error.startswith(
        f'Error from server (Forbidden): error when creating "{cluster.tmp / "priv.yaml"}": admission webhook '
        '"garrison.admission.garrison.dev" denied the request: garrison denied CREATE of Pod shop/priv: '
        "1 control failed (policy default): (1) GAR-PSS-003 Privileged container: container c: "
        "spec.containers[0].securityContext.privileged is true, expected false or unset; "
        "fix: Remove securityContext.privileged from the container, or set it to false."
    ), error
    assert ("pods", "shop", "priv") not in cluster.api.objects
    (call,) = cluster.api.calls
    assert call.url == f"{cluster.garrison_url}/admission/validate?timeout=10s"
    assert call.headers["Authorization"].startswith("Bearer garrison_")
    recorded = review("create-pod-priv")["request"]
    assert list(call.body["request"]) == list(recorded), "the review is built like the recorded ones"
    assert call.body["request"]["options"]["fieldManager"] == "kubectl-client-side-apply"


def test_kubectl_apply_of_a_compliant_pod_prints_the_warnings(cluster: Cluster) -> None:
    r = cluster.apply(_manifest("web"), "web")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "pod/web created"
    warnings = [line for line in r.stderr.splitlines() if line.startswith("Warning: ")]
    assert any(w.startswith("Warning: GAR-PSS-015 ") for w in warnings), r.stderr
    assert any("image nginx:1.25 was never scanned by garrison" in w for w in warnings), r.stderr
    assert ("pods", "shop", "web") in cluster.api.objects


def test_break_glass_through_kubectl_is_recorded(cluster: Cluster) -> None:
    note = {"garrison.dev/break-glass": "INC-4711 node debugging"}
    r = cluster.apply(_manifest("debug", privileged=True, annotations=note), "debug")
    assert r.returncode == 0, r.stderr
    assert "Warning: [break-glass: would deny] GAR-PSS-003 Privileged container" in r.stderr
    found = httpx.get(
        f"{cluster.garrison_url}/api/v1/admission/decisions",
        params={"break_glass": "true"},
        headers={"Authorization": f"Bearer {cluster.admin_token}"},
        verify=ssl.create_default_context(cafile=cluster.ca),
    ).json()
    (d,) = found["items"]
    assert (d["cluster"], d["namespace"], d["name"], d["break_glass"]) == (
        "prod",
        "shop",
        "debug",
        "INC-4711 node debugging",
    )


def test_kubectl_apply_of_a_deployment_with_a_privileged_template(cluster: Cluster) -> None:
    pod = _manifest("api", privileged=True)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}}, "spec": pod["spec"]},
        },
    }
    r = cluster.apply(deployment, "deploy")
    assert r.returncode == 1
    error = r.stderr.splitlines()[-1]
    assert "denied the request: garrison denied CREATE of Deployment shop/api: 1 control failed" in error
    assert "spec.template.spec.containers[0].securityContext.privileged is true" in error
    (call,) = cluster.api.calls
    assert call.body["request"]["kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}


def test_excluded_namespaces_are_never_sent(cluster: Cluster) -> None:
    m = _manifest("sys", privileged=True)
    m["metadata"]["namespace"] = "kube-system"
    r = cluster.apply(m, "sys")
    assert r.returncode == 0, r.stderr
    assert cluster.api.calls == [], "the namespaceSelector of garrison admission config left it out"


def test_failure_policy_when_the_webhook_is_down(cluster: Cluster) -> None:
    cluster.server.send_signal(signal.SIGTERM)
    assert cluster.server.wait(timeout=30) == 0
    r = cluster.apply(_manifest("down1"), "down1")
    assert r.returncode == 1
    assert r.stderr.startswith(
        f'Error from server (InternalError): error when creating "{cluster.tmp / "down1.yaml"}": '
        "Internal error occurred: "
        'failed calling webhook "garrison.admission.garrison.dev": failed to call webhook: Post '
        f'"{cluster.garrison_url}/admission/validate?timeout=10s"'
    ), r.stderr
    cluster.configure("--failure-policy", "Ignore", "--timeout", "10")
    r = cluster.apply(_manifest("down2", privileged=True), "down2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "pod/down2 created", "Ignore admits while the webhook is down"
    assert [c.error != "" for c in cluster.api.calls] == [True, True]
    # Every decision the server answered before it stopped is in its database (written out at exit).
    engine = open_engine(f"sqlite:///{cluster.tmp / 'data' / 'server.db'}")
    with SqlStore(engine).transaction() as tx:
        names = sorted(d.name for d in tx.admission.list(DecisionFilter(), 100, 0).items)
    engine.dispose()
    assert names == ["api", "debug", "priv", "web"]
    assert json.dumps(cluster.api.objects[("pods", "shop", "down2")]["spec"]["containers"][0]["securityContext"]) == (
        '{"privileged": true}'
    )
