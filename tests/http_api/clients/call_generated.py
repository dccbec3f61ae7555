"""Run by tests/http_api/test_generated_clients.py with the isolated tool venv's Python (not the project's):
call each operation named in the cases file through the client openapi-python-client generated, and print,
per operation, the HTTP status, whether the client parsed the body into its result model, and the parsed
body turned back into JSON next to the raw JSON the server sent.

Usage: python call_generated.py <dir holding the liqrisk_client package> <base url> <cases.json>
"""

from __future__ import annotations

import importlib
import json
import sys
import typing


def main() -> None:
    sys.path.insert(0, sys.argv[1])
    from liqrisk_client import Client

    client = Client(base_url=sys.argv[2], raise_on_unexpected_status=True, timeout=60.0)
    cases = json.loads(open(sys.argv[3]).read())
    out = []
    for case in cases:
        module = importlib.import_module(f"liqrisk_client.api.{case['tag']}.{case['module']}")
        hints = typing.get_type_hints(module.sync_detailed)
        kwargs = dict(case.get("params", {}))
        if "body" in case:
            kwargs["body"] = hints["body"].from_dict(case["body"])  # the request model of the operation
        response = module.sync_detailed(client=client, **kwargs)
        parsed = response.parsed
        out.append(
            {
                "operation": case["module"],
                "status": int(response.status_code),
                "model": type(parsed).__name__,
                "parsed": parsed.to_dict() if hasattr(parsed, "to_dict") else None,
                "raw": json.loads(response.content),
            }
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
