"""Every service's view of another (its `*_client.py`) against the serving service's schema.

For each internal call, the serving side is described by its internal OpenAPI schema,
generated from that service's `create_app` (`common.openapi.internal_openapi`); the calling
side by what its client really sends (captured at the transport) and by the contract models
it decodes answers with. A call passes when the path and method are served, the query
parameters are declared, the body is valid under the server's request schema and its model
fits it, each answer model the client decodes accepts what the server declares for that
status, and each problem type the client matches is one the server declares it raises.
Models compare structurally (types, required and known fields, enums); string formats and
numeric bounds are not compared.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import httpx
import jsonschema
import pytest
from pydantic import BaseModel

from shopfleet.categories.products_client import ProductsClient as CategoriesProductsClient
from shopfleet.common.errors import DependencyUnavailable
from shopfleet.common.http import ServiceClient
from shopfleet.common.metrics import Metrics
from shopfleet.common.openapi import PROBLEM_TYPES, internal_openapi
from shopfleet.common.settings import Settings
from shopfleet.contracts import auth, categories, products
from shopfleet.contracts.base import Problem
from shopfleet.orders.products_client import ProductsClient as OrdersProductsClient
from shopfleet.products.categories_client import CategoriesClient
from shopfleet.services import app_factory
from shopfleet.users.auth_client import AuthClient

Schema = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """One internal call as its client makes it and reads the answers."""

    name: str
    caller: str
    server: str
    make: Callable[[ServiceClient], Awaitable[object]]
    # The statuses the client reads, each with the model it decodes the body with (None:
    # it reads the status only), and the problem types it matches per status.
    answers: dict[int, type[BaseModel] | None]
    problems: dict[int, frozenset[str]] = field(default_factory=dict)


CALLS = [
    Call(
        "users reads an account",
        "users",
        "auth",
        lambda http: AuthClient(http).get_account(account_id=uuid.uuid4()),
        {200: auth.Account, 404: None},
    ),
    Call(
        "users lists accounts",
        "users",
        "auth",
        lambda http: AuthClient(http).list_accounts(
            page=2, limit=10, email="ann", role="admin", active=False
        ),
        {200: auth.AccountPage},
    ),
    Call(
        "users changes an account",
        "users",
        "auth",
        lambda http: AuthClient(http).update_account(
            account_id=uuid.uuid4(),
            changes=auth.AccountChanges(name="Ann", role="admin", active=False),
        ),
        {200: auth.Account, 404: None},
    ),
    Call(
        "products resolves a category slug",
        "products",
        "categories",
        lambda http: CategoriesClient(http).resolve("garden-tools"),
        {200: categories.Category, 404: None},
    ),
    Call(
        "products checks a category id",
        "products",
        "categories",
        lambda http: CategoriesClient(http).require(uuid.uuid4()),
        {200: categories.Category, 404: None},
    ),
    Call(
        "categories counts a category's products",
        "categories",
        "products",
        lambda http: CategoriesProductsClient(http).count_products_using(category_id=uuid.uuid4()),
        {200: products.CategoryUsage},
    ),
    Call(
        "orders reserves stock",
        "orders",
        "products",
        lambda http: OrdersProductsClient(http).reserve_stock(
            order_id=uuid.uuid4(), items=[(uuid.uuid4(), 2), (uuid.uuid4(), 100)]
        ),
        {200: products.ReservationPublic, 409: products.ReservationConflict, 422: Problem},
        {409: frozenset({products.INSUFFICIENT_STOCK, products.RESERVATION_RELEASED})},
    ),
    Call(
        "orders releases stock",
        "orders",
        "products",
        lambda http: OrdersProductsClient(http).release_stock(order_id=uuid.uuid4()),
        {200: None},
    ),
    Call(
        "orders reads a reservation",
        "orders",
        "products",
        lambda http: OrdersProductsClient(http).reservation_status(order_id=uuid.uuid4()),
        {200: products.ReservationPublic, 404: None},
    ),
]


@cache
def server_schema(service: str) -> str:
    """The serving service's internal schema (as JSON text, so no test can change it)."""
    return json.dumps(internal_openapi(app_factory(service)(Settings(service=service))))


async def sent_request(call: Call) -> httpx.Request:
    """Make the call through a transport that keeps the request and answers a plain 500."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)  # an answer outside every contract: the call fails

    settings = Settings(service=call.caller)
    http = ServiceClient(
        settings, Metrics(), internal_token="t", transport=httpx.MockTransport(answer)
    )
    try:
        with pytest.raises(DependencyUnavailable):
            await call.make(http)
    finally:
        await http.aclose()
    assert len(sent) == 1, "a 500 is not retried"
    return sent[0]


def operation_for(schema: Schema, method: str, path: str) -> Schema:
    for template, operations in schema["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
            assert method.lower() in operations, f"{method} {template} is not served"
            operation: Schema = operations[method.lower()]
            return operation
    raise AssertionError(f"no internal route serves {path}")


@pytest.mark.parametrize("call", CALLS, ids=[c.name for c in CALLS])
async def test_the_client_fits_the_serving_schema(call: Call) -> None:
    schema = json.loads(server_schema(call.server))
    request = await sent_request(call)
    operation = operation_for(schema, request.method, request.url.path)

    declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    assert set(request.url.params) <= declared, "query parameters the server does not read"

    body = operation.get("requestBody")
    if body is None:
        assert request.content == b"", "a body the server does not read"
    else:
        assert request.headers["content-type"] == "application/json"
        body_schema = body["content"]["application/json"]["schema"]
        jsonschema.validate(json.loads(request.content), {**body_schema, **schema})

    responses = operation["responses"]
    for status, model in call.answers.items():
        assert str(status) in responses, f"the client reads a {status} the server never sends"
        answer = responses[str(status)]
        if model is not None:
            content = answer["content"]
            media = "application/json" if status < 400 else "application/problem+json"
            assert media in content, f"{status} is not sent as {media}"
            writer = Reference(content[media]["schema"], schema)
            reader = Reference(
                model.model_json_schema(mode="validation", ref_template="#/$defs/{model}"), None
            )
            assert mismatches(reader, writer) == [], f"{model.__name__} cannot read a {status}"
        matched = call.problems.get(status, frozenset())
        assert matched <= set(answer.get(PROBLEM_TYPES, [])), (
            "problem types the server never raises"
        )


# The request models the clients send, as (server, method, path, model).
REQUEST_MODELS: list[tuple[str, str, str, type[BaseModel]]] = [
    ("auth", "PATCH", auth.account_path(uuid.uuid4()), auth.AccountChanges),
    ("products", "POST", products.reservations_path(), products.ReservationRequest),
]


@pytest.mark.parametrize(
    ("server", "method", "path", "model"),
    REQUEST_MODELS,
    ids=[m[3].__name__ for m in REQUEST_MODELS],
)
def test_the_request_model_fits_the_serving_schema(
    server: str, method: str, path: str, model: type[BaseModel]
) -> None:
    """Every body the model can produce is valid for the server, not only the one sent."""
    schema = json.loads(server_schema(server))
    operation = operation_for(schema, method, path)
    reader = Reference(operation["requestBody"]["content"]["application/json"]["schema"], schema)
    writer = Reference(model.model_json_schema(mode="serialization"), None)
    assert mismatches(reader, writer) == []


def test_a_mismatch_is_found() -> None:
    """The comparison can fail: a renamed, a retyped and an unknown field are each found."""

    class Renamed(BaseModel):
        order_id: uuid.UUID
        state: str

    reader = Reference(products.ReservationPublic.model_json_schema(), None)
    writer = Reference(Renamed.model_json_schema(mode="serialization"), None)
    found = mismatches(reader, writer)
    assert any("status" in m for m in found) and any("items" in m for m in found)

    class Retyped(BaseModel):
        count: str

    reader = Reference(products.CategoryUsage.model_json_schema(), None)
    writer = Reference(Retyped.model_json_schema(mode="serialization"), None)
    assert mismatches(reader, writer) == ["$.count: sends string, reads integer"]

    class Extra(BaseModel):
        order_id: uuid.UUID
        items: list[products.ReservationItem]
        priority: int

    reader = Reference(products.ReservationRequest.model_json_schema(), None)
    writer = Reference(Extra.model_json_schema(mode="serialization"), None)
    assert "$.priority: sent, but unknown fields are refused" in mismatches(reader, writer)


@dataclass(frozen=True)
class Reference:
    """A schema and the document its `$ref`s point into (itself when `root` is None)."""

    node: Schema
    root: Schema | None

    def resolved(self) -> Reference:
        node, root = self.node, self.root if self.root is not None else self.node
        while "$ref" in node:
            target: Any = root
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return Reference(node, root)

    def child(self, node: Schema) -> Reference:
        return Reference(node, self.root if self.root is not None else self.node)


def _types(node: Schema) -> set[str] | None:
    if "const" in node:
        return {_json_type(node["const"])}
    if "enum" in node:
        return {_json_type(v) for v in node["enum"]}
    kind = node.get("type")
    if kind is None:
        return None
    return {kind} if isinstance(kind, str) else set(kind)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else type(value).__name__


def _branches(node: Schema) -> list[Schema] | None:
    return node.get("anyOf") or node.get("oneOf")


def mismatches(reader: Reference, writer: Reference, at: str = "$") -> list[str]:
    """Why `reader` may refuse a body valid under `writer` (empty when it never does)."""
    reader, writer = reader.resolved(), writer.resolved()
    r, w = reader.node, writer.node
    if (w_branches := _branches(w)) is not None:
        return [m for b in w_branches for m in mismatches(reader, writer.child(b), at)]
    if (r_branches := _branches(r)) is not None:
        tries = [mismatches(reader.child(b), writer, at) for b in r_branches]
        return [] if any(not t for t in tries) else min(tries, key=len)
    r_types, w_types = _types(r), _types(w)
    if r_types is not None:
        if w_types is None:
            return [f"{at}: sends anything, reads {sorted(r_types)}"]
        widened = r_types | ({"integer"} if "number" in r_types else set())
        if not w_types <= widened:
            return [f"{at}: sends {'/'.join(sorted(w_types))}, reads {'/'.join(sorted(r_types))}"]
    for key in ("enum", "const"):
        if key in r:
            allowed = r[key] if key == "enum" else [r[key]]
            sent = w.get("enum", [w["const"]] if "const" in w else None)
            if sent is None or not set(sent) <= set(allowed):
                return [f"{at}: sends {sent}, reads only {allowed}"]
    found: list[str] = []
    if "object" in (w_types or set()) and "properties" in r:
        r_props, w_props = r["properties"], w.get("properties", {})
        for name in r.get("required", []):
            if name not in w.get("required", []):
                found.append(f"{at}.{name}: read as required, not always sent")
        for name, node in w_props.items():
            if name in r_props:
                found += mismatches(reader.child(r_props[name]), writer.child(node), f"{at}.{name}")
            elif r.get("additionalProperties") is False:
                found.append(f"{at}.{name}: sent, but unknown fields are refused")
    if "array" in (w_types or set()) and "items" in r and "items" in w:
        found += mismatches(reader.child(r["items"]), writer.child(w["items"]), f"{at}[]")
    return found
