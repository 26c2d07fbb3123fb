"""Helpers for reads that answer JSON bytes straight from Core rows (no ORM, no pydantic)."""

from __future__ import annotations

from datetime import datetime


def rfc3339(value: datetime) -> str:
    """A timestamp as common.schemas.Timestamp serialises it (UTC as `Z`)."""
    return value.isoformat().replace("+00:00", "Z")


def optional_str(value: object) -> str | None:
    return None if value is None else str(value)
