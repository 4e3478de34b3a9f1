"""One kept-alive HTTP/1.1 connection over a socket, for the predict function's two signed reads
(``conveyor.adapters.lean_aws``). Not ``http.client``: it imports the ``email`` package to parse
headers, a tenth of what predict imports beyond numpy and onnxruntime at a cold start. It reads what
S3 and DynamoDB send: a status line, headers, and a body by ``Content-Length``, chunked, or up to
the connection's close. ``ssl`` is imported for an ``https`` endpoint only (always, on AWS).
"""

from __future__ import annotations

import socket
from typing import Any, BinaryIO

MAX_LINE = 65536
MAX_HEADERS = 200


_TLS: Any = None


def _tls() -> Any:
    """One TLS context for the process: each ``create_default_context`` loads the trust store again,
    and predict opens two connections (DynamoDB, S3) at a cold start."""
    global _TLS  # noqa: PLW0603 - built once, at the first https connection
    if _TLS is None:
        import ssl

        _TLS = ssl.create_default_context()
    return _TLS


class HttpError(OSError):
    """A response that is not HTTP/1.x as expected, or a connection that ended mid-response."""


class Connection:
    """One connection to ``host`` (``name`` or ``name:port``), opened at the first request and reopened
    after the server closes it."""

    def __init__(self, host: str, *, secure: bool, timeout: float = 10.0) -> None:
        name, _, port = host.rpartition(":") if host.rsplit(":", 1)[-1].isdigit() else (host, "", "")
        self.name, self.port = name.strip("[]"), int(port) if port else (443 if secure else 80)
        self.secure, self.timeout = secure, timeout
        self._socket: Any = None
        self._reader: BinaryIO | None = None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self._socket is not None:
            self._socket.close()
        self._socket = self._reader = None

    def _open(self) -> BinaryIO:
        if self._reader is None:
            # an ASCII name as bytes: a str is encoded with the "idna" codec, whose import (stringprep,
            # unicodedata) is a millisecond of a cold start
            name = self.name.encode("ascii") if self.name.isascii() else self.name
            sock = socket.create_connection((name, self.port), timeout=self.timeout)  # type: ignore[arg-type]
            if self.secure:
                sock = _tls().wrap_socket(sock, server_hostname=self.name)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socket, self._reader = sock, sock.makefile("rb")
        return self._reader

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
        """Send one request and read its whole response: (status, body)."""
        reader = self._open()
        lines = [f"{method} {path} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += ["Accept-Encoding: identity", f"Content-Length: {len(body)}", "", ""]
        self._socket.sendall("\r\n".join(lines).encode("latin-1") + body)
        try:
            status, fields = _head(reader)
            data = b"" if method == "HEAD" or status in (204, 304) else _body(reader, fields)
        except ValueError as error:  # a length that is not a number
            raise HttpError(f"malformed response: {error}") from None
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, data


def _line(reader: BinaryIO) -> bytes:
    line = reader.readline(MAX_LINE + 1)
    if not line:
        raise HttpError("the connection closed before the response")
    if len(line) > MAX_LINE:
        raise HttpError("a response line longer than 64 KiB")
    return line


def _head(reader: BinaryIO) -> tuple[int, dict[str, str]]:
    """The status (after any ``100 Continue``) and the header fields, names in lower case."""
    while True:
        version, _, rest = _line(reader).decode("latin-1").partition(" ")
        if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
            raise HttpError(f"not an HTTP/1.x status line: {version} {rest[:40]}")
        status = int(rest[:3])
        fields: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = _line(reader).decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        else:
            raise HttpError("too many response headers")
        if status != 100:
            return status, fields


def _exactly(reader: BinaryIO, size: int) -> bytes:
    data = reader.read(size)
    if len(data) != size:
        raise HttpError(f"the connection closed {size - len(data)} bytes before the body's end")
    return data


def _body(reader: BinaryIO, fields: dict[str, str]) -> bytes:
    if "chunked" in fields.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        while True:
            size = int(_line(reader).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while _line(reader).strip():  # trailers, up to the blank line
                    pass
                return b"".join(parts)
            parts.append(_exactly(reader, size))
            _line(reader)  # the CRLF after the chunk
    length = fields.get("content-length")
    if length is not None:
        return _exactly(reader, int(length))
    fields["connection"] = "close"  # no length: the body runs to the connection's close
    return reader.read()
