"""The OpenAPI document is valid and agrees with the app: every route is in it, every path is routed,
and schemathesis finds no server error and no response that violates it."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.config import SchemathesisConfig

from api import TestConfig, create_app

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
SPEC = yaml.safe_load(SPEC_PATH.read_text())
# Swagger UI's own static assets under /docs/<path> and the web calculator's files are not API operations.
UNDOCUMENTED = {"/docs/{path}", "/web/{filename}"}


def _routes() -> set[tuple[str, str]]:
    app = create_app(TestConfig)
    out = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            out.add((path, method.lower()))
    return out


def test_spec_is_valid_openapi_31() -> None:
    validate(SPEC)
    assert SPEC["openapi"].startswith("3.1")


def test_every_route_is_documented_and_every_path_routed() -> None:
    routes = {(p, m) for p, m in _routes() if p not in UNDOCUMENTED}
    documented = {(p, m) for p, ops in SPEC["paths"].items() for m in ops if m in ("get", "post", "put", "delete")}
    assert routes == documented


def test_servers_tags_and_open_operations() -> None:
    """/docs "Try it out" calls the host that served the page; every operation sits under a described tag;
    the probes, metrics and docs need no key (no lock), the /v1 operations name the key schemes."""
    assert [s["url"] for s in SPEC["servers"]] == ["/"]
    described = {t["name"] for t in SPEC["tags"] if t.get("description")}
    open_paths = {"/healthz", "/readyz", "/metrics", "/openapi.yaml", "/docs/", "/"}
    for path, ops in SPEC["paths"].items():
        for method, op in ops.items():
            if method == "parameters":  # path-level parameters, not an operation
                continue
            assert len(op.get("tags", [])) == 1 and op["tags"][0] in described, (path, method)
            assert (op.get("security") == []) == (path in open_paths), (path, method)
    assert {"ApiKey", "Bearer"} <= {k for s in SPEC["security"] for k in s}


def test_every_array_says_what_it_holds() -> None:
    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") == "array" or (isinstance(node.get("type"), list) and "array" in node["type"]):
                assert "items" in node, where
            for k, v in node.items():
                walk(v, f"{where}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")

    walk(SPEC, "spec")


def test_request_schemas_forbid_unknown_fields() -> None:
    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert node.get("additionalProperties") is False, node
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(SPEC["components"]["schemas"])


def test_served_spec_is_the_file(client) -> None:
    resp = client.get("/openapi.yaml")
    assert resp.status_code == 200 and resp.get_data(as_text=True) == SPEC_PATH.read_text()


JOB_PATHS = ("/v1/backtests", "/v1/sweeps", "/v1/jobs/{id}")


def _fuzzed_app():
    """The app schemathesis calls. With redis-server installed, the job routes run against a real queue (a
    redis-server on a free loopback port, no worker): submissions answer 202 with a queued job, and /readyz does
    not wait for a worker."""
    if shutil.which("redis-server") is None:
        return create_app(TestConfig)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)  # fmt: skip
    atexit.register(proc.kill)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    attrs = {"BROKER_URL": f"redis://127.0.0.1:{port}/0", "READY_REQUIRES_WORKER": False}
    return create_app(type("SpecConfig", (TestConfig,), attrs))


FUZZED_APP = _fuzzed_app()
ROOT = SPEC_PATH.parent
schema = schemathesis.openapi.from_wsgi(
    "/openapi.yaml", FUZZED_APP, config=SchemathesisConfig.from_path(ROOT / "schemathesis.toml")
)


# hypothesis examples per operation and phase: 15 in `make test`; `make fuzz` sets LIQRISK_FUZZ_EXAMPLES=200
FUZZ_EXAMPLES = int(os.environ.get("LIQRISK_FUZZ_EXAMPLES", "15"))


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_spec(case, fuzz_stats) -> None:
    """Generated requests (valid and invalid) pass every default check of schemathesis: no 5xx, status codes,
    content types, headers and bodies as documented, schema-valid data accepted and schema-invalid data
    refused (see schemathesis.toml for the one allowance)."""
    if case.path in JOB_PATHS and not FUZZED_APP.config["BROKER_URL"]:
        pytest.skip("the job routes need a queue: redis-server is not installed")
    response = case.call()
    fuzz_stats["requests"] += 1
    fuzz_stats[f"{response.status_code // 100}xx"] += 1
    fuzz_stats[f"op {case.operation.label}"] += 1
    try:
        case.validate_response(response)
    except Exception:
        fuzz_stats["violations"] += 1
        raise


@pytest.mark.parametrize("operation", ["/v1/liquidation-price", "/v1/pnl"])
def test_spec_examples_answer_200(client, operation) -> None:
    content = SPEC["paths"][operation]["post"]["requestBody"]["content"]["application/json"]
    examples = [e["value"] for e in content.get("examples", {}).values()] or [content["example"]]
    for example in examples:
        assert client.post(operation, json=example).status_code == 200, example


def test_no_description_leaks_into_a_key() -> None:
    """A flow mapping like ``{type: number, description: a, b.}`` turns ``b.`` into a schema key and cuts the
    description; property and schema names are identifiers, so a key with a space or a final full stop is one."""
    leaks = []

    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(k, str) and (" " in k or k.endswith((".", ")"))) and "/paths" not in where[:7]:
                    leaks.append(f"{where}/{k}")
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")

    walk(SPEC["components"], "#/components")
    assert not leaks, leaks
