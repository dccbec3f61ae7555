#!/bin/sh
# Install the contract tools into .tools/ (never globally, never into .venv), pinned, idempotent:
#   .tools/node/node_modules/.bin/{redocly,openapi-typescript}  (npm: @redocly/cli, openapi-typescript)
#   .tools/opc/bin/openapi-python-client                        (PyPI, in its own venv: its pins of httpx,
#                                                                pydantic and ruff stay out of the project's)
# Usage: scripts/ensure-client-tools.sh [node|python|all]   (default all). Exits non-zero when a registry
# cannot be reached; the callers say so (make lint fails, the client test skips with the reason).
set -e
REDOCLY_VERSION=2.77.0
OPENAPI_TS_VERSION=7.13.0
OPC_VERSION=0.29.1
OPC_STAMP=$OPC_VERSION-dateutil
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS="$ROOT/.tools"
what=${1:-all}
mkdir -p "$TOOLS"

if [ "$what" = node ] || [ "$what" = all ]; then
  stamp="$TOOLS/node/.installed-$REDOCLY_VERSION-$OPENAPI_TS_VERSION"
  if [ ! -f "$stamp" ]; then
    command -v npm >/dev/null || { echo "npm not found (Debian: apt-get install nodejs npm)" >&2; exit 1; }
    rm -rf "$TOOLS/node" && mkdir -p "$TOOLS/node"
    printf '{"name":"liqrisk-tools","private":true}\n' > "$TOOLS/node/package.json"
    npm install --prefix "$TOOLS/node" --no-audit --no-fund --silent \
      "@redocly/cli@$REDOCLY_VERSION" "openapi-typescript@$OPENAPI_TS_VERSION" >&2
    touch "$stamp"
  fi
fi

if [ "$what" = python ] || [ "$what" = all ]; then
  stamp="$TOOLS/opc/.installed-$OPC_STAMP"
  if [ ! -f "$stamp" ]; then
    rm -rf "$TOOLS/opc"
    python3 -m venv "$TOOLS/opc"
    "$TOOLS/opc/bin/pip" install --quiet --disable-pip-version-check "openapi-python-client==$OPC_VERSION" "python-dateutil>=2.8,<3" >&2
    touch "$stamp"
  fi
fi
