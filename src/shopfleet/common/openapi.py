"""Make each service's OpenAPI schema describe the problem+json errors it really sends."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import RouteContext, iter_route_contexts
from pydantic import BaseModel

from shopfleet.common.errors import ShopfleetError

PROBLEM_TYPES = "x-problem-types"  # the problem `type` URNs an answer's status may carry
INTERNAL_PREFIX = "/internal/"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem details object.",
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "required": ["field", "message"],
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}
_PROBLEM_RESPONSE = {
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
}


def install_problem_schema(app: FastAPI) -> None:
    """Replace FastAPI's default 422 body with Problem and document errors as problems."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=_routes(app, internal=False),
        )
        app.openapi_schema = _with_problems(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def internal_openapi(app: FastAPI) -> dict[str, Any]:
    """The schema of a service's internal routes, which its published schema leaves out.

    It is what callers are checked against (tests/test_contracts.py).
    """
    schema = get_openapi(
        title=f"{app.title} (internal)", version=app.version, routes=_routes(app, internal=True)
    )
    return _with_problems(schema)


def _routes(app: FastAPI, *, internal: bool) -> list[RouteContext]:
    # Internal routes stay out of the published schema (the gateway's public listener
    # answers 404 for them) but are described all the same, for the contract test.
    return [
        route
        for route in iter_route_contexts(app.routes)
        if (route.path or "").startswith(INTERNAL_PREFIX) is internal
    ]


def problem_responses(
    *errors: type[ShopfleetError], models: Mapping[int, type[BaseModel]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """An endpoint's `responses`: per status, the problem types it raises and their body."""
    responses: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        entry = responses.setdefault(
            error.status_code,
            {"description": HTTPStatus(error.status_code).phrase, PROBLEM_TYPES: []},
        )
        entry[PROBLEM_TYPES].append(error.problem_type)
    for status, model in (models or {}).items():
        responses.setdefault(status, {"description": HTTPStatus(status).phrase})["model"] = model
    return responses


def _with_problems(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Problem"] = PROBLEM_SCHEMA
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for answer in responses.values():
                if PROBLEM_TYPES in answer:
                    # A problem is sent as problem+json; FastAPI files a model under JSON.
                    content = answer.setdefault("content", {})
                    body = content.pop("application/json", None)
                    content["application/problem+json"] = (
                        body or _PROBLEM_RESPONSE["content"]["application/problem+json"]
                    )
            responses["422"] = {"description": "The request is not valid.", **_PROBLEM_RESPONSE}
            responses["default"] = {"description": "An error.", **_PROBLEM_RESPONSE}
    return schema
