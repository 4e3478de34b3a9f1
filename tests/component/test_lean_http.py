"""The predict function's HTTP/1.1 connection (conveyor.adapters.lean_http) against a socket server
that answers as S3 and DynamoDB may: by length, chunked, up to the close, after a 100 Continue."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from conveyor.adapters.lean_http import Connection

ANSWERS = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end",
]


@pytest.fixture
def server() -> Iterator[tuple[str, list[bytes]]]:
    """A server that answers each request of a connection with the next answer; what it received."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        answers = iter(ANSWERS)
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                for answer in answers:
                    request = b""
                    while b"\r\n\r\n" not in request:
                        request += conn.recv(65536)
                    head, _, body = request.partition(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    while len(body) < length:
                        body += conn.recv(65536)
                    received.append(head + b"\r\n\r\n" + body)
                    conn.sendall(answer)
                    if b"close" in answer:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}", received
    listener.close()


def test_responses_by_length_chunked_and_to_the_close(server: tuple[str, list[bytes]]) -> None:
    host, received = server
    connection = Connection(host, secure=False, timeout=10)
    assert connection.request("GET", "/a/b%20c", {"host": host}) == (200, b"hello")
    assert connection.request("POST", "/", {"host": host, "X-Amz-Target": "t"}, b'{"k": 1}') == (404, b"abcde")
    assert connection.request("GET", "/end", {"host": host}) == (200, b"to the end")
    assert received[0].startswith(b"GET /a/b%20c HTTP/1.1\r\nhost: ") and b"Content-Length: 0\r\n" in received[0]
    assert received[1].endswith(b'Content-Length: 8\r\n\r\n{"k": 1}') and len(received) == 3
    # the server closed that connection and answers no more: an OSError (the retry's signal) either way
    with pytest.raises(OSError):
        connection.request("GET", "/again", {"host": host})
