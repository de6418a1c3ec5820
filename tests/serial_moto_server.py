"""moto's S3 server, answering one request at a time: ``python serial_moto_server.py PORT``.

moto checks ``If-None-Match: *`` and then writes, without a lock, so two racing
conditional PUTs can both succeed on its usual threaded server; real S3 makes the
check and the write one atomic step. Serving requests one at a time gives the tests
that atomicity, so the concurrency tests exercise our create-if-absent protocol and
not a race inside the test server. It is still moto's real HTTP server and S3 code.
"""

from __future__ import annotations

import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main(port: int) -> None:
    """Serve moto's S3 API on 127.0.0.1:``port`` until terminated."""
    run_simple(
        "127.0.0.1",
        port,
        DomainDispatcherApplication(create_backend_app),
        threaded=False,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
