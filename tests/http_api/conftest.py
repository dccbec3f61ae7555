from __future__ import annotations

import pytest

from api import TestConfig, create_app


@pytest.fixture(scope="session")
def app():
    return create_app(TestConfig)


@pytest.fixture
def client(app):
    return app.test_client()
