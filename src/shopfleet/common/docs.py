"""Each instance's API docs page, with Swagger UI served by the instance itself.

The assets come from the pinned `swagger-ui-bundle-v2` package (Swagger UI 5, which reads
the OpenAPI 3.1 schemas FastAPI writes), so the page loads nothing from another host: no
CDN to trust without integrity, and it works offline. Every URL in the page is relative,
so it works on the instance (`/docs/`) and under the gateway (`/docs/<service>/`).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException

# The only files the page needs; anything else under /docs/assets/ is a 404.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


@cache
def assets_dir() -> Path:
    spec = importlib.util.find_spec("swagger_ui_bundle")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-bundle-v2 is not installed (see pyproject.toml)")
    vendor = Path(next(iter(spec.submodule_search_locations))) / "vendor"
    return next(vendor.glob("swagger-ui-*"))


def docs_router(app: FastAPI, title: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def docs_without_slash() -> RedirectResponse:
        # Relative, so it holds behind any prefix; the page needs the slash for its URLs.
        return RedirectResponse("docs/", status_code=308)

    @router.get("/docs/")
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="openapi.json",
            title=f"{title} docs",
            swagger_js_url="assets/swagger-ui-bundle.js",
            swagger_css_url="assets/swagger-ui.css",
            swagger_favicon_url="assets/favicon-32x32.png",
            # Swagger UI would otherwise fetch a validity badge from validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @router.get("/docs/openapi.json")
    async def schema() -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/docs/assets/{name}")
    async def asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404, "no such asset")
        return FileResponse(
            assets_dir() / name,
            media_type=ASSETS[name],
            headers={"Cache-Control": "public, max-age=86400"},
        )

    return router
