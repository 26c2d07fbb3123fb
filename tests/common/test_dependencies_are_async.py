"""No endpoint of any service runs a dependency (or itself) in FastAPI's thread pool.

FastAPI calls a plain `def` dependency or endpoint through `run_in_threadpool`: a hand-off
to a worker thread and back on every request. None of ours block, so each is `async def`;
a sync one slipped in once (`service_state`) and cost every order a thread hop.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant

from shopfleet.common.settings import SERVICES, Settings
from shopfleet.services import app_factory
from tests.support import api_routes


def _runs_in_thread_pool(call: Any) -> bool:
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return False
    return not inspect.iscoroutinefunction(getattr(call, "__call__", None))  # noqa: B004


def _sync_calls(dependant: Dependant) -> Iterator[str]:
    for sub in dependant.dependencies:
        if sub.call is not None and _runs_in_thread_pool(sub.call):
            yield getattr(sub.call, "__qualname__", type(sub.call).__name__)
        yield from _sync_calls(sub)


@pytest.mark.parametrize("service", SERVICES)
def test_no_dependency_or_endpoint_runs_in_the_thread_pool(service: str) -> None:
    app = app_factory(service)(Settings(service=service))
    routes = list(api_routes(app.router))
    assert len(routes) > 5, "the walk found no routes: FastAPI's router layout changed"
    found = {
        f"{sorted(route.methods or ())} {route.path}: {call}"
        for route in routes
        for call in _sync_calls(route.dependant)
    }
    found |= {
        f"{sorted(route.methods or ())} {route.path}: the endpoint"
        for route in routes
        if _runs_in_thread_pool(route.endpoint)
    }
    assert not found, "sync dependencies or endpoints (make them async def):\n" + "\n".join(
        sorted(found)
    )
