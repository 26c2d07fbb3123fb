"""The users service: profiles and the admin user directory, accounts through auth."""

from __future__ import annotations

from typing import Unpack

from fastapi import FastAPI

from shopfleet.common.app import AppOptions, ServiceSpec, create_service_app
from shopfleet.common.settings import Settings
from shopfleet.users.api import router

SPEC = ServiceSpec(name="users", title="shopfleet users", routers=[router])


def create_app(settings: Settings | None = None, **options: Unpack[AppOptions]) -> FastAPI:
    return create_service_app(settings or Settings(service="users"), SPEC, **options)
