"""A WSGI app served for a test: werkzeug's threaded server on 127.0.0.1 with a free port, in this process."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from werkzeug.serving import make_server


@contextlib.contextmanager
def served(app) -> Iterator[str]:
    """``app`` served by a werkzeug thread on 127.0.0.1:<free port> (a real socket); yields its base URL and
    stops the server on exit."""
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        thread.join(timeout=10)
