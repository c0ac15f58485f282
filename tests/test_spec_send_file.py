"""Spec: ``Connection.send_file`` and file payloads, run on every port.

A binary file goes from its current position to its end: zero-copy (``os.sendfile``)
from a regular file, in bounded chunks from a pipe or an ``io.BytesIO``. ``bytes_sent``
is exact after an error or a cancellation, and a seekable file is left just after the
last byte sent.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from conftest import Port, connections_before_one_more

from trio_sockets.testing import LoopbackServer

DATA = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def data_file(tmp_path: Path) -> Iterator[BinaryIO]:
    path = tmp_path / "payload.bin"
    path.write_bytes(DATA)
    with path.open("rb") as file:
        yield file


def pipe_file(data: bytes) -> tuple[BinaryIO, threading.Thread]:
    """The read end of a pipe that a thread fills with ``data``, then closes."""
    read_fd, write_fd = os.pipe()

    def write() -> None:
        with open(write_fd, "wb") as writer:
            writer.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return open(read_fd, "rb"), thread


def send_file_to_echo(port: Port, file: BinaryIO) -> tuple[int, bytes]:
    """(bytes_sent, reply): the file sent with send_file() to an echo server."""
    with LoopbackServer("echo") as server:

        async def main() -> tuple[int, bytes]:
            async with await port.module.open_connection(*server.address) as conn:
                reply = bytearray()

                async def read_all() -> None:
                    while chunk := await conn.receive_some():
                        reply.extend(chunk)

                async def send() -> None:
                    await conn.send_file(file)
                    await conn.send_eof()

                await port.run_all(send, read_all)
                return conn.bytes_sent, bytes(reply)

        return port.run(main)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("start", [0, 1000])
def test_send_file_a_real_file(port: Port, data_file: BinaryIO, start: int) -> None:
    data_file.seek(start)
    sent, reply = send_file_to_echo(port, data_file)
    assert sent == len(DATA) - start and reply == DATA[start:]
    assert data_file.tell() == len(DATA)


@pytest.mark.timeout(10)
def test_send_file_bytesio(port: Port) -> None:
    file = io.BytesIO(DATA)
    file.seek(7)
    sent, reply = send_file_to_echo(port, file)
    assert sent == len(DATA) - 7 and reply == DATA[7:]
    assert file.tell() == len(DATA)


@pytest.mark.timeout(10)
def test_send_file_a_pipe(port: Port) -> None:
    file, writer = pipe_file(DATA)
    with file:
        sent, reply = send_file_to_echo(port, file)
    writer.join()
    assert sent == len(DATA) and reply == DATA


@pytest.mark.timeout(10)
def test_send_file_of_nothing(port: Port, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    with (tmp_path / "empty").open("rb") as file:
        assert send_file_to_echo(port, file) == (0, b"")


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", ["file", "bytesio", "pipe"])
def test_a_file_payload_in_the_workflow(port: Port, tmp_path: Path, kind: str) -> None:
    writer = None
    if kind == "file":
        (tmp_path / "p").write_bytes(DATA)
        file: BinaryIO = (tmp_path / "p").open("rb")
    elif kind == "bytesio":
        file = io.BytesIO(DATA)
    else:
        file, writer = pipe_file(DATA)
    with file, LoopbackServer("echo") as server:

        async def main() -> Any:
            return await port.module.connect_check_send(
                server.target, file, read_reply=True, max_reply_bytes=2 * len(DATA)
            )

        report = port.run(main)
        if writer is not None:
            writer.join()
        if kind != "pipe":
            assert file.tell() == len(DATA)
    assert report.ok and report.bytes_sent == len(DATA)
    assert hashlib.sha256(report.reply).digest() == hashlib.sha256(DATA).digest()


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", ["file", "bytesio"])
def test_cancelled_mid_send_file_counts_exactly(port: Port, tmp_path: Path, kind: str) -> None:
    size = 64 << 20  # a slow reader needs seconds for it
    if kind == "file":
        with (tmp_path / "big").open("wb") as out:
            out.truncate(size)  # sparse: no disk needed
        file: BinaryIO = (tmp_path / "big").open("rb")
    else:
        file = io.BytesIO(bytes(size))
    file.seek(100)
    with file, LoopbackServer("slow") as server:
        sent = 0

        async def main() -> None:
            nonlocal sent
            async with await port.module.open_connection(*server.address) as conn:
                outcome = await port.run_and_cancel(
                    lambda: conn.send_file(file),
                    lambda: port.to_thread(server.wait_bytes, 65536, 2.0),
                )
                assert outcome.cancelled and type(outcome.error) is port.Cancelled
                sent = conn.bytes_sent

        port.run(main)
        assert 0 < sent < size - 100
        assert file.tell() == 100 + sent  # the position matches the count exactly
        assert server.wait_bytes(sent)
        assert server.bytes_received == sent


@pytest.mark.timeout(10)
def test_a_deadline_mid_send_file_reports_the_exact_bytes_sent(port: Port, tmp_path: Path) -> None:
    with (tmp_path / "big").open("wb") as out:
        out.truncate(64 << 20)
    with (tmp_path / "big").open("rb") as file, LoopbackServer("slow") as server:

        async def main() -> Any:
            return await port.module.connect_check_send(server.target, file, timeout=0.3)

        report = port.run(main)
        assert report.status == "timeout" and "send" in report.error
        assert 0 < report.bytes_sent < 64 << 20
        assert file.tell() == report.bytes_sent
        assert server.wait_bytes(report.bytes_sent)
        assert server.bytes_received == report.bytes_sent


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["file", "pipe"])
def test_a_large_file_streams_in_bounded_memory(port: Port, tmp_path: Path, kind: str) -> None:
    size = 128 << 20
    writer = None
    if kind == "file":
        with (tmp_path / "big").open("wb") as out:
            out.truncate(size)
        file: BinaryIO = (tmp_path / "big").open("rb")
    else:
        read_fd, write_fd = os.pipe()
        block = bytes(65536)

        def write() -> None:
            with open(write_fd, "wb", buffering=0) as out:
                for _ in range(size // len(block)):
                    out.write(block)

        writer = threading.Thread(target=write, daemon=True)
        file = open(read_fd, "rb")  # noqa: SIM115  # closed by the with below
    with file, LoopbackServer("sink") as server:

        async def main() -> Any:
            return await port.module.connect_check_send(server.target, file, timeout=15)

        port.run(lambda: port.sleep(0))  # warm up outside the measure
        tracemalloc.start()
        try:
            if writer is not None:
                writer.start()
            report = port.run(main)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        if writer is not None:
            writer.join()
        assert report.ok and report.bytes_sent == size
        assert server.wait_bytes(size)
    assert peak < 2 << 20, peak  # a few chunks, not the 128 MiB payload


def text_file(tmp_path: Path) -> Any:
    (tmp_path / "t").write_text("text")
    return (tmp_path / "t").open("r")


def write_only_file(tmp_path: Path) -> Any:
    return (tmp_path / "w").open("wb")


def closed_file(tmp_path: Path) -> Any:
    file = (tmp_path / "c").open("wb+")
    file.close()
    return file


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    ("make", "error", "named"),
    [
        (text_file, TypeError, "binary file"),
        (write_only_file, TypeError, "not open for reading"),
        (closed_file, ValueError, "payload file is closed"),
    ],
    ids=["text", "write-only", "closed"],
)
def test_a_bad_file_raises_before_any_io(
    port: Port,
    tmp_path: Path,
    make: Callable[[Path], Any],
    error: type[Exception],
    named: str,
) -> None:
    file = make(tmp_path)
    with LoopbackServer("sink") as server:

        async def main() -> None:
            with pytest.raises(error, match=named) as info:
                await port.module.connect_check_send(server.target, file)
            assert repr(file)[:20] in str(info.value)

        try:
            port.run(main)
        finally:
            file.close()
        assert connections_before_one_more(port, server) == 0


@pytest.mark.timeout(5)
def test_send_file_wants_a_file(port: Port) -> None:
    with LoopbackServer("sink") as server:

        async def main() -> None:
            async with await port.module.open_connection(*server.address) as conn:
                with pytest.raises(TypeError, match="file must be a binary file object"):
                    await conn.send_file(b"bytes")

        port.run(main)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("kind", "zero_copy"), [("file", True), ("bytesio", False)])
def test_zero_copy_from_a_regular_file_only(
    port: Port, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, zero_copy: bool
) -> None:
    calls = []
    real = os.sendfile

    def counting_sendfile(*args: Any) -> int:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(os, "sendfile", counting_sendfile)
    if kind == "file":
        (tmp_path / "p").write_bytes(DATA)
        file: BinaryIO = (tmp_path / "p").open("rb")
    else:
        file = io.BytesIO(DATA)
    with file:
        sent, reply = send_file_to_echo(port, file)
    assert sent == len(DATA) and reply == DATA
    assert bool(calls) == zero_copy


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", ["file", "bytesio"])
def test_targets_sharing_one_file_each_send_it_whole(port: Port, tmp_path: Path, kind: str) -> None:
    # What a fan-out does with a file payload: one check (shared), many workflows at
    # once, each from the same start, and the file's own position left alone.
    from trio_sockets._checks import FilePayload, Options, check_payload_or_file
    from trio_sockets._reports import ReportBuilder

    if kind == "file":
        (tmp_path / "p").write_bytes(DATA)
        file: BinaryIO = (tmp_path / "p").open("rb")
    else:
        file = io.BytesIO(DATA)
    file.seek(5)
    source = check_payload_or_file(file, shared=True)
    assert isinstance(source, FilePayload) and not source.advance
    options = Options.check(5.0, 0.25, True, 2 * len(DATA))
    with file, LoopbackServer("echo") as server:
        target = port.module.Target.parse(server.target)

        async def one() -> Any:
            report = ReportBuilder(target, 0.0)
            return await port.module._workflow(target, source, options, report)

        async def main() -> list[Any]:
            outcomes = await port.run_all(one, one, one)
            return [outcome.value for outcome in outcomes]

        reports = port.run(main)
        assert file.tell() == 5
    for report in reports:
        assert report.ok and report.reply == DATA[5:], report.error


def test_a_shared_file_must_be_seekable() -> None:
    from trio_sockets._checks import check_payload_or_file

    file, writer = pipe_file(b"")
    with file, pytest.raises(TypeError, match="payload file must be seekable"):
        check_payload_or_file(file, shared=True)
    writer.join()


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", ["file", "bytesio"])
def test_a_failed_send_file_counts_exactly(port: Port, tmp_path: Path, kind: str) -> None:
    size = 64 << 20
    if kind == "file":
        with (tmp_path / "big").open("wb") as out:
            out.truncate(size)
        file: BinaryIO = (tmp_path / "big").open("rb")
    else:
        file = io.BytesIO(bytes(size))
    with file, LoopbackServer("reset", reset_after=65536) as server:

        async def main() -> None:
            async with await port.module.open_connection(*server.address) as conn:
                with pytest.raises(port.module.SendError) as info:
                    await conn.send_file(file)
                assert info.value.bytes_sent == conn.bytes_sent
                assert 0 < conn.bytes_sent < size
                assert file.tell() == conn.bytes_sent
                assert f"send failed after {conn.bytes_sent} bytes" in str(info.value)

        port.run(main)


@pytest.mark.timeout(10)
def test_a_cancel_while_a_pipe_is_quiet_leaves_promptly(port: Port) -> None:
    # The read blocked in its thread is abandoned: the run returns at once (asyncio.run
    # waits for its default executor's threads, and would wait for the writer).
    read_fd, write_fd = os.pipe()
    file = open(read_fd, "rb")  # noqa: SIM115  # closed below, after the writer
    try:
        with LoopbackServer("sink") as server:

            async def main() -> None:
                async with await port.module.open_connection(*server.address) as conn:
                    async with port.move_on_after(0.2) as scope:
                        await conn.send_file(file)
                    assert scope.cancelled_caught and conn.bytes_sent == 0

            start = time.monotonic()
            port.run(main)
            assert time.monotonic() - start < 2
    finally:
        os.close(write_fd)  # first: the abandoned read ends at end of file
        file.close()
