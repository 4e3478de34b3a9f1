"""``conveyor up`` with TCP_NODELAY on the sockets of the local API gateway (benchmark only).

``python serving_cloud.py up --state STATE`` runs the CLI exactly as ``conveyor up`` does,
after replacing the HTTP server class that conveyor/localcloud/gateway.py instantiates with
one that sets TCP_NODELAY on each accepted connection. The gateway as shipped writes the
status line and headers, then the body, in two ``send`` calls on a keep-alive connection:
Nagle's algorithm holds the body until the client acknowledges the headers, and the client
delays that acknowledgement (about 40 ms on Linux), so every request on a reused connection
waits about 40 ms. test_serving_bench.py measures the gateway both as shipped and with this
change, to tell the serving path's throughput from that stall.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from conveyor.localcloud import gateway


class NoDelayHTTPServer(gateway.ThreadingHTTPServer):
    def get_request(self) -> tuple[Any, Any]:
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


def main() -> None:
    gateway.ThreadingHTTPServer = NoDelayHTTPServer
    from conveyor.cli.main import main as cli

    sys.argv = ["conveyor", *sys.argv[1:]]
    cli()


if __name__ == "__main__":
    main()
