"""Shared by the audit tests (no tests here): where Falco's reference data and the recorded audit events
are, skipping with the reason when ``../shared`` is absent, and a small in-memory event for engine tests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from tests.support.shared import shared_path

from garrison.runtime.events import FieldValue

FALCO = shared_path("reference", "falco")
RECORDED = shared_path("k8s", "recorded", "audit-events.jsonl")

needs_falco = pytest.mark.skipif(not FALCO.is_dir(), reason=f"Falco's reference rules and traces are not at {FALCO}")
needs_recorded = pytest.mark.skipif(not RECORDED.is_file(), reason=f"no recorded audit events at {RECORDED}")

#: Falco's syscall rule files, by maturity.
FALCO_SYSCALL_FILES = ("falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml")


def falco(*parts: str) -> Path:
    return FALCO.joinpath(*parts)


class DictEvent:
    """An event whose fields are given as a mapping ``{"name" or ("name", "arg"): value}``: the engine's
    contract (source, type, time, field → None when absent) with nothing else, for operator tests."""

    def __init__(self, source: str, values: Mapping[Any, FieldValue], *, type: str = "", time_ns: int = 0) -> None:
        self.source = source
        self.type = type
        self.time_ns = time_ns
        self._values = dict(values)

    def field(self, name: str, arg: str | None = None) -> FieldValue:
        return self._values.get(name if arg is None else (name, arg))
