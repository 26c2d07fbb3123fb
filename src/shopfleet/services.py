"""The registry of services: name to app factory, imported lazily."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from shopfleet.common.settings import SERVICES


def app_factory(service: str) -> Callable[..., FastAPI]:
    """Return `create_app` of a service package."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    module: Any = importlib.import_module(f"shopfleet.{service}.app")
    factory: Callable[..., FastAPI] = module.create_app
    return factory
