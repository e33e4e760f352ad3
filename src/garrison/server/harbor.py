"""(to be filled) — Harbor's pluggable scanner API

:data:`ROUTERS` are mounted at the root by :mod:`.app` (they carry their own prefix)."""

from __future__ import annotations

from fastapi import APIRouter

ROUTERS: list[APIRouter] = []
