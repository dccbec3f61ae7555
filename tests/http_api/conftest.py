from __future__ import annotations

from collections import Counter

import pytest

from api import TestConfig, create_app


@pytest.fixture(scope="session")
def app():
    return create_app(TestConfig)


@pytest.fixture
def client(app):
    return app.test_client()


FUZZ_STATS: Counter = Counter()


@pytest.fixture(scope="session")
def fuzz_stats() -> Counter:
    return FUZZ_STATS


def pytest_terminal_summary(terminalreporter) -> None:
    """How many requests schemathesis sent, by status class, and how many broke the spec."""
    if FUZZ_STATS["requests"]:
        ops = sum(1 for k in FUZZ_STATS if k.startswith("op "))
        terminalreporter.write_line(
            f"schemathesis: {FUZZ_STATS['requests']} requests over {ops} operations; "
            f"2xx {FUZZ_STATS['2xx']}, 4xx {FUZZ_STATS['4xx']}, 5xx {FUZZ_STATS['5xx']}, "
            f"spec violations {FUZZ_STATS['violations']}"
        )
