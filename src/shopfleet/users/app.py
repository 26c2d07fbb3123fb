"""The users service: profiles and the admin user directory, accounts through auth."""

from __future__ import annotations

from typing import Unpack

from fastapi import FastAPI

from shopfleet.common.app import AppOptions, Resources, ServiceSpec, create_service_app
from shopfleet.common.settings import Settings
from shopfleet.users.api import router
from shopfleet.users.auth_client import AuthClient


async def _start_auth_client(app: FastAPI, resources: Resources) -> None:
    resources.provide(AuthClient(resources.http))


SPEC = ServiceSpec(
    name="users", title="shopfleet users", routers=[router], startup=[_start_auth_client]
)


def create_app(settings: Settings | None = None, **options: Unpack[AppOptions]) -> FastAPI:
    return create_service_app(settings or Settings(service="users"), SPEC, **options)
