"""Request parsing and response serialisation.

Bodies are parsed once with orjson (fast, strict), a large one in pieces (:mod:`api.json_pieces`) so that
other threads of the worker run between them. What orjson accepts but the contract does not is found
without a second parse: nesting depth and the number of object keys come from one walk over the objects
(arrays of numbers are looked at once, in C, for their element types), and duplicate keys from comparing
that count with the ``:`` separators in the raw bytes. A body orjson rejects is parsed again leniently only
when it is at most ``LENIENT_REPARSE_BYTES`` (1 MiB), to name the field holding a NaN/Infinity literal or an
integer beyond the float range (422); a larger malformed body gets orjson's own message (400, or 422 when
it stopped at such a number, naming the nearest key) at no extra cost.

Numbers themselves (finite, at most 1e300, not subnormal) are checked where they are read: the schemas'
``Number``/``NumberList`` fields and the batch columns. Responses are serialised with orjson (numpy arrays
natively, long ones in pieces; NaN and ±inf become null) after negative zeros are made positive (``-0.0`` is
never echoed).
"""

from __future__ import annotations

import json
import math
import re
from operator import methodcaller
from typing import Any

import numpy as np
import orjson
from flask import Request, Response, current_app, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.wsgi import get_content_length

from . import json_pieces
from .errors import ApiError

JSON_TYPES = ("application/json", "application/problem+json")
CONTAINERS = frozenset((dict, list))
LENIENT_REPARSE_BYTES = 1024 * 1024
#: a body of known length up to this size is read from the WSGI input in one call, without werkzeug's stream
DIRECT_READ_BYTES = 1024 * 1024
#: above this size a body whose colon count does not add up is not re-parsed to name the duplicate key
EXACT_DUPLICATE_CHECK_BYTES = 16 * 1024 * 1024
_KEY_BEFORE = re.compile(rb'"((?:[^"\\]|\\.){1,128})"\s*:\s*$')
_count_colons = methodcaller("count", ":")


def _walk(obj: Any, limit: int) -> tuple[int, int]:
    """(deepest nesting, number of object keys) — iterative, so deep input cannot exhaust the stack; stops
    counting depth past ``limit``."""
    if limit >= 1 and type(obj) is dict and CONTAINERS.isdisjoint(map(type, obj.values())):
        return 1, len(obj)  # a flat object (one position): one C-level pass over its value types
    stack = [(obj, 1)]
    deepest = keys = 0
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            break
        if isinstance(node, dict):
            keys += len(node)
            stack.extend((v, d + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list) and not CONTAINERS.isdisjoint(map(type, node)):
            # numeric columns are flat: one C-level pass over the element types, and only containers are walked
            stack.extend((v, d + 1) for v in node if isinstance(v, dict | list))
    return deepest, keys


def _string_colons(obj: Any) -> int:
    """Colons inside the strings (keys and values) of a parsed body."""
    total = 0
    stack = [obj]
    while stack:
        node = stack.pop()
        items = list(node) + list(node.values()) if isinstance(node, dict) else node
        types = set(map(type, items))
        if str in types:
            total += sum(map(_count_colons, items if types == {str} else [v for v in items if isinstance(v, str)]))
        if not CONTAINERS.isdisjoint(types):
            stack.extend(v for v in items if isinstance(v, dict | list))
    return total


def _duplicate_keys(raw: bytes, keys: int, data: Any) -> int:
    """How many object keys orjson dropped as duplicates: every ``:`` in the raw body is either a key's
    separator or inside a string, so ``colons − keys kept − colons inside strings`` counts the dropped keys.
    ``-1`` when the count cannot tell (a colon written as a ``\\u003a`` escape)."""
    colons = raw.count(b":")
    if colons == keys:
        return 0
    if b"\\u003a" in raw or b"\\u003A" in raw:
        return -1
    return colons - keys - _string_colons(data)


def _name_duplicate(raw: bytes) -> str | None:
    """The first duplicated key, from a stdlib parse that sees every pair (only for bodies of moderate size)."""
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for k, _ in items:
            if k in seen and not found:
                found.append(k)
            seen.add(k)
        return dict(items)

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None
    return found[0] if found else None


def _bad_number_paths(obj: Any, path: str = "") -> dict[str, list[str]]:
    """Paths of NaN/Infinity literals and of integers beyond the float range in a leniently parsed body."""
    out: dict[str, list[str]] = {}
    if isinstance(obj, float) and not math.isfinite(obj):
        out[path or "body"] = ["must be a finite number (NaN, Infinity and numbers beyond 1e308 are not allowed)"]
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_bad_number_paths(v, f"{path}.{k}" if path else str(k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(_bad_number_paths(v, f"{path}[{i}]"))
            if len(out) >= 20:
                break
    return out


def _field_at(raw: bytes, pos: int) -> str:
    """The key (and array index) of the value at byte ``pos``, read from the raw text around it: the key just
    before it, or, inside an array of numbers, the key before the array and the commas since its start.
    Best effort (no parse): ``body`` when the text does not tell."""
    before = raw[max(0, pos - 256) : pos].rstrip()
    m = _KEY_BEFORE.search(before)
    if m:
        return m.group(1).decode("utf-8", "replace")
    if before.endswith((b",", b"[")):
        start = raw.rfind(b"[", 0, pos)
        m = _KEY_BEFORE.search(raw[max(0, start - 256) : start].rstrip() + b" ") if start >= 0 else None
        if m:
            return f"{m.group(1).decode('utf-8', 'replace')}[{raw.count(b',', start, pos)}]"
    return "body"


def _malformed(raw: bytes, exc: orjson.JSONDecodeError) -> ApiError:
    message = str(exc)
    if len(raw) <= LENIENT_REPARSE_BYTES:
        try:  # integers become floats, so one beyond the float range reads as inf and is named like a NaN
            lenient = json.loads(raw, parse_int=float)
        except (ValueError, RecursionError):
            return ApiError(400, f"malformed JSON: {message}", {"body": ["malformed JSON"]})
        paths = _bad_number_paths(lenient)
        if paths:
            return ApiError(422, "the body holds numbers that are not finite JSON numbers", paths)
        return ApiError(400, f"malformed JSON: {message}", {"body": ["malformed JSON"]})
    # a large body: orjson's message and position only; name the nearest key before the position
    pos = getattr(exc, "pos", -1)
    at = raw[pos : pos + 9] if 0 <= pos < len(raw) else b""
    if "infinity" in message or at.startswith((b"NaN", b"Infinity", b"-Infinity")):
        field = _field_at(raw, pos)
        return ApiError(
            422,
            f"the body holds a number that is not a finite JSON number: {message}",
            {field: [f"must be a finite number (NaN, Infinity and numbers beyond 1e308 are not allowed); {message}"]},
        )
    return ApiError(400, f"malformed JSON: {message}", {"body": [f"malformed JSON: {message}"]})


def _read_exactly(stream: Any, length: int) -> bytes:
    """``length`` bytes of ``stream``, as werkzeug's ``LimitedStream`` reads a body of known length: a stream
    that ends early or fails to read is a client that disconnected (400)."""
    chunks, size = [], 0
    while size < length:
        try:
            chunk = stream.read(length - size)
        except (OSError, ValueError):
            raise ClientDisconnected() from None
        if not chunk:
            raise ClientDisconnected()
        chunks.append(chunk)
        size += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _read_body(req: Request) -> bytes:
    """The raw body. A chunked body (no Content-Length) is read up to one byte past the route's limit, so
    an oversized one is a 413 rather than silently cut at the limit."""
    limit = req.max_content_length
    environ = req.environ
    stream = environ.get("wsgi.input")
    length = get_content_length(environ)  # what req.content_length reads, without the header mapping
    if length is None and limit is not None and stream is not None:
        chunks, size = [], 0
        while size <= limit:
            chunk = stream.read(min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise RequestEntityTooLarge()
        return b"".join(chunks)
    if length is not None and stream is not None and environ.get("wsgi.input_terminated"):
        # the server (gunicorn) ends the input at Content-Length itself: one read, as werkzeug's stream would
        # give after several
        if limit is not None and length > limit:
            raise RequestEntityTooLarge()
        return stream.read(length)
    if (
        length is not None
        and stream is not None
        and length <= DIRECT_READ_BYTES
        and "wsgi.input_terminated" not in environ
    ):
        # a small body of known length from a server that does not end the input itself: read exactly
        # Content-Length bytes, as werkzeug's LimitedStream does, without building one
        if limit is not None and length > limit:
            raise RequestEntityTooLarge()
        return _read_exactly(stream, length) if length else b""
    return req.get_data(cache=False)


def body() -> dict[str, Any]:
    """The request's JSON object, or an ApiError: 415 for a non-JSON content type, 400 for malformed or
    too deeply nested JSON or a non-object body, 422 for NaN/Infinity literals, integers beyond the float
    range and duplicate keys."""
    req = request._get_current_object()  # one context lookup instead of one per attribute
    mimetype = req.environ.get("CONTENT_TYPE")
    if mimetype not in JSON_TYPES:  # the exact header needs no parsing; anything else is parsed by werkzeug
        mimetype = req.mimetype
    if mimetype not in JSON_TYPES:
        raise ApiError(415, "send the body as application/json", {"Content-Type": [f"got {mimetype or 'none'}"]})
    raw = _read_body(req)
    if not raw or raw.isspace():
        raise ApiError(400, "the request body is empty; send a JSON object", {"body": ["required"]})
    try:
        data = json_pieces.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _malformed(raw, exc) from None
    except RecursionError:
        raise ApiError(400, "the JSON body is nested too deeply", {"body": ["nested too deeply"]}) from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object", {"body": ["must be a JSON object"]})
    limit = current_app.config["MAX_JSON_DEPTH"]
    depth, keys = _walk(data, limit)
    if depth > limit:
        raise ApiError(400, f"the JSON body is nested more than {limit} levels deep", {"body": ["nested too deeply"]})
    dropped = _duplicate_keys(raw, keys, data)
    if dropped:
        name = _name_duplicate(raw) if len(raw) <= EXACT_DUPLICATE_CHECK_BYTES else None
        if dropped > 0 or name is not None:
            raise ApiError(
                422,
                "the body repeats an object key; each key may appear once per object",
                {name or "body": ["duplicate key: give each field once"]},
            )
    return data


_NEGATIVE_ZERO = re.compile(rb"-0\.0[,}\]]")
#: the same in one piece of an answer, which may end just after the number
_NEGATIVE_ZERO_AT_END = re.compile(rb"-0\.0(?:[,}\]]|\Z)")
_FLOATS = (float, np.float64)


def _positive_zero(obj: Any, deferred: list[bool] | None = None) -> Any:
    """``obj`` with every ``-0.0`` made ``0.0``, in place where it can be (adding ``0.0`` does exactly that in
    IEEE 754). Float arrays are fixed in one pass; ``0.0 in values`` finds a zero of either sign in a list
    of floats in C; a long list of objects is serialised once and searched for ``-0.0`` before it is walked.
    With ``deferred``, a long list of objects is left as it is and noted there: the caller searches the
    serialised answer instead of serialising the list twice."""
    kind = type(obj)
    if kind in _FLOATS:
        return obj + 0.0
    if kind is np.ndarray:
        if obj.dtype.kind == "f" and obj.flags.writeable:
            np.add(obj, 0.0, out=obj)  # in place: result arrays of a million rows are not copied
        elif obj.dtype.kind == "f":
            return obj + 0.0
        return obj
    if kind is dict:
        for k, v in obj.items():
            t = type(v)
            if t in _FLOATS:
                if v == 0.0:
                    obj[k] = 0.0
            elif t is dict or t is list or t is tuple or t is np.ndarray:
                obj[k] = _positive_zero(v, deferred)
        return obj
    if kind is list or kind is tuple:
        types = set(map(type, obj))
        if len(obj) > 1000 and not types - {dict, str, int, float, bool, type(None)}:
            if deferred is not None:
                deferred.append(True)
                return obj
            dumped = orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
            if not _NEGATIVE_ZERO.search(dumped):
                return obj
        if np.ndarray in types or not CONTAINERS.isdisjoint(types) or (float in types and 0.0 in obj):
            return [_positive_zero(v, deferred) for v in obj]
    return obj


#: an answer object whose values are all scalars or containers of at most this many items (no arrays) is
#: written first and searched for ``-0.0`` after, instead of walked before
SMALL_ANSWER_ITEMS = 64


def _small(payload: Any) -> bool:
    """A dict of scalars and short lists/dicts (a single calculator's answer), cheap to write twice."""
    if type(payload) is not dict:
        return False
    for v in payload.values():
        t = type(v)
        if t is np.ndarray or ((t is list or t is dict or t is tuple) and len(v) > SMALL_ANSWER_ITEMS):
            return False
    return True


def respond(payload: Any, status: int = 200) -> Response:
    # a small payload has no value json_pieces would write in pieces: one orjson call
    parts = [orjson.dumps(payload, option=json_pieces.DUMP_OPTIONS)] if _small(payload) else None
    if parts is None or any(map(_NEGATIVE_ZERO_AT_END.search, parts)):
        # the written answer of a small payload holds no -0.0 in most cases, so it is the answer as it is;
        # otherwise (and for large payloads) every -0.0 is made 0.0 before writing
        deferred: list[bool] = []
        parts = json_pieces.dumps(_positive_zero(payload, deferred))
        if deferred and any(map(_NEGATIVE_ZERO_AT_END.search, parts)):
            parts = json_pieces.dumps(_positive_zero(payload))
    return Response(
        parts[0] if len(parts) == 1 else parts,  # a list is sent piece by piece, with its summed Content-Length
        status=status,
        content_type="application/json",  # the same header as mimetype= without working out a charset
    )
