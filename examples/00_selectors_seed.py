"""The seed: connect, check, send with one non-blocking socket and ``selectors`` alone.

This is the ancestor of every other example, with the standard library and nothing else:
no event loop, no tasks, one socket and one selector. It already has the workflow's
shape: connect without blocking, check that the socket can send, then send, counting
partial sends by hand. Everything else is missing, and each numbered pair of examples
shows what the Trio port and the asyncio port improve on:

- 01: one address, one attempt. No name is resolved and no address raced against
  another: a blackholed IPv6 address here would hang until the deadline.
- 02: a refusal is one bare ``OSError``; nothing records which addresses were tried.
- 03: the deadline is a number that every wait must remember to honour. Forget it in
  one ``select()`` and the call hangs; a port's deadline covers every wait at once.
- 04: backpressure is this file's loop: wait for writability, ``send()``, count what the
  kernel took, go round again. The ports do the same, and every wait is a place where a
  deadline or a cancellation can stop them with the count still exact.
- 05: after a reset, the count is whatever the loop had added up; an exception from the
  middle of the loop must carry it out by hand.
- 06 and 07: one target at a time. Serving many means one selector over many sockets and
  a state machine per socket: that bookkeeping is what tasks replace.
- 08: nothing can stop it from outside but its own deadline.

Run it: it starts its own slow listener on loopback and sends it 1 MiB.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import threading
import time

PAYLOAD = bytes(1024 * 1024)
TIMEOUT = 10.0  # seconds for the whole workflow
SMALL_BUFFER = 32768  # bytes: small kernel buffers, so that the sends come out partial


def wait_writable(selector: selectors.BaseSelector, deadline: float) -> None:
    """Block until the one registered socket is writable, or raise at the deadline."""
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not selector.select(remaining):
        raise TimeoutError("the deadline passed")


def connect_check_send(address: tuple[str, int], payload: bytes, timeout: float) -> int:
    """Connect to ``address``, check that it can send, send ``payload``; return the bytes sent.

    Raises:
        OSError: the connect or a send failed (``TimeoutError`` at the deadline).
    """
    deadline = time.monotonic() + timeout
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    selector = selectors.DefaultSelector()
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        # Connect: a non-blocking connect returns at once, "in progress"; the socket turns
        # writable when the handshake ends, and SO_ERROR then says how it ended.
        status = sock.connect_ex(address)
        if status not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            raise OSError(status, os.strerror(status))
        selector.register(sock, selectors.EVENT_WRITE)
        wait_writable(selector, deadline)
        status = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if status:
            raise OSError(status, os.strerror(status))
        # Check: writable and no pending error, so the peer accepted and has not reset.
        # Send: send() takes what fits in the kernel's buffer, maybe less than asked;
        # when the buffer is full, wait for room and go on from where it stopped.
        sent = calls = 0
        view = memoryview(payload)
        while sent < len(payload):
            wait_writable(selector, deadline)
            try:
                sent += sock.send(view[sent:])
            except BlockingIOError:
                continue  # writable, yet full again already: wait once more
            calls += 1
        print(f"sent {sent} bytes in {calls} send() calls: each took what fitted")
        return sent
    finally:
        selector.close()
        sock.close()


def slow_listener() -> tuple[socket.socket, threading.Thread, list[int]]:
    """A loopback listener that accepts one client and reads it to the end, a bit at a time."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    read = [0]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            while chunk := conn.recv(4096):
                read[0] += len(chunk)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread, read


if __name__ == "__main__":
    listener, reader, read = slow_listener()
    with listener:
        connect_check_send(listener.getsockname(), PAYLOAD, TIMEOUT)
        reader.join(TIMEOUT)
    print(f"the listener read {read[0]} bytes")
