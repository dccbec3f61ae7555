"""Request parsing and response serialisation.

Bodies are parsed with orjson (fast, strict); a body orjson rejects is parsed again with the standard
library only to tell a NaN/Infinity literal (a 422 naming the field) from malformed JSON (400).
Responses are serialised with orjson (numpy arrays natively; NaN and ±inf become null).
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
from flask import Response, current_app, request

from .errors import ApiError

JSON_TYPES = ("application/json", "application/problem+json")


def _depth(obj: Any, limit: int) -> int:
    """Nesting depth of ``obj`` (stops counting past ``limit``); iterative, so deep input cannot
    exhaust the stack."""
    stack = [(obj, 1)]
    deepest = 0
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            # numeric columns are flat: only look inside containers
            stack.extend((v, d + 1) for v in node if isinstance(v, dict | list))
    return deepest


def _non_finite_paths(obj: Any, path: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(obj, float) and not math.isfinite(obj):
        out[path or "body"] = ["must be a finite number (NaN and Infinity are not allowed)"]
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_non_finite_paths(v, f"{path}.{k}" if path else str(k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(_non_finite_paths(v, f"{path}[{i}]"))
            if len(out) >= 20:
                break
    return out


def body() -> dict[str, Any]:
    """The request's JSON object, or an ApiError: 415 for a non-JSON content type, 400 for malformed or
    too deeply nested JSON or a non-object body, 422 for NaN/Infinity literals."""
    mimetype = request.mimetype
    if mimetype not in JSON_TYPES:
        raise ApiError(415, "send the body as application/json", {"Content-Type": [f"got {mimetype or 'none'}"]})
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ApiError(400, "the request body is empty; send a JSON object", {"body": ["required"]})
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            lenient = json.loads(raw)
        except (ValueError, RecursionError):
            raise ApiError(400, f"malformed JSON: {exc}", {"body": ["malformed JSON"]}) from None
        paths = _non_finite_paths(lenient)
        if paths:
            raise ApiError(422, "NaN and Infinity are not valid numbers", paths) from None
        raise ApiError(400, f"malformed JSON: {exc}", {"body": ["malformed JSON"]}) from None
    except RecursionError:
        raise ApiError(400, "the JSON body is nested too deeply", {"body": ["nested too deeply"]}) from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object", {"body": ["must be a JSON object"]})
    limit = current_app.config["MAX_JSON_DEPTH"]
    if _depth(data, limit) > limit:
        raise ApiError(400, f"the JSON body is nested more than {limit} levels deep", {"body": ["nested too deeply"]})
    return data


def respond(payload: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS),
        status=status,
        mimetype="application/json",
    )
