"""Spec: closing a connection with unread incoming bytes loses none of the payload.

A server that greets first (``220 banner``, as SMTP and FTP do) and then reads: the
client never reads the greeting. Closing a socket with unread bytes makes the kernel
send RST and drop what it had taken but not yet sent (RFC 2525 section 2.17), so the
tail of a payload that ``bytes_sent`` counts would be lost while the report says ok.
"""

from __future__ import annotations

import socket
import threading

import pytest
from conftest import Port

MiB = 1 << 20


class BannerServer:
    """Accept one connection, send a banner, then read and count until end of stream."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()[:2]
        self.received = 0
        self.error: OSError | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError as exc:  # closed by close() before any client came
            self.error = exc
            self.done.set()
            return
        with conn:
            try:
                conn.sendall(b"220 banner\r\n")
                while chunk := conn.recv(1 << 16):
                    self.received += len(chunk)
            except OSError as exc:
                self.error = exc
            finally:
                self.done.set()

    def __enter__(self) -> BannerServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.listener.close()
        self.thread.join(5)


@pytest.mark.timeout(15)
def test_a_greeting_server_reads_the_whole_payload(port: Port) -> None:
    payload = bytes(range(256)) * (4 * MiB // 256)
    with BannerServer() as server:
        report = port.run(port.module.connect_check_send, server.address, payload)
        assert report.ok, report
        assert report.bytes_sent == len(payload)
        assert server.done.wait(10)
        assert server.error is None, server.error
        assert server.received == len(payload)


@pytest.mark.timeout(15)
def test_closing_a_connection_with_unread_bytes_loses_nothing(port: Port) -> None:
    payload = bytes(4 * MiB)
    with BannerServer() as server:

        async def main() -> None:
            conn = await port.module.open_connection(*server.address)
            try:
                await conn.send_all(payload)
            finally:
                await conn.aclose()

        port.run(main)
        assert server.done.wait(10)
        assert server.error is None, server.error
        assert server.received == len(payload)
