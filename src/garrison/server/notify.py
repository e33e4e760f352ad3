"""(to be filled) — routers of this area; :data:`ROUTERS` are mounted under ``/api/v1`` by :mod:`.app`."""

from __future__ import annotations

from fastapi import APIRouter

ROUTERS: list[APIRouter] = []
