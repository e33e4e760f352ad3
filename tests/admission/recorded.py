"""The AdmissionReview requests a real kube-apiserver v1.20.2 POSTed to a validating webhook
(``../shared/k8s/recorded/admission/``: ``path``, ``headers``, ``body``), and helpers to vary them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from tests.support.shared import shared_path

RECORDED = shared_path("k8s", "recorded", "admission")
NAMES = sorted(p.stem for p in RECORDED.glob("*.json")) if RECORDED.is_dir() else []

needs_recorded = pytest.mark.skipif(not NAMES, reason=f"no recorded admission requests in {RECORDED}")


def exchange(name: str) -> dict[str, Any]:
    """The recorded call (``path``, ``headers``, ``body``)."""
    data: dict[str, Any] = json.loads((RECORDED / f"{name}.json").read_text(encoding="utf-8"))
    return data


def review(name: str) -> dict[str, Any]:
    """A fresh copy of the recorded AdmissionReview (change it freely)."""
    return copy.deepcopy(exchange(name)["body"])


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def path_of(name: str) -> Path:
    return RECORDED / f"{name}.json"
