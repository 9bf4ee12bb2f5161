"""/docs: Swagger UI from postback's own static files (web/static/swagger-ui/, copied from
the npm package swagger-ui-dist by scripts/vendor_swagger_ui.sh), so the API's docs load
without reaching a CDN. FastAPI's own /docs and /redoc pages fetch their scripts from
one; both are turned off in create_app."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

ASSETS = "/static/swagger-ui"


def install(app: FastAPI) -> None:
    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            # No badge that asks swagger.io's online validator about our document.
            swagger_ui_parameters={"validatorUrl": None},
        )
