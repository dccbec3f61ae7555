"""api.json_pieces parses and writes exactly what orjson does, whole, for valid and malformed JSON."""

import math

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import json_pieces

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=12) | st.dictionaries(st.text(max_size=4), inner, max_size=6),
    max_leaves=60,
)
spaces = st.sampled_from(["", " ", "\n", "\t ", "\r\n  "])


def spaced(value, draw_space) -> str:
    """``value`` as JSON text with whitespace drawn around every separator."""
    if isinstance(value, list):
        inner = ",".join(draw_space() + spaced(v, draw_space) + draw_space() for v in value)
        return "[" + (inner or draw_space()) + "]"
    if isinstance(value, dict):
        members = (
            draw_space() + orjson.dumps(k).decode() + draw_space() + ":" + draw_space() + spaced(v, draw_space)
            for k, v in value.items()
        )
        return "{" + (",".join(members) or draw_space()) + "}"
    return orjson.dumps(value).decode()


@pytest.fixture
def tiny_pieces(monkeypatch):
    """Cut everything: bodies of any size, pieces of a few bytes (the same for every generated input)."""
    monkeypatch.setattr(json_pieces, "WHOLE_BYTES", 0)
    monkeypatch.setattr(json_pieces, "PIECE_BYTES", 8)
    monkeypatch.setattr(json_pieces, "PIECE_ITEMS", 3)
    monkeypatch.setattr(json_pieces, "PIECE_LIST_ITEMS", 2)


def outcome(raw: bytes):
    try:
        return ("ok", orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        return ("error", str(exc))


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b and type(a) is type(b)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=values, data=st.data())
def test_valid_json_parses_to_the_same_value(tiny_pieces, value, data):
    raw = (data.draw(spaces) + spaced(value, lambda: data.draw(spaces)) + data.draw(spaces)).encode()
    assert json_pieces.loads(raw) == orjson.loads(raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=values, data=st.data())
def test_a_damaged_body_fails_exactly_as_orjson_fails(tiny_pieces, value, data):
    raw = bytearray(spaced(value, lambda: data.draw(spaces)).encode())
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw)))
        edit = data.draw(st.sampled_from(["insert", "delete"]))
        if edit == "insert":
            raw[at:at] = data.draw(st.sampled_from([b",", b":", b"[", b"]", b"{", b"}", b'"', b"1", b" ", b"x"]))
        elif at < len(raw):
            del raw[at]
    raw = bytes(raw)
    expected = outcome(raw)
    try:
        got = ("ok", json_pieces.loads(raw))
    except orjson.JSONDecodeError as exc:
        got = ("error", str(exc))
    assert got == expected


@pytest.mark.parametrize(
    "raw",
    [b"[1,2,]", b"[,1]", b'["a\\"]', b'["a\\\\"b"]', b'{"a\\":1}', b"[1,,2]", b'{"a":1,}', b'{"a" 1}',
     b'{"a":1:2}', b"{1:2}", b"[1,2}", b"[[1,2],[3]",
     b"[1] [2]", b"{\"a\":[1,2]]}", b"{\"a\":\"x\"\"b\":1}"],
)  # fmt: skip
def test_malformed_structure_is_refused_like_orjson(tiny_pieces, raw):
    with pytest.raises(orjson.JSONDecodeError) as exc:
        json_pieces.loads(raw)
    with pytest.raises(orjson.JSONDecodeError) as whole:
        orjson.loads(raw)
    assert str(exc.value) == str(whole.value)


def test_a_large_columnar_body_is_cut_and_equal():
    rng = np.random.default_rng(1)
    n = 200_000
    body = {"positions": {"side": ["long", "short"] * (n // 2), "entry_price": rng.uniform(1, 1e5, n).tolist(),
                          "symbol": [f"S{i}" for i in range(n)], "maintenance_margin_rate": 0.005},
            "objects": [{"a": i, "b": [i, 2.5]} for i in range(50_000)]}  # fmt: skip
    raw = orjson.dumps(body)
    assert len(raw) > 4 * json_pieces.WHOLE_BYTES
    assert json_pieces.loads(raw) == body


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=values)
def test_dumps_in_pieces_is_the_same_text(tiny_pieces, value):
    payload = value if isinstance(value, dict) else {"v": value, "w": [1.5, None, "x", -2]}
    assert b"".join(json_pieces.dumps(payload)) == orjson.dumps(payload, option=json_pieces.DUMP_OPTIONS)


def test_dumps_writes_numpy_columns_in_pieces(tiny_pieces):
    payload = {"a": np.array([1.0, np.nan, 3.5, 0.0, 2.0]), "b": np.arange(7), "c": "x", 3: [1, 2, 3, 4]}
    parts = json_pieces.dumps(payload)
    assert len(parts) > 4
    assert b"".join(parts) == orjson.dumps(payload, option=json_pieces.DUMP_OPTIONS)


def test_an_answer_in_pieces_never_echoes_negative_zero(app):
    from api import jsonio

    rows = [{"asset": f"A{i}", "net": 1.5} for i in range(3 * json_pieces.PIECE_LIST_ITEMS)]
    rows[-1]["net"] = -0.0  # the last number of the last piece
    rows[json_pieces.PIECE_LIST_ITEMS - 1]["net"] = -0.0  # the last number of the first piece
    payload = {"events": rows, "liquidation_price": np.array([-0.0] * (json_pieces.PIECE_ITEMS + 1))}
    with app.test_request_context():
        text = jsonio.respond(payload).get_data()
    assert b"-0.0" not in text and orjson.loads(text)["events"][-1]["net"] == 0.0
