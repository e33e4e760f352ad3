"""``cluster[:CONTEXT]``: a live Kubernetes cluster read through its API, with read-only verbs only.

**Credentials.** A kubeconfig (``--kubeconfig``, else every file of ``$KUBECONFIG`` merged the way
kubectl merges them, the first file to set a key winning, else ``~/.kube/config``) and the context named
(else ``current-context``); or, when there is no kubeconfig and the process runs in a pod, the in-cluster
service account (``KUBERNETES_SERVICE_HOST``/``_PORT`` and
``/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt}``). From the kubeconfig: ``server``,
``certificate-authority``/``-data``, ``insecure-skip-tls-verify``, ``tls-server-name``, ``proxy-url``; for
the user ``token``, ``tokenFile``, ``client-certificate``/``-data`` with ``client-key``/``-data``,
``username``/``password`` and ``exec`` credential plugins (``client.authentication.k8s.io`` v1 and
v1beta1: the ``ExecCredential`` status gives a token or a client certificate). Relative paths are
relative to the kubeconfig's folder, as kubectl resolves them. ``auth-provider`` (removed from kubectl
in 1.26) is refused with a message.

**Why httpx and not the ``kubernetes`` package.** httpx is already garrison's HTTP client
(:mod:`garrison.net`), and reading a cluster needs five GET shapes (discovery, list, continue, get,
watch), written here. The official client (37.0.2) adds 13 direct dependencies (requests, urllib3,
aiohttp, pydantic, oauthlib, websocket-client…), takes 0.42-0.71 s to import here against httpx's
0.07-0.10 s, and turns every object into generated model classes that posture would turn back into
dicts: measured on these machines, 5,000 pods (10 pages of 500) cost 0.08 s with ``json.loads`` and
4.5 s through the client's ``V1PodList`` deserialisation (5.4 s back to dicts). The ``kubernetes``
client and ``kubectl`` are used in the tests, against the same test server, as independent clients.

**What is read.** Discovery (``/api``, ``/apis`` and the preferred version of each group that serves a
kind of :data:`KINDS`), then every kind of :data:`KINDS` the server offers, with ``limit``/``continue``
pagination (a ``410 Expired`` continue token restarts the list once without a limit, as client-go's pager
does). ``namespaces`` limits namespaced kinds to those namespaces (cluster-scoped kinds are still read:
RBAC across the cluster decides what a namespace's subjects can do). A ``403`` or ``404`` for one kind is
a warning and the rest is still assessed; a ``401`` is an error. Everything is returned, owned objects
included (the posture service assesses a Pod of a ReplicaSet of a Deployment through the Deployment, for
every input alike). ``managedFields`` are dropped; Secret values are dropped (their keys stay) so no
secret is held in memory or written into a report.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import yaml

from garrison import net
from garrison.errors import AuthError, SourceError, UsageError
from garrison.posture.resources import Resource

if TYPE_CHECKING:
    from garrison.posture.inputs import Loaded

#: The kinds assessed, as (API group, kind). CRDs known to embed a pod template are included; a
#: server that does not serve one simply does not list it.
KINDS: tuple[tuple[str, str], ...] = (
    ("", "Namespace"),
    ("", "Pod"),
    ("", "PodTemplate"),
    ("", "ReplicationController"),
    ("", "Service"),
    ("", "ServiceAccount"),
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "LimitRange"),
    ("", "ResourceQuota"),
    ("", "PersistentVolume"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("policy", "PodDisruptionBudget"),
    ("argoproj.io", "Rollout"),
)
#: Objects per list page (kubectl's default chunk size).
PAGE = 500
#: The largest single response accepted, checked while it is read (a page of 500 big objects stays far below).
MAX_RESPONSE = 256 * 1024 * 1024
SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class ExpiredError(SourceError):
    """A ``resourceVersion`` or continue token older than the server's compaction (``410 Gone``)."""


@dataclass(frozen=True)
class Credentials:
    """Where the API server is and how to prove who we are."""

    server: str
    context: str
    ca_data: bytes = b""
    insecure: bool = False
    tls_server_name: str = ""
    token: str = ""
    token_file: str = ""
    cert_data: bytes = b""
    key_data: bytes = b""
    username: str = ""
    password: str = field(default="", repr=False)
    proxy: str = ""
    namespace: str = ""


# ------------------------------------------------------------------------------------- kubeconfig


def kubeconfig_paths(explicit: str = "") -> list[Path]:
    """The kubeconfig files kubectl would read: ``explicit``, else ``$KUBECONFIG``'s, else ``~/.kube/config``."""
    if explicit:
        return [Path(explicit).expanduser()]
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"kubeconfig {path}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(data) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"kubeconfig {path}: not YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise UsageError(f"kubeconfig {path}: not a mapping")
    return doc


def merge_kubeconfigs(paths: Sequence[Path]) -> dict[str, Any]:
    """kubectl's merge: named entries (clusters, users, contexts) from the first file that names them,
    ``current-context`` from the first file that sets it. Each entry remembers its file (``_dir``) so
    relative paths resolve against it."""
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}, "current-context": ""}
    for path in paths:
        if not path.exists():
            continue
        doc = _load_yaml(path)
        for section in ("clusters", "users", "contexts"):
            for entry in doc.get(section) or []:
                if not isinstance(entry, dict) or "name" not in entry:
                    continue
                key = section[:-1]
                body = entry.get(key) or {}
                if isinstance(body, dict) and entry["name"] not in merged[section]:
                    merged[section][entry["name"]] = {**body, "_dir": str(path.parent)}
        if not merged["current-context"] and doc.get("current-context"):
            merged["current-context"] = str(doc["current-context"])
    return merged


def _file_or_data(entry: Mapping[str, Any], key: str) -> bytes:
    data = entry.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(str(data))
        except ValueError:
            raise UsageError(f"kubeconfig: {key}-data is not base64") from None
    path = entry.get(key)
    if path:
        full = Path(entry.get("_dir", ".")) / str(path)
        try:
            return full.read_bytes()
        except OSError as exc:
            raise UsageError(f"kubeconfig: {key} {full}: {exc.strerror}") from None
    return b""


def _exec_credential(spec: Mapping[str, Any], cluster: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Run an ``exec`` credential plugin and return the ``status`` of its ``ExecCredential``."""
    command = str(spec.get("command") or "")
    if not command:
        raise UsageError(f"{where}: exec plugin without a command")
    env = dict(os.environ)
    for item in spec.get("env") or []:
        env[str(item.get("name"))] = str(item.get("value", ""))
    api_version = str(spec.get("apiVersion") or "client.authentication.k8s.io/v1")
    request: dict[str, Any] = {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    if spec.get("provideClusterInfo"):
        request["spec"]["cluster"] = {k: v for k, v in cluster.items() if not k.startswith("_")}
    env["KUBERNETES_EXEC_INFO"] = json.dumps(request)
    try:
        proc = subprocess.run(
            [command, *[str(a) for a in spec.get("args") or []]],
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
            cwd=cluster.get("_dir") or None,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AuthError(f"{where}: exec plugin {command}: {exc}") from None
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip()[-300:]
        raise AuthError(f"{where}: exec plugin {command} exited {proc.returncode}: {tail}")
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        raise AuthError(f"{where}: exec plugin {command} did not print an ExecCredential") from None
    st = doc.get("status") if isinstance(doc, dict) else None
    if not isinstance(st, dict):
        raise AuthError(f"{where}: exec plugin {command}: ExecCredential without a status")
    return st


def credentials_from_kubeconfig(context: str = "", kubeconfig: str = "") -> Credentials:
    """The server and credentials of ``context`` (default: the current context)."""
    paths = kubeconfig_paths(kubeconfig)
    if not any(p.exists() for p in paths):
        raise UsageError(f"no kubeconfig at {', '.join(map(str, paths))} (give --kubeconfig or set KUBECONFIG)")
    merged = merge_kubeconfigs(paths)
    name = context or merged["current-context"]
    if not name:
        raise UsageError("the kubeconfig has no current-context: name one as cluster:CONTEXT")
    ctx = merged["contexts"].get(name)
    if ctx is None:
        known = ", ".join(sorted(merged["contexts"])) or "none"
        raise UsageError(f"no context {name!r} in the kubeconfig (contexts: {known})")
    cluster = merged["clusters"].get(str(ctx.get("cluster", "")))
    if cluster is None or not cluster.get("server"):
        raise UsageError(f"context {name!r}: cluster {ctx.get('cluster')!r} is not defined or has no server")
    user = merged["users"].get(str(ctx.get("user", ""))) or {}
    where = f"context {name!r}"
    if user.get("auth-provider"):
        raise UsageError(f"{where}: auth-provider plugins were removed from Kubernetes clients; use an exec plugin")
    token = str(user.get("token") or "")
    token_file = str(Path(user["_dir"]) / user["tokenFile"]) if user.get("tokenFile") else ""
    cert, key = _file_or_data(user, "client-certificate"), _file_or_data(user, "client-key")
    if user.get("exec"):
        st = _exec_credential(user["exec"], cluster, where)
        token = str(st.get("token") or token)
        if st.get("clientCertificateData"):
            cert = str(st["clientCertificateData"]).encode()
            key = str(st.get("clientKeyData") or "").encode()
    return Credentials(
        server=str(cluster["server"]).rstrip("/"),
        context=name,
        ca_data=_file_or_data(cluster, "certificate-authority"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=str(cluster.get("tls-server-name") or ""),
        token=token,
        token_file=token_file,
        cert_data=cert,
        key_data=key,
        username=str(user.get("username") or ""),
        password=str(user.get("password") or ""),
        proxy=str(cluster.get("proxy-url") or ""),
        namespace=str(ctx.get("namespace") or ""),
    )


def in_cluster_credentials(sa_dir: Path | None = None) -> Credentials:
    """The pod's service account (what client-go's ``rest.InClusterConfig`` reads; ``sa_dir`` defaults to
    :data:`SA_DIR`)."""
    sa_dir = sa_dir or SA_DIR
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST", ""), os.environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise UsageError("not running in a cluster (KUBERNETES_SERVICE_HOST is not set) and no kubeconfig found")
    try:
        ca = (sa_dir / "ca.crt").read_bytes()
    except OSError as exc:
        raise UsageError(f"in-cluster: {sa_dir / 'ca.crt'}: {exc.strerror}") from None
    if ":" in host:
        host = f"[{host}]"
    return Credentials(
        server=f"https://{host}:{port}", context="in-cluster", ca_data=ca, token_file=str(sa_dir / "token")
    )


def resolve_credentials(context: str = "", kubeconfig: str = "") -> Credentials:
    """A kubeconfig when there is one (or one is named), else the in-cluster service account."""
    if context or kubeconfig or any(p.exists() for p in kubeconfig_paths()):
        return credentials_from_kubeconfig(context, kubeconfig)
    return in_cluster_credentials()


# ------------------------------------------------------------------------------------- the client


def ssl_context(creds: Credentials) -> ssl.SSLContext | bool:
    """TLS trust (the kubeconfig's CA, else the system CAs) and the client certificate, if any."""
    if creds.insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif creds.ca_data:
        ctx = ssl.create_default_context(cadata=creds.ca_data.decode("ascii", errors="replace"))
    else:
        ctx = ssl.create_default_context()
    if creds.cert_data:
        # load_cert_chain reads files only: write both PEMs to a private folder and remove it at once.
        with tempfile.TemporaryDirectory(prefix="garrison-kube-") as tmp:
            cert, key = Path(tmp) / "client.crt", Path(tmp) / "client.key"
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(creds.key_data)
            cert.write_bytes(creds.cert_data)
            try:
                ctx.load_cert_chain(cert, key)
            except ssl.SSLError as exc:
                raise UsageError(f"context {creds.context!r}: client certificate or key unusable: {exc}") from None
    return ctx


class KubeClient:
    """GET-only access to one API server. ``transport`` is the test seam (httpx's)."""

    def __init__(self, creds: Credentials, transport: httpx.BaseTransport | None = None) -> None:
        self.creds = creds
        headers = {"User-Agent": net.USER_AGENT, "Accept": "application/json"}
        auth: httpx.Auth | None = None
        if creds.username and not creds.token and not creds.token_file:
            auth = httpx.BasicAuth(creds.username, creds.password)
        self.client = httpx.Client(
            base_url=creds.server,
            verify=ssl_context(creds),
            timeout=TIMEOUT,
            transport=transport,
            headers=headers,
            auth=auth,
            proxy=creds.proxy or None,
            trust_env=not creds.proxy,
        )
        #: Per-request extensions: ``tls-server-name`` is the name the server's certificate is checked against.
        self.extensions: dict[str, Any] = {"sni_hostname": creds.tls_server_name} if creds.tls_server_name else {}

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _token(self) -> str:
        if self.creds.token:
            return self.creds.token
        if self.creds.token_file:
            # Re-read each time: projected service-account tokens are rotated by the kubelet.
            try:
                return Path(self.creds.token_file).read_text().strip()
            except OSError as exc:
                raise UsageError(f"token file {self.creds.token_file}: {exc.strerror}") from None
        return ""

    def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET ``path`` as JSON; a ``Status`` failure raises with the server's message."""
        headers = {}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = bytearray()
        try:
            with self.client.stream(
                "GET", path, params=dict(params or {}), headers=headers, extensions=self.extensions
            ) as resp:
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE:
                        raise SourceError(
                            f"cluster {self.creds.context}: {path}: response larger than {MAX_RESPONSE} bytes"
                        )
        except httpx.HTTPError as exc:
            raise SourceError(f"cluster {self.creds.context}: {self.creds.server}: {exc}") from None
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if resp.status_code != 200:
            raise status_error(resp.status_code, doc, f"cluster {self.creds.context}: GET {path}")
        if not isinstance(doc, dict):
            raise SourceError(f"cluster {self.creds.context}: GET {path}: not a JSON object")
        return doc

    def watch(
        self, path: str, resource_version: str, timeout_seconds: int = 60
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Events (type, object) of a watch from ``resource_version``; an ``ERROR`` event carrying a 410
        ``Status`` (or a 410 answer) raises :class:`ExpiredError`: list again and watch from the new
        list's resourceVersion."""
        headers = {}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(timeout_seconds),
            "allowWatchBookmarks": "true",
        }
        where = f"cluster {self.creds.context}: WATCH {path}"
        try:
            with self.client.stream(
                "GET",
                path,
                params=params,
                headers=headers,
                timeout=httpx.Timeout(timeout_seconds + 10.0, connect=10.0),
                extensions=self.extensions,
            ) as resp:
                if resp.status_code != 200:
                    resp.read()
                    try:
                        body = resp.json()
                    except ValueError:
                        body = None
                    raise status_error(resp.status_code, body, where)
                for line in resp.iter_lines():
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except ValueError:
                        raise SourceError(f"{where}: a watch line is not JSON") from None
                    kind, obj = str(event.get("type", "")), event.get("object") or {}
                    if kind == "ERROR":
                        raise status_error(int(obj.get("code") or 500), obj, where)
                    yield kind, obj
        except httpx.HTTPError as exc:
            raise SourceError(f"{where}: {exc}") from None


def status_error(code: int, body: Any, where: str) -> SourceError:
    """The error for a failed answer, with the message of its ``Status`` body."""
    message = str(body.get("message") or "") if isinstance(body, dict) else ""
    reason = str(body.get("reason") or "") if isinstance(body, dict) else ""
    text = f"{where}: {code} {reason or 'error'}" + (f": {message}" if message else "")
    if code == 401:
        return AuthError(text + " (the credentials were refused)")
    if code == 410:
        return ExpiredError(text)
    return _HTTPStatus(text, code)


class _HTTPStatus(SourceError):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class ApiKind:
    """A kind the server serves: where to list it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace and self.namespaced:
            return f"{base}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        return f"{base}/{self.plural}"


def discover(client: KubeClient, wanted: Sequence[tuple[str, str]] = KINDS) -> tuple[list[ApiKind], list[str]]:
    """The kinds of ``wanted`` the server serves with ``list``, at each group's preferred version (an
    older version of the group when the preferred one lacks the kind). Returns (kinds, warnings)."""
    warnings: list[str] = []
    groups_wanted = {g for g, _ in wanted}
    versions: dict[str, list[str]] = {}
    if "" in groups_wanted:
        versions[""] = [str(v) for v in client.get("/api").get("versions") or []]
    for group in client.get("/apis").get("groups") or []:
        name = str(group.get("name", ""))
        if name not in groups_wanted:
            continue
        preferred = str((group.get("preferredVersion") or {}).get("version", ""))
        others = [str(v.get("version")) for v in group.get("versions") or [] if v.get("version") != preferred]
        versions[name] = [preferred, *others] if preferred else others
    found: list[ApiKind] = []
    for group, vers in versions.items():
        kinds_left = {k for g, k in wanted if g == group}
        for version in vers:
            if not kinds_left:
                break
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                doc = client.get(path)
            except _HTTPStatus as exc:
                warnings.append(f"discovery of {group or 'core'}/{version} failed: {exc}")
                continue
            for res in doc.get("resources") or []:
                kind, plural = str(res.get("kind", "")), str(res.get("name", ""))
                if kind in kinds_left and "/" not in plural and "list" in (res.get("verbs") or []):
                    found.append(ApiKind(group, version, plural, kind, bool(res.get("namespaced"))))
                    kinds_left.discard(kind)
    order = {k: i for i, k in enumerate(wanted)}
    found.sort(key=lambda a: order.get((a.group, a.kind), len(order)))
    return found, warnings


# ------------------------------------------------------------------------------------- listing


def _key(obj: Any) -> tuple[str, str]:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def list_kind(client: KubeClient, kind: ApiKind, namespace: str = "", page: int = PAGE) -> Iterator[dict[str, Any]]:
    """Every object of ``kind`` (in ``namespace``, or all), page by page, each with its ``kind`` and
    ``apiVersion`` set (list items come without them). When a continue token has expired the list is
    read again in one unpaged request and only the objects not yet given are given (by namespace/name)."""
    path = kind.path(namespace)
    token = ""
    given: set[tuple[str, str]] = set()
    while True:
        params = {"limit": str(page)} if page else {}
        if token:
            params["continue"] = token
        try:
            doc = client.get(path, params)
        except ExpiredError:
            if not token:
                raise
            # The continue token outlived the server's compaction: start over in one unpaged list.
            for obj in client.get(path).get("items") or []:
                if _key(obj) not in given:
                    yield _complete(obj, kind)
            return
        for obj in doc.get("items") or []:
            given.add(_key(obj))
            yield _complete(obj, kind)
        token = str((doc.get("metadata") or {}).get("continue") or "")
        if not token:
            return


def _complete(obj: Any, kind: ApiKind) -> dict[str, Any]:
    if not isinstance(obj, dict):
        return {"kind": kind.kind, "apiVersion": kind.api_version}
    out = {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        **{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")},
    }
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k != "managedFields"}
        out["metadata"] = meta
    if kind.kind == "Secret":
        for key in ("data", "stringData"):
            if isinstance(out.get(key), dict):
                out[key] = dict.fromkeys(out[key], "")
        if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
            meta["annotations"] = {
                k: v for k, v in meta["annotations"].items() if k != "kubectl.kubernetes.io/last-applied-configuration"
            }
    return out


@dataclass
class ClusterSnapshot:
    """What was read from one cluster."""

    context: str
    server: str
    version: dict[str, Any]
    resources: list[Resource]
    kinds: list[ApiKind]
    warnings: list[str] = field(default_factory=list)


def read_cluster(
    context: str = "",
    kubeconfig: str = "",
    namespaces: Sequence[str] = (),
    *,
    creds: Credentials | None = None,
    transport: httpx.BaseTransport | None = None,
    wanted: Sequence[tuple[str, str]] = KINDS,
    page: int = PAGE,
) -> ClusterSnapshot:
    """Read the cluster of ``context`` (see the module docstring)."""
    creds = creds or resolve_credentials(context, kubeconfig)
    warnings: list[str] = []
    objects: list[dict[str, Any]] = []
    with KubeClient(creds, transport) as client:
        version = client.get("/version")
        kinds, discovery_warnings = discover(client, wanted)
        warnings.extend(discovery_warnings)
        for kind in kinds:
            scopes = list(namespaces) if namespaces and kind.namespaced else [""]
            for ns in scopes:
                try:
                    objects.extend(list_kind(client, kind, ns, page))
                except AuthError:
                    raise
                except _HTTPStatus as exc:
                    if exc.code in (403, 404, 405):
                        warnings.append(f"{kind.kind} not assessed: {exc}")
                        continue
                    raise
    if namespaces:
        wanted_ns = set(namespaces)
        objects = [
            o for o in objects if o.get("kind") != "Namespace" or (o.get("metadata") or {}).get("name") in wanted_ns
        ]
    resources = [Resource(obj=o, cluster=creds.context) for o in objects]
    return ClusterSnapshot(creds.context, creds.server, version, resources, kinds, warnings)


def load(rest: str, options: Mapping[str, Any]) -> Loaded:
    """The posture input's entry point for ``cluster[:CONTEXT]`` (``inputs.LIVE_SOURCES``). Options:
    ``kubeconfig`` (a path) and ``namespaces`` (a list, or a comma-separated string)."""
    from garrison.posture.inputs import Loaded

    raw_ns = options.get("namespaces") or ()
    namespaces = [n for n in (raw_ns.split(",") if isinstance(raw_ns, str) else raw_ns) if n]
    snap = read_cluster(
        rest,
        str(options.get("kubeconfig") or ""),
        namespaces,
    )
    return Loaded(resources=snap.resources, warnings=snap.warnings, documents=len(snap.resources))
