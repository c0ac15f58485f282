"""trio_sockets.testing.backends: the same framework calls on Trio, asyncio and uvloop."""

from __future__ import annotations

import importlib.util
import socket
from typing import Any

import pytest

from trio_sockets.testing import LoopbackServer, addrinfo
from trio_sockets.testing.backends import BACKENDS, Backend, backend

NAMES = [
    "trio",
    "asyncio",
    pytest.param(
        "asyncio+uvloop",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"
        ),
    ),
]


@pytest.fixture(params=NAMES)
def each(request: pytest.FixtureRequest) -> Backend:
    return backend(request.param)


def test_backends_are_named_as_the_cli_names_them() -> None:
    assert list(BACKENDS) == ["trio", "asyncio", "asyncio+uvloop"]
    assert all(BACKENDS[name].name == name for name in BACKENDS)
    with pytest.raises(ValueError, match="'curio'"):
        backend("curio")


@pytest.mark.timeout(10)
def test_run_returns_what_the_function_returns(each: Backend) -> None:
    async def add(a: int, b: int) -> int:
        await each.sleep(0)
        return a + b

    assert each.run(add, 1, 2) == 3


def _table(name: str, asked: list[str]) -> Any:
    def lookup(host: str, port: Any, family: int) -> list[Any] | None:
        asked.append(host)
        if host == name:
            return addrinfo(("127.0.0.1", int(port)))
        if host == "127.0.0.1":
            return None  # uvloop resolves a numeric address through the loop too
        raise socket.gaierror(socket.EAI_NONAME, f"not in the table: {host!r}")

    return lookup


@pytest.mark.timeout(10)
def test_a_resolver_answers_inside_its_block_only(each: Backend) -> None:
    outer: list[str] = []
    inner: list[str] = []

    with LoopbackServer("sink") as server:

        async def main() -> list[bool]:
            async with each.fail_after(5):
                with each.use_resolver(_table("outer.test", outer)):
                    with each.use_resolver(_table("inner.test", inner)):
                        a = await each.port.connect_check_send(f"inner.test:{server.port}", b"x")
                        b = await each.port.connect_check_send(f"outer.test:{server.port}", b"x")
                    # The inner one is gone: the outer one answers again.
                    c = await each.port.connect_check_send(f"outer.test:{server.port}", b"x")
            return [a.ok, b.ok, c.ok]

        assert each.run(main) == [True, False, True]
        assert server.wait_bytes(2)
    assert set(inner) - {"127.0.0.1"} == {"inner.test", "outer.test"}
    assert set(outer) - {"127.0.0.1"} == {"outer.test"}


@pytest.mark.timeout(10)
def test_cancel_after_cancels_from_outside_or_lets_finish(each: Backend) -> None:
    async def main() -> tuple[bool, bool]:
        never = each.Event()
        cut = await each.cancel_after(0.05, never.wait)
        done = await each.cancel_after(5, lambda: each.sleep(0))
        return cut, done

    assert each.run(main) == (True, False)


@pytest.mark.timeout(10)
def test_a_virtual_clock_jumps_where_there_is_one(each: Backend) -> None:
    async def main() -> float:
        start = each.now()
        async with each.move_on_after(3600) as scope:
            await each.sleep(7200)
        assert scope.cancelled_caught
        return each.now() - start

    if not each.has_virtual_clock:
        with pytest.raises(ValueError, match="no virtual clock"):
            each.run(main, virtual=True)
        return
    assert each.run(main, virtual=True) == 3600
