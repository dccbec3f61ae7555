"""RFC 9457 problem details for every error (``application/problem+json``), registered once.

Body: ``{"type", "title", "status", "detail", "errors": {"<field path>": ["message", ...]}}``. No
response carries a stack trace or an internal path; unexpected exceptions become a 500 problem whose
detail says nothing about the code.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask, Response, g, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from core import InputError
from core.budget import BudgetExceeded
from core.errors import as_input_error

PROBLEM = "application/problem+json"
log = logging.getLogger("liqrisk.api")


class ApiError(Exception):
    """An error with an HTTP status and per-field messages."""

    def __init__(self, status: int, detail: str, errors: dict[str, list[str]] | None = None, title: str | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or {}
        self.title = title


TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(
    status: int,
    detail: str,
    errors: dict[str, Any] | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {
        "type": f"https://liqrisk.dev/problems/{status}",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "errors": errors or {},
    }
    resp = Response(orjson.dumps(body), status=status, mimetype=PROBLEM)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error dict → ``{"positions[0].side": ["..."]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten_messages(value, path))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out[prefix or "body"] = list(messages)
    elif isinstance(messages, list):
        for i, m in enumerate(messages):
            out.update(flatten_messages(m, f"{prefix}[{i}]"))
    else:
        out[prefix or "body"] = [str(messages)]
    return out


#: HTTP status of each :class:`core.InputError` kind. A position past the last tier's cap is a 422 like any
#: other value the engine cannot price; 413 is for bodies and batches too large, answered before core runs.
STATUS_BY_KIND = {"invalid": 422, "unknown": 404, "too_large": 422}


def from_value_error(exc: ValueError, prefix: str = "") -> ApiError:
    """A :class:`core.InputError` (or another ``ValueError`` read as one by :func:`core.errors.as_input_error`)
    → the problem naming its field under ``prefix``: 404 for an unknown exchange or symbol, else 422."""
    err = as_input_error(exc)
    path = f"{prefix}.{err.field}" if prefix and err.field != "body" else err.field
    return ApiError(STATUS_BY_KIND[err.kind], str(exc), {path: [err.message]})


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return problem(exc.status, exc.detail, exc.errors, exc.title)

    @app.errorhandler(InputError)
    def _input_error(exc: InputError) -> Response:  # a core call outside ``routes._common.call``
        err = from_value_error(exc)
        return problem(err.status, err.detail, err.errors, err.title)

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError) -> Response:
        errors = flatten_messages(exc.messages)
        return problem(422, "the request has invalid fields: " + ", ".join(sorted(errors)), errors)

    @app.errorhandler(BudgetExceeded)
    def _over_budget(exc: BudgetExceeded) -> Response:
        from .observability import BUDGET_EXCEEDED

        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        BUDGET_EXCEEDED.labels(route).inc()
        rid = g.get("request_id", "")
        detail = (
            f"the request ran past its compute budget of {exc.budget:g} s and was stopped (request id {rid}); "
            "retry after Retry-After seconds, or send a smaller request"
        )
        errors = {exc.where: [f"over the {exc.budget:g} s compute budget at this size; send a smaller request"]}
        return problem(503, detail, errors, headers={"Retry-After": str(app.config["RETRY_AFTER"])})

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        detail = {
            404: "no such route",
            405: "method not allowed on this route",
            413: "the request body is larger than this service accepts",
            429: f"too many requests: the limit is {exc.description}; retry after Retry-After seconds",
        }.get(status, exc.description or TITLES.get(status, "error"))
        errors: dict[str, list[str]] = {}
        if status == 413:
            errors = {"body": [detail]}
        elif status == 429:
            errors = {"client": [f"limit {exc.description}"]}
        resp = problem(status, detail, errors, exc.name)
        for k, v in exc.get_headers():  # keeps Allow (405) and Retry-After (429)
            if k.lower() not in ("content-type", "content-length"):
                resp.headers[k] = v
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem(500, "an internal error occurred; it has been logged")
