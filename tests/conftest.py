from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real market data); tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real market data not found at {SHARED_DATA} (it ships beside the repo, not in it)")
    return SHARED_DATA


@pytest.fixture
def client():
    from api import TestConfig, create_app

    return create_app(TestConfig).test_client()
