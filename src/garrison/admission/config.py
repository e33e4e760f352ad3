"""The ``ValidatingWebhookConfiguration`` that points a cluster at the webhook (``garrison admission
config``): every kind with a pod template, CREATE and UPDATE, ``admissionReviewVersions: [v1]``, the
policy's excluded namespaces left out by a ``namespaceSelector`` so that the API server does not even call."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: What the webhook is called for: pods and the built-in kinds with a pod template.
RULES = [
    {
        "apiGroups": ["", "apps", "batch"],
        "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": [
            "pods",
            "replicationcontrollers",
            "deployments",
            "statefulsets",
            "daemonsets",
            "replicasets",
            "jobs",
            "cronjobs",
        ],
        "scope": "Namespaced",
    }
]


def webhook_configuration(
    ca_bundle: str,
    *,
    url: str = "",
    service: tuple[str, str] | None = None,
    excluded_namespaces: Iterable[str] = ("kube-system",),
    failure_policy: str = "Fail",
    timeout_seconds: int = 5,
    name: str = "garrison",
) -> dict[str, Any]:
    """The configuration calling the webhook at ``url``, or at Service ``service`` = (namespace, name)."""
    if bool(url) == (service is not None):
        raise ValueError("give the webhook's url or its service, not both")
    if failure_policy not in ("Fail", "Ignore"):
        raise ValueError(f"failurePolicy {failure_policy!r}: Fail or Ignore")
    if not 1 <= timeout_seconds <= 30:
        raise ValueError(f"timeoutSeconds {timeout_seconds}: 1 to 30")
    client: dict[str, Any] = {"caBundle": ca_bundle}
    if service is not None:
        client["service"] = {"namespace": service[0], "name": service[1], "path": "/admission/validate", "port": 443}
    else:
        client["url"] = url
    webhook: dict[str, Any] = {
        "name": f"{name}.admission.garrison.dev",
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": failure_policy,
        "timeoutSeconds": timeout_seconds,
        "clientConfig": client,
        "rules": RULES,
    }
    excluded = sorted({*excluded_namespaces, *([service[0]] if service else [])})
    if excluded:
        webhook["namespaceSelector"] = {
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": excluded}]
        }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [webhook],
    }
