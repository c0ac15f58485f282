"""Spec: no wait hangs on a closed fd, run on every port.

A socket closed behind its ``Connection``'s back (``conn.socket.close()``) wakes the task
waiting to send or receive on it with the port's ``ClosedError``, and leaves nothing
registered with the event loop for a file descriptor number that the next socket may
reuse.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Port

from trio_sockets.testing import LoopbackServer


async def close_behind_its_back(port: Port, conn: Any, wait: Any) -> Any:
    async def close_it() -> None:
        for _ in range(5):  # let the other task reach its wait
            await port.sleep(0)
        conn.socket.close()

    async with port.fail_after(2):
        waiting, _ = await port.run_all(wait, close_it)
    return waiting.error


@pytest.mark.timeout(10)
@pytest.mark.parametrize("direction", ["receive", "send"])
def test_a_waiter_wakes_when_the_socket_is_closed_behind_its_back(
    port: Port, direction: str
) -> None:
    # The echo server never sends unasked; the slow one reads far slower than we send.
    mode: Any = "echo" if direction == "receive" else "slow"
    with LoopbackServer(mode) as server, LoopbackServer("echo") as other:

        async def main() -> None:
            conn = await port.module.open_connection(*server.address)
            fd = conn.socket.fileno()
            try:

                async def wait() -> None:
                    if direction == "receive":
                        await conn.receive_some()
                    else:
                        await conn.send_all(bytes(64 << 20))

                error = await close_behind_its_back(port, conn, wait)
                assert type(error) is port.ClosedError, repr(error)
                # Using it afterwards is the same clear error, not an OSError.
                with pytest.raises(port.ClosedError):
                    await conn.receive_some()
                with pytest.raises(port.ClosedError):
                    await conn.send_all(b"x")
                # The next socket very likely gets the same number: it must work.
                async with port.fail_after(2):
                    report = await port.module.connect_check_send(
                        other.target, b"ping", read_reply=True
                    )
                assert (report.ok, report.reply) == (True, b"ping"), report.error
                async with port.fail_after(2):
                    again = await port.module.open_connection(*other.address)
                    async with again:
                        assert again.socket.fileno() == fd or True  # reuse is the OS's choice
                        await again.send_all(b"ping")
                        await again.send_eof()
                        assert await again.receive_some() == b"ping"
            finally:
                await conn.aclose()  # harmless on a socket closed already

        port.run(main)
