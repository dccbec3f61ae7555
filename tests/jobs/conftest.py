"""Fixtures of the jobs tests (helpers in jobkit.py); they skip when redis-server is not installed."""

from __future__ import annotations

import pytest
from jobkit import HAVE_REDIS, RedisServer, Worker, make_app, worker_env, write_dataset


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """Redis and one worker for the jobs tests; yields (redis, worker, app, data_dir)."""
    if not HAVE_REDIS:
        pytest.skip("needs redis-server (scripts/ensure-redis.sh installs it)")
    base = tmp_path_factory.mktemp("jobs")
    data_dir = base / "data"
    write_dataset(data_dir / "small")
    write_dataset(data_dir / "broken", bad_line=1500)
    server = RedisServer(base).start()
    app = make_app(server.url, data_dir)
    worker = Worker(
        "shared", worker_env(server.url, data_dir), base / "shared.log", include="tests.jobs.poison_tasks"
    ).wait_ready(app)
    yield server, worker, app, data_dir
    worker.stop()
    server.kill()
