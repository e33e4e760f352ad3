"""A loopback stand-in for kube-apiserver's admission path, for tests only.

This **substitutes for a real kube-apiserver, which cannot run on these machines** (none is packaged for
Debian 12, PyPI or npm). It is a FastAPI app served over TLS by uvicorn that does, for ``kubectl apply``
of pods and objects with pod templates, what kube-apiserver does with a validating admission webhook:

- discovery (``/version``, ``/api``, ``/apis``, ``/api/v1``, ``/apis/GROUP/VERSION``) from the responses
  recorded from a real API server v1.20.2 (``../shared/k8s/recorded/api/``), limited to the groups
  recorded; ``/openapi/v3`` says for each kind that the server validates fields (``fieldValidation``
  on its PATCH operation: kubectl then validates nothing itself and sends ``fieldValidation=Strict``);
  get by name (the recorded ``404 NotFound`` ``Status`` shape); create;
- bearer-token authentication of kubectl (an unknown token: the recorded 401 ``Status``);
- on create: the object defaulted as the real server does for the recorded requests, then the
  ``ValidatingWebhookConfiguration`` that ``garrison admission config`` printed applied as Kubernetes
  applies it: its ``rules`` and ``namespaceSelector`` decide whether the webhook is called; the
  ``AdmissionReview`` v1 body is built like the recorded ones (``../shared/k8s/recorded/admission/``);
  the call is HTTPS verified against the ``caBundle``, to ``url?timeout=Ns`` (``timeoutSeconds``), with
  the recorded headers and the bearer token of the webhook's kubeconfig named by the
  ``AdmissionConfiguration`` (user matched by ``host:port`` or ``*``, as kube-apiserver matches it);
- the answer to kubectl as kube-apiserver gives it: a denial becomes the webhook's ``Status`` with the
  message ``admission webhook "NAME" denied the request: …`` (``ToStatusErr``), warnings become
  ``Warning: 299 - "…"`` headers (kubectl prints them as ``Warning:`` lines), a webhook that cannot be
  reached or answers an error applies ``failurePolicy`` (``Fail``: a 500 ``InternalError`` ``Status``
  ``failed calling webhook``; ``Ignore``: admitted), a response whose ``uid`` does not echo the request's
  is an error like an unreachable webhook.

Every webhook call is recorded (``calls``) so tests can check what was sent.
"""

from __future__ import annotations

import base64
import copy
import json
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from tests.posture.k8s_server import status  # the one Status body of the loopback API servers
from tests.support.shared import shared_path

RECORDED_API = shared_path("k8s", "recorded", "api")
#: The (group, version) whose discovery was recorded, and their files.
GROUP_FILES = {
    ("", "v1"): "api-v1.json",
    ("apps", "v1"): "apis-apps-v1.json",
    ("batch", "v1"): "apis-batch-v1.json",
    ("networking.k8s.io", "v1"): "apis-networking-v1.json",
    ("rbac.authorization.k8s.io", "v1"): "apis-rbac-v1.json",
}


def _recorded(name: str) -> Any:
    return json.loads((RECORDED_API / name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Webhook:
    """One webhook of a ``ValidatingWebhookConfiguration``, with the token its kubeconfig gives."""

    name: str
    url: str
    ca_pem: str
    failure_policy: str
    timeout_seconds: int
    rules: list[dict[str, Any]]
    namespace_selector: dict[str, Any]
    token: str


def _kubeconfig_token(admission_configuration: Path, url: str) -> str:
    """The bearer token kube-apiserver sends to ``url``: the ``AdmissionConfiguration`` names the
    ``ValidatingAdmissionWebhook`` plugin's ``kubeConfigFile``; its user named ``host:port`` (else ``*``)."""
    conf = yaml.safe_load(admission_configuration.read_text(encoding="utf-8"))
    assert conf["kind"] == "AdmissionConfiguration", conf
    (plugin,) = [p for p in conf["plugins"] if p["name"] == "ValidatingAdmissionWebhook"]
    assert plugin["configuration"]["kind"] == "WebhookAdmissionConfiguration"
    kubeconfig = Path(plugin["configuration"]["kubeConfigFile"])
    if not kubeconfig.is_absolute():
        kubeconfig = admission_configuration.parent / kubeconfig
    kc = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    users = {u["name"]: u["user"] for u in kc.get("users", [])}
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port or 443}"
    user = users.get(host) or users.get("*")
    return str(user["token"]) if user and "token" in user else ""


def load_webhooks(configuration: dict[str, Any], admission_configuration: Path | None) -> list[Webhook]:
    """The webhooks of a ``ValidatingWebhookConfiguration`` document (URL webhooks only: there is no
    Service network here)."""
    assert configuration["kind"] == "ValidatingWebhookConfiguration", configuration
    out = []
    for w in configuration["webhooks"]:
        assert w["admissionReviewVersions"] == ["v1"]
        client = w["clientConfig"]
        ca = base64.b64decode(client["caBundle"]).decode()
        token = _kubeconfig_token(admission_configuration, client["url"]) if admission_configuration else ""
        out.append(
            Webhook(
                name=w["name"],
                url=client["url"],
                ca_pem=ca,
                failure_policy=w.get("failurePolicy", "Fail"),
                timeout_seconds=int(w.get("timeoutSeconds", 10)),
                rules=w["rules"],
                namespace_selector=w.get("namespaceSelector") or {},
                token=token,
            )
        )
    return out


def _selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        value = labels.get(e["key"])
        op = e["operator"]
        if op == "In" and value not in e["values"]:
            return False
        if op == "NotIn" and value in e["values"]:
            return False
        if op == "Exists" and value is None:
            return False
        if op == "DoesNotExist" and value is not None:
            return False
    return True


def _rule_matches(rule: dict[str, Any], operation: str, group: str, version: str, plural: str) -> bool:
    def has(values: list[str], v: str) -> bool:
        return "*" in values or v in values

    return (
        has(rule["operations"], operation)
        and has(rule["apiGroups"], group)
        and has(rule["apiVersions"], version)
        and has(rule["resources"], plural)
        and rule.get("scope", "*") in ("*", "Namespaced")
    )


def _default_pod_spec(spec: dict[str, Any]) -> None:
    """What the API server's defaulting adds to a pod spec (as in the recorded requests)."""
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        c.setdefault("resources", {})
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        image = str(c.get("image", ""))
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        c.setdefault("imagePullPolicy", "Always" if latest and "@" not in image else "IfNotPresent")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")


@dataclass
class Call:
    """One webhook call as it was sent, and what came of it."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    #: The response document, or None when the call failed.
    response: dict[str, Any] | None
    error: str = ""


@dataclass
class ApiServer:
    """The stand-in's state: objects, webhooks, kubectl's token, the calls made."""

    kubectl_token: str
    webhooks: list[Webhook] = field(default_factory=list)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: plural → (group, version, kind, namespaced), from the recorded discovery.
    kinds: dict[str, tuple[str, str, str, bool]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for (group, version), name in GROUP_FILES.items():
            for r in _recorded(name)["resources"]:
                if "/" not in r["name"]:
                    self.kinds.setdefault(r["name"], (group, version, r["kind"], r["namespaced"]))

    # -- admission ---------------------------------------------------------------------------------

    def _review(
        self, obj: dict[str, Any], plural: str, namespace: str, user: dict[str, Any], dry_run: bool, manager: str
    ) -> dict[str, Any]:
        group, version, kind, _ = self.kinds[plural]
        gvk = {"group": group, "version": version, "kind": kind}
        gvr = {"group": group, "version": version, "resource": plural}
        return {
            "kind": "AdmissionReview",
            "apiVersion": "admission.k8s.io/v1",
            "request": {
                "uid": str(uuid.uuid4()),
                "kind": gvk,
                "resource": gvr,
                "requestKind": gvk,
                "requestResource": gvr,
                "name": obj["metadata"]["name"],
                "namespace": namespace,
                "operation": "CREATE",
                "userInfo": user,
                "object": obj,
                "oldObject": None,
                "dryRun": dry_run,
                "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": manager},
            },
        }

    def _call(self, hook: Webhook, review: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """(response, "") or (None, why the call failed), as kube-apiserver's webhook client sees it."""
        url = f"{hook.url}?timeout={hook.timeout_seconds}s"
        headers = {
            "User-Agent": "kube-apiserver-admission",
            "Accept": "application/json, */*",
            "Content-Type": "application/json",
            "Accept-Encoding": "gzip",
        }
        if hook.token:
            headers["Authorization"] = f"Bearer {hook.token}"
        ctx = ssl.create_default_context(cadata=hook.ca_pem)
        call = Call(url, headers, review, None)
        try:
            with httpx.Client(verify=ctx, timeout=hook.timeout_seconds) as client:
                r = client.post(url, content=json.dumps(review).encode(), headers=headers)
        except httpx.TransportError as exc:
            call.error = f'failed to call webhook: Post "{url}": {type(exc).__name__}: {exc}'
            self.calls.append(call)
            return None, call.error
        if r.status_code != 200:
            call.error = (
                f"failed to call webhook: the server responded with the status code {r.status_code} "
                f"but did not return more information: {r.text[:200]}"
            )
            self.calls.append(call)
            return None, call.error
        try:
            doc = r.json()
            resp = doc["response"]
        except (ValueError, KeyError, TypeError):
            call.error = "received invalid webhook response: not an AdmissionReview"
            self.calls.append(call)
            return None, call.error
        call.response = doc
        self.calls.append(call)
        if doc.get("apiVersion") != "admission.k8s.io/v1" or doc.get("kind") != "AdmissionReview":
            return None, "received invalid webhook response: expected admission.k8s.io/v1, Kind=AdmissionReview"
        if resp.get("uid") != review["request"]["uid"]:
            return None, (
                f"received invalid webhook response: expected response.uid={review['request']['uid']}, "
                f"got {resp.get('uid')}"
            )
        return resp, ""

    def admit(
        self, obj: dict[str, Any], plural: str, namespace: str, user: dict[str, Any], dry_run: bool, manager: str
    ) -> tuple[dict[str, Any] | None, list[str]]:
        """(a Status refusing the request, or None) and the warnings, after every matching webhook."""
        group, version, _, _ = self.kinds[plural]
        ns_labels = {"kubernetes.io/metadata.name": namespace}
        warnings: list[str] = []
        for hook in self.webhooks:
            if not any(_rule_matches(r, "CREATE", group, version, plural) for r in hook.rules):
                continue
            if not _selector_matches(hook.namespace_selector, ns_labels):
                continue
            resp, error = self._call(hook, self._review(obj, plural, namespace, user, dry_run, manager))
            if resp is None:
                if hook.failure_policy == "Ignore":
                    continue
                message = f"failed calling webhook {json.dumps(hook.name)}: {error}"
                return status(
                    500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]}
                ), warnings
            warnings.extend(str(w) for w in resp.get("warnings") or [])
            if resp.get("allowed") is not True:
                return _denied(hook.name, resp.get("status") or {}), warnings
        return None, warnings


def _denied(webhook: str, result: dict[str, Any]) -> dict[str, Any]:
    """kube-apiserver's ``webhookerrors.ToStatusErr``: the webhook's Status, code at least 400, the
    message prefixed with who denied it."""
    denied_by = f"admission webhook {json.dumps(webhook)} denied the request"
    code = int(result.get("code") or 0)
    if code < 400:
        code = 400
    if result.get("message"):
        message = f"{denied_by}: {result['message']}"
    elif result.get("reason"):
        message = f"{denied_by}: {result['reason']}"
    else:
        message = f"{denied_by} without explanation"
    body = status(code, str(result.get("reason") or ""), message, result.get("details"))
    if not body["reason"]:
        del body["reason"]
    return body


def _warning_header(text: str) -> bytes:
    """``299 - "text"`` (RFC 7234 quoting, as kube-apiserver writes warning headers; UTF-8 bytes)."""
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{quoted}"'.encode()


def _json(doc: Any, code: int = 200, warnings: list[str] | None = None) -> Response:
    r = JSONResponse(doc, status_code=code)
    for w in dict.fromkeys(warnings or []):
        r.raw_headers.append((b"warning", _warning_header(w)))
    return r


def _openapi_v3(api: ApiServer, gv: str) -> Any:
    """The OpenAPI v3 document of one group-version, reduced to what kubectl reads from it: the PATCH
    operation of each kind with its ``x-kubernetes-group-version-kind`` and the ``fieldValidation`` query
    parameter, which tells kubectl that the server validates fields (so it validates nothing itself)."""
    parts = gv.split("/")
    group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
    paths = {}
    for plural, (g, v, kind, namespaced) in api.kinds.items():
        if (g, v) != (group, version):
            continue
        base = f"/{gv}/namespaces/{{namespace}}/{plural}/{{name}}" if namespaced else f"/{gv}/{plural}/{{name}}"
        paths[base] = {
            "patch": {
                "x-kubernetes-group-version-kind": {"group": g, "version": v, "kind": kind},
                "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "OK"}},
            }
        }
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.20.2"}, "paths": paths}


def create_app(api: ApiServer) -> FastAPI:
    """The stand-in's HTTP side."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    admin_user = {"username": "admin", "uid": "uid-admin", "groups": ["system:masters", "system:authenticated"]}

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Response:
        header = request.headers.get("authorization", "")
        if header != f"Bearer {api.kubectl_token}":
            return _json(status(401, "Unauthorized", "Unauthorized"), 401)
        response: Response = await call_next(request)
        return response

    @app.get("/version")
    def version() -> Any:
        return _recorded("version.json")

    @app.get("/api")
    def api_versions(request: Request) -> Any:
        doc = _recorded("api.json")
        doc["serverAddressByClientCIDRs"][0]["serverAddress"] = request.url.netloc
        return doc

    @app.get("/apis")
    def api_groups() -> Any:
        doc = _recorded("apis.json")
        served = {g for (g, _) in GROUP_FILES if g}
        groups = []
        for g in doc["groups"]:
            if g["name"] in served:
                g = {**g, "versions": [v for v in g["versions"] if (g["name"], v["version"]) in GROUP_FILES]}
                g["preferredVersion"] = g["versions"][0]
                groups.append(g)
        return {**doc, "groups": groups}

    @app.get("/api/v1")
    def core_resources() -> Any:
        return _recorded(GROUP_FILES[("", "v1")])

    @app.get("/apis/{group}/{version}")
    def group_resources(group: str, version: str) -> Any:
        name = GROUP_FILES.get((group, version))
        if name is None:
            return _json(status(404, "NotFound", "the server could not find the requested resource"), 404)
        return _recorded(name)

    @app.get("/openapi/v2")
    def openapi_v2() -> Any:
        return _json(status(404, "NotFound", "the server could not find the requested resource"), 404)

    @app.get("/openapi/v3")
    def openapi_v3() -> Any:
        paths = {}
        for group, version in GROUP_FILES:
            gv = f"apis/{group}/{version}" if group else f"api/{version}"
            paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash=0"}
        return {"paths": paths}

    @app.get("/openapi/v3/{gv:path}")
    def openapi_v3_group(gv: str) -> Any:
        return _openapi_v3(api, gv)

    def _get(plural: str, namespace: str, name: str) -> Response:
        with api.lock:
            obj = api.objects.get((plural, namespace, name))
        if obj is None:
            return _json(status(404, "NotFound", f'{plural} "{name}" not found', {"name": name, "kind": plural}), 404)
        return _json(obj)

    async def _create(request: Request, plural: str, namespace: str) -> Response:
        if plural not in api.kinds:
            return _json(status(404, "NotFound", "the server could not find the requested resource"), 404)
        group, version, kind, _ = api.kinds[plural]
        obj = json.loads(await request.body())
        want = f"{group}/{version}" if group else version
        if obj.get("kind") != kind or obj.get("apiVersion") != want:
            return _json(status(400, "BadRequest", f"the body is not a {want} {kind}"), 400)
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if meta.setdefault("namespace", namespace) != namespace:
            return _json(status(400, "BadRequest", "the namespace of the object does not match the request"), 400)
        if not meta.get("name"):
            meta["name"] = str(meta.get("generateName", "x-")) + uuid.uuid4().hex[:5]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", "2026-12-01T22:44:26Z")
        pod_spec = obj.get("spec") if kind == "Pod" else (obj.get("spec") or {}).get("template", {}).get("spec")
        if isinstance(pod_spec, dict):
            _default_pod_spec(pod_spec)
        if kind == "Pod":
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        key = (plural, namespace, meta["name"])
        with api.lock:
            if key in api.objects:
                return _json(
                    status(
                        409,
                        "AlreadyExists",
                        f'{plural} "{meta["name"]}" already exists',
                        {"name": meta["name"], "kind": plural},
                    ),
                    409,
                )
        dry_run = request.query_params.get("dryRun") == "All"
        manager = request.query_params.get("fieldManager", "")
        refused, warnings = await anyio.to_thread.run_sync(
            api.admit, obj, plural, namespace, admin_user, dry_run, manager
        )
        if refused is not None:
            return _json(refused, int(refused["code"]), warnings)
        if not dry_run:
            with api.lock:
                meta["resourceVersion"] = str(len(api.objects) + 100)
                api.objects[key] = obj
        return _json(obj, 201, warnings)

    @app.get("/api/v1/namespaces/{namespace}/{plural}/{name}")
    def get_core(namespace: str, plural: str, name: str) -> Response:
        return _get(plural, namespace, name)

    @app.get("/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}")
    def get_group(group: str, version: str, namespace: str, plural: str, name: str) -> Response:
        return _get(plural, namespace, name)

    @app.post("/api/v1/namespaces/{namespace}/{plural}")
    async def create_core(request: Request, namespace: str, plural: str) -> Response:
        return await _create(request, plural, namespace)

    @app.post("/apis/{group}/{version}/namespaces/{namespace}/{plural}")
    async def create_group(request: Request, group: str, version: str, namespace: str, plural: str) -> Response:
        return await _create(request, plural, namespace)

    return app


def kubeconfig(path: Path, server: str, ca_file: Path, token: str) -> Path:
    """A kubeconfig pointing kubectl at the stand-in (verified TLS, bearer token)."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "loopback", "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "loopback", "context": {"cluster": "loopback", "user": "admin"}}],
        "current-context": "loopback",
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path
