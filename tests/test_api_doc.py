"""docs/api.md lists exactly the public routes the services' OpenAPI schemas have."""

from __future__ import annotations

import re

from shopfleet.common.settings import SERVICES, Settings
from shopfleet.services import app_factory
from tests.support import REPO_ROOT

ROUTE = re.compile(r"^\| (GET|POST|PUT|PATCH|DELETE) (/v1/\S+) \|", re.M)


def normalise(path: str) -> str:
    """Path parameters by position only: `{id}`, `{product_id}` and `{idOrSlug}` are alike."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_the_documented_routes_are_the_served_routes() -> None:
    documented = {
        (method, normalise(path))
        for method, path in ROUTE.findall((REPO_ROOT / "docs" / "api.md").read_text())
    }
    served = set()
    for service in SERVICES:
        schema = app_factory(service)(Settings(service=service)).openapi()
        for path, operations in schema["paths"].items():
            if path.startswith("/v1/"):
                served |= {(method.upper(), normalise(path)) for method in operations}
    assert documented - served == set(), "documented but not served"
    assert served - documented == set(), "served but not in docs/api.md"
