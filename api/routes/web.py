"""The web calculator: ``GET /`` serves one HTML page; its CSS and JavaScript modules are under ``/web/``.

Plain files from the package (``api/web``): no build step, nothing loaded from another origin. Every form on
the page calls the public ``/v1`` routes, so the page shows exactly what the API answers.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint

bp = Blueprint(
    "web", __name__, static_folder=str(Path(__file__).resolve().parent.parent / "web"), static_url_path="/web"
)


@bp.get("/")
def index():
    return bp.send_static_file("index.html")
