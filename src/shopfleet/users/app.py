"""The users service: profiles and the admin user directory, accounts through auth."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from shopfleet.common.app import ServiceSpec, create_service_app
from shopfleet.common.settings import Settings
from shopfleet.users.api import router

SPEC = ServiceSpec(name="users", title="shopfleet users", routers=[router])


def create_app(
    settings: Settings | None = None, *, http_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    settings = settings or Settings(service="users")
    return create_service_app(settings, SPEC, http_transport=http_transport)
