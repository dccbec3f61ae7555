"""JSON in pieces: large bodies parsed and serialised with orjson a few hundred kilobytes at a time.

orjson holds the interpreter lock for the whole of one call: a 27 MB columnar batch takes about 230 ms to
parse and its 90 MB answer about 350 ms to write, and for that long no other thread of the worker process
runs, so every short request on a kept-alive connection to that process waits. Here the same work is done
in calls over slices of at most ``PIECE_BYTES`` (parse) or ``PIECE_ITEMS`` elements (write), and the lock can
pass to another thread between them.

Parsing finds the structure of the body in one compiled pass that runs without the lock (numba, ``nogil``):
the brackets, braces, commas and colons outside strings, with their nesting depth. A large array is cut at its
own commas into runs of elements and each run is parsed as ``[run]``; a large object is cut into members,
each key parsed and each value parsed the same way. Every byte of the body is either inside a parsed slice
or one of the separators checked here (``[ ] { } , :`` at their depth, JSON whitespace), so a body is
accepted exactly when orjson accepts it whole, and gives the same value. Whenever a slice fails, :func:`loads`
parses the whole body with orjson once, so errors carry orjson's own message and position.

orjson: https://github.com/ijl/orjson ; JSON grammar: RFC 8259 (https://www.rfc-editor.org/rfc/rfc8259).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from numba import njit

from core import lean_cache

#: bodies up to this size are parsed in one call
WHOLE_BYTES = 1 << 20
#: the most bytes one parse call reads
PIECE_BYTES = 1 << 18
#: the most elements of a numpy array one write call serialises
PIECE_ITEMS = 1 << 15
#: the most elements of a list (often objects, each several numbers) one write call serialises
PIECE_LIST_ITEMS = 1 << 12
#: how deep the cutting goes into nested large containers (deeper ones are parsed whole)
MAX_DESCENT = 8

DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

_WHITESPACE = b" \t\n\r"
_SEPARATORS = b",:[]{}"
_COMMA, _COLON, _OPEN_ARRAY, _CLOSE_ARRAY, _OPEN_OBJECT, _CLOSE_OBJECT = _SEPARATORS


class _Unsliceable(Exception):
    """The body is not cut here (malformed, or a shape these rules do not follow): parse it whole."""


#: the bytes the scan stops at: 1 for a separator, 2 for a quote, 3 for a backslash
_CLASS = np.zeros(256, dtype=np.uint8)
_CLASS[list(_SEPARATORS)] = 1
_CLASS[ord('"')] = 2
_CLASS[ord("\\")] = 3


@lean_cache.mark
@njit(cache=True, nogil=True, error_model="numpy")
def _separators_nb(buf, table, pos, char, depth):
    """Write the offset, character and depth after it of each separator outside strings into ``pos``,
    ``char``, ``depth`` (as many as fit) and return how many there are. One pass over the bytes, without the
    interpreter lock; inside a string a backslash escapes the next byte."""
    k = 0
    d = 0
    inside = False
    room = pos.shape[0]
    i = 0
    n = buf.shape[0]
    while i < n:
        c = buf[i]
        kind = table[c]
        if kind == 0:
            i += 1
            continue
        if inside:
            if kind == 3:  # a backslash escapes the next byte
                i += 1
            elif kind == 2:  # closing quote
                inside = False
        elif kind == 2:
            inside = True
        elif kind == 1:
            if c == 91 or c == 123:
                d += 1
            elif c == 93 or c == 125:
                d -= 1
            if k < room:
                pos[k] = i
                char[k] = c
                depth[k] = d
            k += 1
        i += 1
    return k


class _Structure:
    """Offsets, characters and nesting depths of the separators outside strings."""

    def __init__(self, raw: bytes):
        buf = np.frombuffer(raw, dtype=np.uint8)
        room = len(raw) // 8 + 16  # separators are rarer than one in eight bytes in data; else a second pass
        while True:
            pos = np.empty(room, dtype=np.int64)
            char = np.empty(room, dtype=np.uint8)
            depth = np.empty(room, dtype=np.int32)
            n = _separators_nb(buf, _CLASS, pos, char, depth)
            if n <= room:
                break
            room = n
        self.pos, self.char = pos[:n], char[:n]
        #: depth after each separator: an opening bracket at depth d holds elements at depth d
        self.depth = depth[:n]

    def index(self, byte: int) -> int:
        """The index of the separator at byte offset ``byte``."""
        k = int(np.searchsorted(self.pos, byte))
        if k >= self.pos.size or self.pos[k] != byte:
            raise _Unsliceable
        return k

    def close_of(self, k: int) -> int:
        """Index of the separator closing the container opened at separator ``k``: the first one after it back
        at the depth before it, looked for in windows that double in size (a cost in proportion to the
        container's own size, however many containers follow it)."""
        d = self.depth[k]
        lo, width, n = k + 1, 4096, self.depth.size
        while True:
            if lo >= n:
                raise _Unsliceable
            hit = np.flatnonzero(self.depth[lo : lo + width] == d - 1)
            if hit.size:
                j = lo + int(hit[0])
                break
            lo, width = lo + width, width * 2
        if self.char[j] != (_CLOSE_ARRAY if self.char[k] == _OPEN_ARRAY else _CLOSE_OBJECT):
            raise _Unsliceable
        return j

    def separators(self, k: int, j: int, char: int) -> np.ndarray:
        """Byte offsets of the ``char`` separators at the element depth of the container ``k`` .. ``j``."""
        inner = slice(k + 1, j)
        hit = (self.char[inner] == char) & (self.depth[inner] == self.depth[k])
        return self.pos[inner][hit]


def _blank(raw: bytes, lo: int, hi: int) -> bool:
    return lo >= hi or not raw[lo:hi].strip(_WHITESPACE)


def _first(raw: bytes, lo: int, hi: int) -> int:
    """Offset of the first non-whitespace byte in ``raw[lo:hi]`` (looked for among the first 64 bytes)."""
    window = raw[lo : min(hi, lo + 64)]
    skipped = len(window) - len(window.lstrip(_WHITESPACE))
    if skipped == len(window):
        raise _Unsliceable
    return lo + skipped


def _whole(raw: bytes, lo: int, hi: int) -> Any:
    try:
        return orjson.loads(memoryview(raw)[lo:hi])
    except orjson.JSONDecodeError:
        raise _Unsliceable from None


def _elements(raw: bytes, lo: int, hi: int) -> list:
    """The elements of the array text ``raw[lo:hi]`` (between its brackets), as a run of values."""
    if _blank(raw, lo, hi):
        raise _Unsliceable
    try:
        values = orjson.loads(b"[" + raw[lo:hi] + b"]")
    except orjson.JSONDecodeError:
        raise _Unsliceable from None
    return values


def _value(raw: bytes, s: _Structure, lo: int, hi: int, descent: int) -> Any:
    """The JSON value written in ``raw[lo:hi]`` (with optional surrounding whitespace)."""
    if hi - lo <= PIECE_BYTES or descent > MAX_DESCENT:
        return _whole(raw, lo, hi)
    start = _first(raw, lo, hi)
    opener = raw[start]
    if opener not in (_OPEN_ARRAY, _OPEN_OBJECT):
        return _whole(raw, lo, hi)
    k = s.index(start)
    j = s.close_of(k)
    end = int(s.pos[j])
    if not _blank(raw, end + 1, hi):
        raise _Unsliceable
    commas = s.separators(k, j, _COMMA)
    bounds = np.concatenate(([start], commas, [end]))
    if opener == _OPEN_ARRAY:
        return _array(raw, s, bounds, descent)
    return _object(raw, s, k, j, bounds, descent)


def _array(raw: bytes, s: _Structure, bounds: np.ndarray, descent: int) -> list:
    """An array whose element texts lie between consecutive ``bounds`` (its bracket, commas, bracket)."""
    if bounds.size == 2 and _blank(raw, int(bounds[0]) + 1, int(bounds[1])):
        return []
    sizes = np.diff(bounds)
    out: list = []
    i, n = 0, sizes.size
    while i < n:
        if sizes[i] > PIECE_BYTES:  # one large element: cut it in turn
            out.append(_value(raw, s, int(bounds[i]) + 1, int(bounds[i + 1]), descent + 1))
            i += 1
            continue
        # the longest run of small elements that fits in one piece
        limit = bounds[i] + PIECE_BYTES
        stop = int(np.searchsorted(bounds, limit, side="right")) - 1
        big = np.flatnonzero(sizes[i:stop] > PIECE_BYTES)
        stop = i + int(big[0]) if big.size else max(stop, i + 1)
        out.extend(_elements(raw, int(bounds[i]) + 1, int(bounds[stop])))
        i = stop
    return out


def _object(raw: bytes, s: _Structure, k: int, j: int, bounds: np.ndarray, descent: int) -> dict:
    """An object whose member texts (``"key": value``) lie between consecutive ``bounds``."""
    if bounds.size == 2 and _blank(raw, int(bounds[0]) + 1, int(bounds[1])):
        return {}
    colons = s.separators(k, j, _COLON)
    if colons.size != bounds.size - 1:
        raise _Unsliceable
    out: dict = {}
    for lo, colon, hi in zip(bounds[:-1].tolist(), colons.tolist(), bounds[1:].tolist(), strict=True):
        if not lo < colon < hi:
            raise _Unsliceable
        key = _whole(raw, lo + 1, colon)
        if type(key) is not str:
            raise _Unsliceable
        out[key] = _value(raw, s, colon + 1, hi, descent + 1)
    return out


def warm_up() -> None:
    """Load (or compile, once, into numba's cache) the separator scan."""
    _Structure(b'{"a": [1, "b"]}')


def loads(raw: bytes) -> Any:
    """``orjson.loads(raw)``, in pieces when ``raw`` is larger than ``WHOLE_BYTES`` (same value, same errors)."""
    if len(raw) <= WHOLE_BYTES:
        return orjson.loads(raw)
    try:
        return _value(raw, _Structure(raw), 0, len(raw), 0)
    except (_Unsliceable, RecursionError):
        return orjson.loads(raw)


def _sized(value: Any) -> bool:
    """An array or a list (the only values :func:`_step` may write in pieces)."""
    return type(value) is np.ndarray or type(value) is list


def _step(value: Any) -> int:
    """Elements per write call for ``value``; 0 when it is written in one."""
    if type(value) is np.ndarray and value.ndim == 1 and value.size > PIECE_ITEMS:
        return PIECE_ITEMS
    if type(value) is list and len(value) > PIECE_LIST_ITEMS:
        return PIECE_LIST_ITEMS
    return 0


def dumps(payload: Any) -> list[bytes]:
    """``orjson.dumps(payload)`` as a list of byte strings (to be sent one after the other). The values of a
    top-level object that are long arrays or lists are written ``PIECE_ITEMS`` (arrays) or
    ``PIECE_LIST_ITEMS`` (lists) elements per call."""
    if type(payload) is not dict or not any(map(_step, filter(_sized, payload.values()))):
        return [orjson.dumps(payload, option=DUMP_OPTIONS)]
    parts: list[bytes] = []
    for i, (key, value) in enumerate(payload.items()):
        parts.append((b"{" if i == 0 else b",") + orjson.dumps(key if type(key) is str else str(key)) + b":")
        step = _step(value)
        if not step:
            parts.append(orjson.dumps(value, option=DUMP_OPTIONS))
            continue
        for start in range(0, len(value), step):
            text = orjson.dumps(value[start : start + step], option=DUMP_OPTIONS)
            parts.append((b"[" if start == 0 else b",") + text[1:-1])
        parts.append(b"]")
    parts.append(b"}")
    return parts
