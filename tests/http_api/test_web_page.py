"""The web calculator's page and files (no browser needed): served with a CSP that allows only this origin,
open when API keys are required, loading nothing from another origin, and all of them installed as package data."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

from api import TestConfig, create_app
from api.security import WEB_CSP

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "api" / "web"


def test_page_and_files_are_served_with_the_web_csp(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"] == WEB_CSP
    assert "'unsafe-inline'" not in WEB_CSP and "script-src 'self'" in WEB_CSP and "connect-src 'self'" in WEB_CSP
    for path, mimetype in (("/web/app.css", "text/css"), ("/web/js/main.js", "text/javascript")):
        resp = client.get(path)
        assert resp.status_code == 200 and resp.mimetype == mimetype, path
        assert resp.headers["Content-Security-Policy"] == WEB_CSP
    assert (
        client.post("/v1/pnl", json={}).headers["Content-Security-Policy"]
        == "default-src 'none'; frame-ancestors 'none'"
    )
    assert client.get("/web/nope.js").status_code == 404


def test_page_is_open_when_keys_are_required_and_the_api_is_not() -> None:
    c = create_app(type("Keyed", (TestConfig,), {"API_KEYS": ("k1",)})).test_client()
    assert c.get("/").status_code == 200 and c.get("/web/js/form.js").status_code == 200
    assert c.get("/v1/exchanges").status_code == 401
    assert c.get("/v1/exchanges", headers={"X-API-Key": "k1"}).status_code == 200


def test_nothing_is_loaded_from_another_origin() -> None:
    html = (WEB / "index.html").read_text()
    assert "<script>" not in html and " style=" not in html and not re.search(r"\son[a-z]+=", html)  # CSP: no inline
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert ref.startswith(("/", "#", "data:")), ref
    for js in WEB.glob("js/*.js"):
        text = js.read_text()
        for target in re.findall(r'^import .*? from "([^"]+)";', text, flags=re.M):
            assert target.startswith("./") and (js.parent / target).is_file(), (js.name, target)
        assert not re.search(r"""fetch\(\s*["'`]https?:""", text), js.name
        assert "innerHTML" not in text, js.name  # results are built as DOM nodes, never parsed from strings


def test_every_file_is_package_data() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["api"]
    for f in WEB.rglob("*"):
        if f.is_file():
            rel = f.relative_to(ROOT / "api").as_posix()
            assert any(fnmatch.fnmatch(rel, g) for g in globs), rel
