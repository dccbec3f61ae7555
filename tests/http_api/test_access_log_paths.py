"""The access log's direct write (its own stdout handler, the default) and the :mod:`logging` path (any other
handler) give the same line; request ids are UUID4 hex and timestamps are ``datetime``'s ISO format."""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import UTC, datetime

from api import TestConfig, create_app
from api import observability as obs

PNL = {"side": "long", "entry_price": 100, "exit_price": 110, "quantity": 1}
FIELDS = {"ts", "level", "request_id", "method", "path", "route", "status", "duration_ms", "bytes_in", "bytes_out",
          "client", "pid"}  # fmt: skip


class LoggedConfig(TestConfig):
    ACCESS_LOG = True


def _lines(text: str) -> list[dict]:
    return [json.loads(x) for x in text.splitlines() if x.startswith('{"ts"')]


def test_direct_write_and_logging_path_give_the_same_fields(capsys):
    client = create_app(LoggedConfig).test_client()
    client.post("/v1/pnl", json=PNL, headers={"X-Request-ID": "direct-1"})
    direct = [x for x in _lines(capsys.readouterr().out) if x["request_id"] == "direct-1"]
    assert len(direct) == 1 and set(direct[0]) == FIELDS

    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record)

    extra = Keep()
    obs.access_log.addHandler(extra)  # a second handler: the line goes through logging to both
    try:
        client.post("/v1/pnl", json=PNL, headers={"X-Request-ID": "logged-1"})
    finally:
        obs.access_log.removeHandler(extra)
    logged = [x for x in _lines(capsys.readouterr().out) if x["request_id"] == "logged-1"]
    assert len(logged) == 1 and set(logged[0]) == FIELDS
    assert [r.payload["request_id"] for r in seen] == ["logged-1"]
    same = {"method", "path", "route", "status", "bytes_in", "bytes_out", "client", "pid", "level"}
    assert {k: direct[0][k] for k in same} == {k: logged[0][k] for k in same}


def test_request_ids_are_uuid4_hex():
    for _ in range(200):
        rid = obs.new_request_id()
        assert re.fullmatch(r"[0-9a-f]{32}", rid)
        u = uuid.UUID(hex=rid)
        assert u.version == 4 and u.variant == uuid.RFC_4122


def test_timestamp_is_datetimes_iso_format():
    before = datetime.now(UTC)
    ts = obs.timestamp()
    after = datetime.now(UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", ts)
    parsed = datetime.fromisoformat(ts)
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= parsed <= after
