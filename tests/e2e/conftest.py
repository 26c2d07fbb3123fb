"""Fixtures shared by the end-to-end modules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.localrun import Backends


@pytest.fixture(scope="module")
async def backends() -> AsyncIterator[Backends]:
    """PostgreSQL schemas and Redis keys private to one module's platform, dropped after."""
    made = Backends()
    yield made
    await made.drop()
