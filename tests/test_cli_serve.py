"""``trio-sockets serve`` and the loopback servers it runs: bounded, loopback, calm.

The servers run in a thread of the test process (or as ``serve`` in a subprocess);
every client is a plain blocking socket on loopback.
"""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
import threading

import pytest

from trio_sockets.cli import main
from trio_sockets.testing import LoopbackServer
from trio_sockets.testing.servers import ACCEPT_BACKOFF, ECHO_BUFFER

MiB = 1 << 20


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["echo", "hold"])
def test_echo_stops_reading_from_a_client_that_does_not_read(mode: str) -> None:
    # 64 MiB sent, the echo never read: the server must hold back, not buffer it all.
    chunk = b"x" * MiB
    sent = 0
    with LoopbackServer(mode) as server:  # type: ignore[arg-type]
        with socket.create_connection(server.address, timeout=10) as client:
            client.settimeout(1.0)  # a second without progress: the sends are held back
            try:
                while sent < 64 * MiB:
                    sent += client.send(chunk)
            except TimeoutError:
                pass
            held = server.peak_buffered
            received = server.bytes_received
            # Reading the echo lets the server go on: backpressure, not a dead end.
            client.settimeout(10)
            echoed = 0
            while echoed < sent and (data := client.recv(MiB)):  # "hold" never closes
                echoed += len(data)
        assert server.wait_bytes(sent)
    assert sent < 64 * MiB, "the client could send everything: nothing held it back"
    assert 0 < held <= ECHO_BUFFER
    assert received < sent
    assert echoed == sent


class _OutOfFds:
    """A listener stand-in whose ``accept()`` fails with EMFILE until told otherwise."""

    def __init__(self, listener: socket.socket) -> None:
        self._listener = listener
        self.calls = 0
        self.failing = True

    def fileno(self) -> int:
        return self._listener.fileno()

    def accept(self) -> tuple[socket.socket, object]:
        self.calls += 1
        if self.failing:
            raise OSError(errno.EMFILE, "Too many open files")
        return self._listener.accept()

    def close(self) -> None:
        self._listener.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["sink", "echo"])
def test_out_of_fds_on_accept_backs_off_instead_of_spinning(mode: str) -> None:
    server = LoopbackServer(mode)  # type: ignore[arg-type]
    fake = _OutOfFds(server._listener)
    server._listener = fake  # type: ignore[assignment]
    with server, socket.create_connection(server.address, timeout=10) as client:
        # The pending connection keeps the listener readable: without a back-off the
        # server would call accept() in a busy loop, hundreds of thousands of times.
        window = 1.0  # seconds
        done = threading.Event()
        done.wait(window)
        assert server.accept_backoffs >= 1
        assert fake.calls <= 2 * (window / ACCEPT_BACKOFF + 1)
        fake.failing = False  # an fd freed up: the waiting client is served
        assert server.wait_connections(1)
        client.sendall(b"ping")
        assert server.wait_bytes(4)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("host", ["", " "])
def test_serve_refuses_an_empty_host(capsys: pytest.CaptureFixture[str], host: str) -> None:
    status = main(["serve", "sink", "--host", host])
    out, err = capsys.readouterr()
    assert status == 2
    assert f"--host {host!r}" in err
    assert "every interface" in err
    assert all(len(line) <= 80 for line in err.splitlines())
    assert out == ""


@pytest.mark.timeout(10)
def test_the_servers_refuse_an_empty_host_too() -> None:
    with pytest.raises(ValueError, match="host"):
        LoopbackServer("sink", "")


@pytest.mark.timeout(30)
def test_serve_help_says_loopback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "trio_sockets", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 0
    assert "loopback" in done.stdout
