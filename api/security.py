"""Optional API keys, CORS from an allow-list, and security headers on every response.

* ``LIQRISK_API_KEYS``: when set, every route but ``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.yaml``,
  ``/docs``, the web calculator's page and files (``/``, ``/web/``; its API calls send the key the user enters)
  and CORS preflights needs ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``; else 401 problem
  with ``WWW-Authenticate``. Keys may be given as ``sha256:<hex>`` so the plain key need not sit in the
  environment; comparison is constant-time (``hmac.compare_digest``).
* ``LIQRISK_CORS_ORIGINS``: origins allowed to call from a browser (``*`` for any). Allowed origins get
  ``Access-Control-Allow-Origin`` (echoed, with ``Vary: Origin``); preflights get the methods and headers; others
  get no CORS headers (the browser blocks them). https://fetch.spec.whatwg.org/#http-cors-protocol
* Security headers (OWASP Secure Headers): ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
  ``Referrer-Policy: no-referrer``, a Content-Security-Policy (``default-src 'none'`` for API responses; the
  Swagger UI page gets what it needs from its own origin; the web calculator gets scripts, styles and API calls
  from its own origin only, no inline script), ``Cache-Control: no-store`` on ``/v1`` answers, and
  HSTS when ``LIQRISK_HSTS`` is on.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask, Response, request

from .errors import problem

#: endpoints open to everyone: no API key, no rate limit (probes, metrics, the spec, its docs, the web page)
OPEN = ("meta.healthz", "meta.readyz", "meta.metrics", "meta.openapi", "swagger_ui.", "web.")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'")  # fmt: skip
#: the web calculator (``/`` and its files under ``/web/``): scripts, styles and API calls from its own origin
#: only, no inline script or style, no frames, forms post nowhere else
WEB_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")  # fmt: skip
EXPOSED = "X-Request-ID, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"


def _digests(keys: tuple[str, ...]) -> list[bytes]:
    out = []
    for k in keys:
        if k.startswith("sha256:"):
            out.append(bytes.fromhex(k[7:]))
        else:
            out.append(hashlib.sha256(k.encode()).digest())
    return out


def key_in(x_api_key: str | None, authorization: str | None) -> str | None:
    """The API key a request presents: its ``X-API-Key`` field, else the token of ``Authorization: Bearer``."""
    if x_api_key:
        return x_api_key
    auth = authorization or ""
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return None


def presented_key() -> str | None:
    return key_in(request.headers.get("X-API-Key"), request.headers.get("Authorization"))


def admits(app: Flask, environ: dict) -> bool:
    """Whether a request (its WSGI environ) passes the key check of a route that needs a key: no keys are set,
    or it presents a valid one. The light worker asks before it reads a heavy request's body
    (:class:`api.heavy_workers.HeavyProxy`), so a client without a key never has it buffered."""
    if not app.extensions.get("liqrisk_key_digests"):
        return True
    key = key_in(environ.get("HTTP_X_API_KEY"), environ.get("HTTP_AUTHORIZATION"))
    return key is not None and key_is_valid(app, key)


def key_is_valid(app: Flask, key: str) -> bool:
    got = hashlib.sha256(key.encode()).digest()
    ok = False
    for d in app.extensions.get("liqrisk_key_digests", ()):
        ok |= hmac.compare_digest(got, d)  # no early exit: the time does not depend on which key matched
    return ok


def _preflight() -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def install(app: Flask) -> None:
    digests = app.extensions["liqrisk_key_digests"] = _digests(app.config["API_KEYS"])
    origins = set(app.config["CORS_ORIGINS"])

    @app.before_request
    def _require_key():
        if not digests or _preflight() or (request.endpoint or "").startswith(OPEN):
            return None
        key = presented_key()
        challenge = {"WWW-Authenticate": 'ApiKey, Bearer realm="liqrisk"'}
        if key is None:
            detail = "this service needs an API key: send X-API-Key or Authorization: Bearer"
            return problem(401, detail, {"X-API-Key": ["required"]}, "Unauthorized", challenge)
        if not key_is_valid(app, key):
            errors = {"X-API-Key": ["not a valid key"]}
            return problem(401, "the API key is not valid", errors, "Unauthorized", challenge)
        return None

    # the headers every response gets, per kind of path, built once: (lower-case name, name, value, replace)
    # where replace=False keeps a value the route set itself
    hsts = (("strict-transport-security", "Strict-Transport-Security", "max-age=31536000; includeSubDomains", False),)
    plan = {
        (csp, v1): (
            ("x-content-type-options", "X-Content-Type-Options", "nosniff", False),
            ("x-frame-options", "X-Frame-Options", "DENY", False),
            ("referrer-policy", "Referrer-Policy", "no-referrer", False),
            ("content-security-policy", "Content-Security-Policy", csp, False),
            *((("cache-control", "Cache-Control", "no-store", True),) if v1 else ()),
            *(hsts if app.config["HSTS"] else ()),
        )
        for csp in (API_CSP, DOCS_CSP, WEB_CSP)
        for v1 in (False, True)
    }

    @app.after_request
    def _headers(resp: Response) -> Response:
        req = request._get_current_object()  # one context lookup instead of one per attribute
        h = resp.headers
        if origins:
            origin = req.headers.get("Origin")
            if origin and ("*" in origins or origin in origins):
                h["Access-Control-Allow-Origin"] = origin
                h.add("Vary", "Origin")
                h["Access-Control-Expose-Headers"] = EXPOSED
                if req.method == "OPTIONS" and "Access-Control-Request-Method" in req.headers:
                    h["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
                    h["Access-Control-Allow-Headers"] = "Content-Type, X-API-Key, Authorization, X-Request-ID"
                    h["Access-Control-Max-Age"] = "600"
        path = req.path
        if path.startswith("/docs"):
            csp = DOCS_CSP
        elif path == "/" or path.startswith("/web/"):
            csp = WEB_CSP
        else:
            csp = API_CSP
        present = {k.lower() for k, _ in h}
        for lower, name, value, replace in plan[csp, path.startswith("/v1")]:
            if lower not in present:
                h.add(name, value)
            elif replace:
                h.set(name, value)
        return resp
