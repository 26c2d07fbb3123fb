"""The auth service: accounts, sessions and token signing."""

from __future__ import annotations

from typing import Unpack

from fastapi import FastAPI

from shopfleet.auth.api import internal, router
from shopfleet.auth.passwords import Passwords
from shopfleet.auth.service import AuthContext
from shopfleet.common.app import AppOptions, Resources, ServiceSpec, create_service_app
from shopfleet.common.settings import Settings
from shopfleet.common.tokens import TokenSigner, key_id, load_signing_key


async def _load_keys(app: FastAPI, resources: Resources) -> None:
    key = load_signing_key(resources.settings)
    signer = TokenSigner(key, resources.settings)
    # Auth verifies its own tokens with its own key, never over HTTP.
    resources.verifier.keys[key_id(key.public_key())] = key.public_key()
    resources.provide(
        AuthContext(
            settings=resources.settings, passwords=Passwords(resources.settings), signer=signer
        )
    )


SPEC = ServiceSpec(
    name="auth", title="shopfleet auth", routers=[router, internal], startup=[_load_keys]
)


def create_app(settings: Settings | None = None, **options: Unpack[AppOptions]) -> FastAPI:
    return create_service_app(settings or Settings(service="auth"), SPEC, **options)
