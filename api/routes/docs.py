"""Interactive API docs (Swagger UI) served from the flask-swagger-ui package's own files: no CDN."""

from __future__ import annotations

from flask_swagger_ui import get_swaggerui_blueprint

bp = get_swaggerui_blueprint("/docs", "/openapi.yaml", config={"app_name": "liqrisk API"})
