"""A loopback stand-in for the Kubernetes API server, for tests only.

This is a **substitute for a real kube-apiserver**, which cannot be installed on these machines (none is
packaged for Debian 12, PyPI or npm). It speaks the parts of the real API that clients use to read a
cluster, shaped after the responses recorded from a real API server v1.20.2 in
``../shared/k8s/recorded/api/`` (``tests/posture/test_cluster_server.py`` checks it against them):

- ``/version``; discovery: ``/api``, ``/apis``, ``/api/v1``, ``/apis/GROUP/VERSION`` (``APIResourceList``
  with ``name``, ``singularName``, ``namespaced``, ``kind``, ``verbs``, ``shortNames``);
- lists, cluster-wide and per namespace, sorted by namespace/name, items without ``kind``/``apiVersion``
  (as the real server sends JSON lists), with ``limit`` and ``continue`` (the token is the real one's
  shape: base64url of ``{"v":"meta.k8s.io/v1","rv":N,"start":"ns/name\\u0000"}``) and
  ``remainingItemCount``; a ``continue`` token or ``resourceVersion`` older than the last compaction is
  ``410 Gone`` with reason ``Expired``;
- get by name (``404 NotFound`` ``Status``);
- watch streams (``?watch=true``): one ``{"type","object"}`` JSON line per event after the given
  ``resourceVersion``, replayed from the event log, then the stream stays open until ``timeoutSeconds``;
  from a compacted ``resourceVersion`` an in-stream ``ERROR`` event whose object is a 410 ``Status``;
- authentication by bearer token or TLS client certificate (CN = user name); an unknown token is ``401``;
  no credentials is ``system:anonymous``; per-user forbidden resources give the real ``403`` ``Status``
  (``… cannot list resource "secrets" in API group "" at the cluster scope``);
- TLS only, with a CA generated for the run (kubectl refuses a plain-HTTP server with credentials).

Every request is recorded (``server.requests``) so a test can assert that a client used read-only verbs
only. Anything else (create, update, delete) is refused with ``405 MethodNotAllowed`` and recorded.
"""

from __future__ import annotations

import base64
import copy
import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.certs import KeyPair, make_ca, make_leaf

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-garrison-test",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_RW = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short: tuple[str, ...] = ()
    verbs: tuple[str, ...] = tuple(_RW)
    categories: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


#: What this server serves (a subset of a real cluster's kinds, with the real discovery fields).
KINDS: tuple[Kind, ...] = (
    Kind("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    Kind(
        "",
        "v1",
        "namespaces",
        "Namespace",
        False,
        ("ns",),
        ("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    Kind("", "v1", "nodes", "Node", False, ("no",)),
    Kind("", "v1", "pods", "Pod", True, ("po",), categories=("all",)),
    Kind("", "v1", "replicationcontrollers", "ReplicationController", True, ("rc",), categories=("all",)),
    Kind("", "v1", "secrets", "Secret", True),
    Kind("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    Kind(
        "",
        "v1",
        "services",
        "Service",
        True,
        ("svc",),
        ("create", "delete", "get", "list", "patch", "update", "watch"),
        ("all",),
    ),
    Kind("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), categories=("all",)),
    Kind("apps", "v1", "deployments", "Deployment", True, ("deploy",), categories=("all",)),
    Kind("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), categories=("all",)),
    Kind("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), categories=("all",)),
    Kind("batch", "v1", "cronjobs", "CronJob", True, ("cj",), categories=("all",)),
    Kind("batch", "v1", "jobs", "Job", True, categories=("all",)),
    Kind("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",)),
    Kind("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",)),
    Kind("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Kind("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Kind("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Kind("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Kind("", "v1", "bindings", "Binding", True, verbs=("create",)),
)
#: Sub-resources listed by discovery, as the real server lists them.
SUBRESOURCES = {
    "pods": (("pods/log", "Pod", ("get",)), ("pods/status", "Pod", ("get", "patch", "update"))),
    "deployments": (
        ("deployments/scale", "Scale", ("get", "patch", "update")),
        ("deployments/status", "Deployment", ("get", "patch", "update")),
    ),
}


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``Status`` body exactly as kube-apiserver writes it (key order included)."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def continue_token(rv: int, start: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\u0000"}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def parse_continue(token: str) -> tuple[int, str]:
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    doc = json.loads(raw)
    return int(doc["rv"]), str(doc["start"]).rstrip("\u0000")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    user: str
    status: int = 0


@dataclass
class State:
    """The cluster's objects, resource versions, event log and who may do what."""

    objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    rv: int = 100
    #: Resource versions below this are compacted (410 for watches and continue tokens from before it).
    compacted: int = 0
    events: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    #: user → plurals (``secrets``, ``apps/deployments``) the user may not read.
    forbidden: dict[str, set[str]] = field(default_factory=dict)
    #: Users who may read nothing at all but discovery (anonymous by default, as on a real cluster).
    denied_all: set[str] = field(default_factory=lambda: {"system:anonymous"})
    lock: threading.Condition = field(default_factory=threading.Condition)

    def add(self, obj: dict[str, Any], event: str = "ADDED") -> dict[str, Any]:
        kind = by_kind(str(obj["kind"]))
        with self.lock:
            self.rv += 1
            # Stored, listed and replayed without kind/apiVersion, as the real server lists items.
            obj = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("kind", "apiVersion")}
            meta = obj.setdefault("metadata", {})
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", "2026-12-01T22:44:26Z")
            meta["resourceVersion"] = str(self.rv)
            if not kind.namespaced:
                meta.pop("namespace", None)
            else:
                meta.setdefault("namespace", "default")
            key = (str(meta.get("namespace", "")), str(meta["name"]))
            event = "MODIFIED" if key in self.objects.setdefault(kind.plural, {}) and event == "ADDED" else event
            self.objects[kind.plural][key] = obj
            self.events.append((self.rv, kind.plural, event, obj))
            self.lock.notify_all()
        return obj

    def delete(self, kind_name: str, namespace: str, name: str) -> None:
        kind = by_kind(kind_name)
        with self.lock:
            obj = self.objects.get(kind.plural, {}).pop((namespace, name))
            self.rv += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self.events.append((self.rv, kind.plural, "DELETED", obj))
            self.lock.notify_all()

    def compact(self) -> None:
        """Forget every event up to now (as etcd compaction does)."""
        with self.lock:
            self.compacted = self.rv
            self.events.clear()


def by_kind(name: str) -> Kind:
    for k in KINDS:
        if k.kind == name:
            return k
    raise KeyError(name)


def _discovery(group_version: str) -> dict[str, Any] | None:
    kinds = [k for k in KINDS if k.group_version == group_version]
    if not kinds:
        return None
    resources: list[dict[str, Any]] = []
    for k in sorted(kinds, key=lambda k: k.plural):
        entry: dict[str, Any] = {
            "name": k.plural,
            "singularName": "",
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": list(k.verbs),
        }
        if k.short:
            entry["shortNames"] = list(k.short)
        if k.categories:
            entry["categories"] = list(k.categories)
        resources.append(entry)
        for name, sub_kind, verbs in SUBRESOURCES.get(k.plural, ()):
            resources.append(
                {"name": name, "singularName": "", "namespaced": k.namespaced, "kind": sub_kind, "verbs": list(verbs)}
            )
    doc: dict[str, Any] = {"kind": "APIResourceList"}
    if "/" in group_version:
        doc["apiVersion"] = "v1"
    doc["groupVersion"] = group_version
    doc["resources"] = resources
    return doc


def _groups() -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for k in KINDS:
        if k.group:
            groups.setdefault(k.group, [])
            if k.version not in groups[k.group]:
                groups[k.group].append(k.version)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": g,
                "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
            }
            for g, vs in groups.items()
        ],
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -------------------------------------------------------------------------------- helpers

    def _send(self, code: int, body: dict[str, Any], record: Request | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)
        if record is not None:
            record.status = code

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return self.server.state.tokens.get(auth[7:].strip())
        cert = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        if cert:
            for rdn in cert.get("subject", ()):
                for key, value in rdn:  # type: ignore[str-unpack]
                    if key == "commonName":
                        return str(value)
        return "system:anonymous"

    # -------------------------------------------------------------------------------- verbs

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        user = self._user()
        rec = Request("GET", url.path, query, user or "")
        self.server.requests.append(rec)
        if user is None:
            self._send(401, status(401, "Unauthorized", "Unauthorized"), rec)
            return
        path = url.path.rstrip("/")
        if path == "/version":
            self._send(200, VERSION, rec)
            return
        if path == "/api":
            self._send(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.server.address}],
                },
                rec,
            )
            return
        if path == "/apis":
            self._send(200, _groups(), rec)
            return
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            self._send(404, status(404, "NotFound", "the server could not find the requested resource", {}), rec)
            return
        gv = f"{group}/{version}" if group else version
        if not rest:
            doc = _discovery(gv)
            if doc is None:
                self._send(404, status(404, "NotFound", "the server could not find the requested resource", {}), rec)
            else:
                self._send(200, doc, rec)
            return
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        plural, name = rest[0], rest[1] if len(rest) > 1 else ""
        kind = next((k for k in KINDS if k.plural == plural and k.group_version == gv), None)
        if kind is None or "list" not in kind.verbs:
            self._send(404, status(404, "NotFound", "the server could not find the requested resource", {}), rec)
            return
        verb = "watch" if query.get("watch", [""])[0] in ("1", "true") else "get" if name else "list"
        qualified = f"{group}/{plural}" if group else plural
        if user in self.server.state.denied_all or qualified in self.server.state.forbidden.get(user, set()):
            scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            target = f'"{plural}" "{name}" is forbidden' if name else f"{plural} is forbidden"
            message = f'{target}: User "{user}" cannot {verb} resource "{plural}" in API group "{group}" {scope}'
            details: dict[str, Any] = {"name": name, "kind": plural} if name else {"kind": plural}
            if group:
                details["group"] = group
            self._send(403, status(403, "Forbidden", message, details), rec)
            return
        if verb == "watch":
            self._watch(kind, namespace, query, rec)
        elif name:
            self._get(kind, namespace, name, rec)
        else:
            self._list(kind, namespace, query, rec)

    def _refuse(self) -> None:
        url = urlsplit(self.path)
        rec = Request(self.command, url.path, parse_qs(url.query), self._user() or "")
        self.server.requests.append(rec)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._send(405, status(405, "MethodNotAllowed", f"this test server is read-only: {self.command} refused"), rec)

    do_POST = do_PUT = do_PATCH = do_DELETE = _refuse

    def _get(self, kind: Kind, namespace: str, name: str, rec: Request) -> None:
        with self.server.state.lock:
            obj = self.server.state.objects.get(kind.plural, {}).get((namespace, name))
        if obj is None:
            self._send(
                404,
                status(404, "NotFound", f'{kind.plural} "{name}" not found', {"name": name, "kind": kind.plural}),
                rec,
            )
            return
        self._send(200, {"kind": kind.kind, "apiVersion": kind.group_version, **obj}, rec)

    def _list(self, kind: Kind, namespace: str, query: dict[str, list[str]], rec: Request) -> None:
        state = self.server.state
        limit = int(query.get("limit", ["0"])[0] or 0)
        token = query.get("continue", [""])[0]
        start = ""
        with state.lock:
            rv = state.rv
            if token:
                try:
                    token_rv, start = parse_continue(token)
                except (ValueError, KeyError):
                    self._send(400, status(400, "BadRequest", "continue key is not valid: illegal base64 data"), rec)
                    return
                if token_rv < state.compacted:
                    body = status(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. "
                        "You can start a new list without the continue parameter.",
                    )
                    self._send(410, body, rec)
                    return
            items = sorted(state.objects.get(kind.plural, {}).items())
        keys = [f"{ns}/{n}" if kind.namespaced else n for (ns, n), _ in items]
        objs = [copy.deepcopy(o) for (ns, _n), o in items if not namespace or ns == namespace]
        keys = [k for k, ((ns, _n), _o) in zip(keys, items, strict=True) if not namespace or ns == namespace]
        if start:
            pairs = [(k, o) for k, o in zip(keys, objs, strict=True) if k > start]
        else:
            pairs = list(zip(keys, objs, strict=True))
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit and len(pairs) > limit:
            meta["continue"] = continue_token(rv, pairs[limit - 1][0])
            meta["remainingItemCount"] = len(pairs) - limit
            pairs = pairs[:limit]
        self._send(
            200,
            {
                "kind": f"{kind.kind}List",
                "apiVersion": kind.group_version,
                "metadata": meta,
                "items": [o for _, o in pairs],
            },
            rec,
        )

    def _watch(self, kind: Kind, namespace: str, query: dict[str, list[str]], rec: Request) -> None:
        state = self.server.state
        since = int(query.get("resourceVersion", ["0"])[0] or 0)
        timeout = float(query.get("timeoutSeconds", ["5"])[0] or 5)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        rec.status = 200

        def chunk(doc: dict[str, Any]) -> None:
            data = json.dumps(doc).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        deadline = time.monotonic() + min(timeout, 30.0)
        sent = since
        try:
            if since and since < state.compacted:
                chunk(
                    {
                        "type": "ERROR",
                        "object": status(410, "Expired", f"too old resource version: {since} ({state.compacted + 1})"),
                    }
                )
                return
            while not self.server.stopping:
                with state.lock:
                    pending = [e for e in state.events if e[0] > sent and e[1] == kind.plural]
                    if not pending:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return
                        state.lock.wait(min(left, 0.2))
                        continue
                for rv, _plural, event, obj in pending:
                    sent = rv
                    if namespace and obj["metadata"].get("namespace") != namespace:
                        continue
                    chunk({"type": event, "object": {"kind": kind.kind, "apiVersion": kind.group_version, **obj}})
        finally:
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: State
    requests: list[Request]
    address: str
    stopping: bool = False


@dataclass
class ApiServer:
    """A running test API server: ``url``, ``ca`` (its CA, also the client-certificate CA) and ``state``."""

    url: str
    ca: KeyPair
    state: State
    requests: list[Request]
    directory: Path
    _server: _Server
    _thread: threading.Thread

    def kubeconfig(
        self,
        path: Path,
        token: str = "",
        client: KeyPair | None = None,
        context: str = "test",
        namespace: str = "",
        embed: bool = True,
    ) -> Path:
        """Write a kubeconfig for this server (CA embedded as data, or by file with ``embed=False``)."""
        cluster: dict[str, Any] = {"server": self.url}
        user: dict[str, Any] = {}
        if embed:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca.cert_file.read_bytes()).decode()
        else:
            cluster["certificate-authority"] = str(self.ca.cert_file)
        if token:
            user["token"] = token
        if client is not None:
            if embed:
                user["client-certificate-data"] = base64.b64encode(client.cert_file.read_bytes()).decode()
                user["client-key-data"] = base64.b64encode(client.key_pem).decode()
            else:
                user["client-certificate"] = str(client.cert_file)
                user["client-key"] = str(client.key_file)
        ctx: dict[str, Any] = {"cluster": "test-cluster", "user": "test-user"}
        if namespace:
            ctx["namespace"] = namespace
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test-cluster", "cluster": cluster}],
            "users": [{"name": "test-user", "user": user}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
        }
        path.write_text(json.dumps(doc, indent=1))
        return path

    def client_cert(self, user: str) -> KeyPair:
        """A client certificate for ``user`` (CN) issued by the server's CA."""
        return make_leaf(self.ca, self.directory / "clients", user, cn=user, ips=(), dns=())

    def stop(self) -> None:
        self._server.stopping = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def start_api_server(directory: Path) -> ApiServer:
    """Start the server on 127.0.0.1 (an ephemeral port) with TLS from a CA made for it."""
    ca = make_ca(directory / "pki", "garrison test kube CA")
    leaf = make_leaf(
        ca, directory / "pki", "apiserver", cn="kube-apiserver", ips=("127.0.0.1",), dns=("localhost", "kubernetes")
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(leaf.cert_file, leaf.key_file)
    ctx.load_verify_locations(ca.cert_file)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    server = _Server(("127.0.0.1", 0), _Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.state = State()
    server.requests = []
    host, port = server.server_address[:2]
    host = host.decode() if isinstance(host, bytes) else str(host)
    server.address = f"{host}:{port}"
    thread = threading.Thread(target=server.serve_forever, name="k8s-test-server", daemon=True)
    thread.start()
    return ApiServer(f"https://{host}:{port}", ca, server.state, server.requests, directory, server, thread)
