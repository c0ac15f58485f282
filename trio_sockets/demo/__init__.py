"""The demo: the same network trouble, met by four contestants, measured from outside.

The contestants are the two ports (Trio's and asyncio's) and two plain ones written the way
tutorials and most codebases write them, with nothing of this package in them:
:mod:`.unstructured` (``asyncio.open_connection``, ``gather``, ``wait_for``) and
:mod:`.threads` (``socket.create_connection``, a ``ThreadPoolExecutor``).

Each :class:`Scenario` has a body for the ports, written once against the API both share
(:mod:`._scenarios`), and one for the plain contestants (:mod:`._plain`). The servers are
:class:`LoopbackServer` threads on loopback, started fresh for every run. The harness here
measures what every contestant left behind when its call returned (sockets, tasks,
threads), then stops it, so that the demo itself leaks nothing.

A run returns a framework-neutral, JSON-ready dict (see :func:`run_scenario`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable
from typing import Final, cast

from . import _plain
from ._kit import KITS, Kit, Net, PortName, new_threads, open_fds, run_on, watch_connects
from ._plain import PLAIN_BODIES, PLAIN_KITS
from ._scenarios import (
    SMALL_SNDBUF,
    Body,
    Result,
    all_refused,
    backpressure,
    cancel,
    deadline,
    fail_fast,
    fan_out,
    happy_eyeballs,
    reset,
    tls,
)

__all__ = [
    "CONTESTANTS",
    "CONTESTANTS_ON_UVLOOP",
    "LABELS",
    "PORTS",
    "PORTS_ON_UVLOOP",
    "SCENARIOS",
    "Kit",
    "Scenario",
    "run_scenario",
    "scenario_names",
]

PORTS: Final[tuple[str, ...]] = ("trio", "asyncio")
# demo --uvloop: the asyncio port runs on uvloop instead of asyncio's own loop.
PORTS_ON_UVLOOP: Final[tuple[str, ...]] = ("trio", "asyncio+uvloop")
PLAIN: Final[tuple[str, ...]] = tuple(PLAIN_KITS)
CONTESTANTS: Final[tuple[str, ...]] = PORTS + PLAIN
CONTESTANTS_ON_UVLOOP: Final[tuple[str, ...]] = PORTS_ON_UVLOOP + PLAIN
LABELS: Final[dict[str, str]] = {
    "trio": "Trio port",
    "asyncio": "asyncio port",
    "asyncio+uvloop": "asyncio port, uvloop",
    **{name: kit.label for name, kit in PLAIN_KITS.items()},
}
THREAD_GRACE: Final = 15.0  # seconds to wait for threads left running once servers close


@dataclasses.dataclass(frozen=True, slots=True)
class Scenario:
    """A named piece of network trouble, its lesson, and the port body that meets it.

    The plain contestants' body has the same name in :mod:`._plain`. ``sndbuf``, if set,
    is the send buffer every socket gets before it connects; ``code`` names the port
    functions the scenario exercises, for ``demo --code``; ``needs``, if set, names the
    module (from an optional extra) without which the scenario cannot run.
    """

    name: str
    title: str
    lesson: str
    body: Body
    code: tuple[str, ...] = ("connect_check_send",)  # as in the ports: "Connection.send_all"
    sndbuf: int | None = None
    needs: str | None = None  # a module from an optional extra, without which it is skipped


SCENARIOS: Final[tuple[Scenario, ...]] = (
    Scenario(
        "happy-eyeballs",
        "Happy eyeballs: blackholed IPv6, live IPv4",
        "The ports race the addresses as a staircase (RFC 8305): IPv4 starts 0.25 s after "
        "IPv6, and the first to connect cancels the rest. Trio's winner cancels the "
        "nursery's scope; asyncio's winner stops its TaskGroup. open_connection and "
        "create_connection try one address at a time, by default.",
        happy_eyeballs,
        ("_race",),
    ),
    Scenario(
        "all-refused",
        "Every address refused",
        "A refusal starts the next attempt at once instead of waiting out the delay, and "
        "the caller gets one ConnectError listing every attempt, in both ports. "
        "create_connection raises the last error alone.",
        all_refused,
        ("_open",),
    ),
    Scenario(
        "deadline",
        "A deadline on a name whose two addresses are blackholed",
        "One deadline covers the whole workflow, every address included: "
        "trio.move_on_after, asyncio.timeout, and wait_for too. The hung connects are "
        "cancelled, their sockets closed, and the report says which phase ran out of time. "
        "A socket timeout bounds each blocking call instead, one per address.",
        deadline,
        ("_workflow",),
    ),
    Scenario(
        "backpressure",
        "Backpressure from a slow reader",
        "Each send waits for writability whenever the kernel buffer is full: a checkpoint "
        "in Trio, an await in asyncio, where a deadline or a cancellation could stop it "
        "with bytes_sent exact. drain() and sendall() respect the reader's pace too.",
        backpressure,
        ("Connection._send_view",),
        sndbuf=SMALL_SNDBUF,
    ),
    Scenario(
        "reset",
        "A reset mid-send",
        "The peer resets after 64 KiB; the SendError carries bytes_sent, exactly what the "
        "kernel accepted. That is more than the peer read: only an application-level "
        "acknowledgement can tell what arrived. drain() and sendall() raise without a count.",
        reset,
        ("Connection._send_view",),
    ),
    Scenario(
        "fan-out",
        "Fan-out over mixed targets, 3 at a time",
        "A CapacityLimiter (Trio) or a Semaphore (asyncio) keeps three workflows in "
        "flight; a refused or hung target only costs its own slot, and the reports come "
        "back in input order. A semaphore with gather, or a pool of three threads, do it too.",
        fan_out,
        ("send_to_many", "_fan_out"),
    ),
    Scenario(
        "fail-fast",
        "Fail-fast",
        "The first failure cancels the rest: Trio cancels the nursery's scope; an asyncio "
        "TaskGroup stops only when a child fails, so the port raises a private exception "
        "and catches it with except*. gather() leaves the rest running; a thread pool "
        "cannot stop its running threads.",
        fail_fast,
        ("send_to_many", "_fan_out"),
    ),
    Scenario(
        "cancel",
        "Cancellation from outside",
        "The caller cancels mid-flight: Trio's cancel scope reaches every task of the "
        "fan-out; asyncio's Task.cancel() reaches the TaskGroup, which cancels and awaits "
        "its children, and gather() cancels its own. A thread cannot be cancelled.",
        cancel,
        ("send_to_many", "_fan_out"),
    ),
    Scenario(
        "tls",
        "TLS: a handshake, then a name the certificate does not cover",
        "The client trusts a throwaway CA; the certificate is for loopback. Trio composes "
        "trio.SSLStream over its connection, a stream like any other; the asyncio port "
        "pumps an ssl.SSLObject over the socket, since asyncio keeps TLS inside its "
        "transports. Both time the handshake. All four verify the host name and refuse "
        "the wrong one, naming the reason: the ssl module does the checking for everyone.",
        tls,
        ("Connection._start_tls", "_handshake"),
        needs="trustme",
    ),
)


def scenario_names() -> list[str]:
    return [s.name for s in SCENARIOS]


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _verdict(kit: Kit, result: Result) -> None:
    """Set ``flaw`` (one line, or None) and ``as_expected`` from what was measured."""
    left = result["left_behind"]
    flaws = []
    if isinstance(kit, _plain.Plain):
        flaws.append(result.pop("flaw"))
    elif not result["as_expected"]:
        flaws.append(f"not as expected: {result['detail']}")
    if any(left.values()):
        counts = ", ".join(_counted(n, k[:-1]) for k, n in left.items() if n)
        why = kit.why_left if isinstance(kit, _plain.Plain) else "a bug"
        flaws.append(f"{counts} still running after it returned: {why}")
    result["flaw"] = "; ".join(f for f in flaws if f) or None
    result["as_expected"] = result["flaw"] is None


async def _measured(kit: Kit, body: Body, net: Net, sndbuf: int | None) -> Result:
    fds, tasks, threads = open_fds(), kit.task_count(), set(threading.enumerate())
    with watch_connects(sndbuf) as seen:
        result = await body(kit, net)
        result["connects"] = len(seen)
        result["left_behind"] = {
            "sockets": net.left_behind(fds),
            "tasks": kit.task_count() - tasks,
            "threads": len(new_threads(threads) - net.own_threads),
        }
    await kit.stop_tasks_since(tasks)  # measured: now the demo cleans up after it
    for attempt in result["attempts"]:
        attempt["role"] = net.role(attempt["address"])
    for workflow in result["workflows"]:
        host, _, port = workflow["target"].rpartition(":")
        workflow["role"] = net.role((host.strip("[]"), port)) or host
    _verdict(kit, result)
    return result


def run_scenario(scenario: Scenario, contestant: str) -> Result:
    """Run ``scenario`` on one contestant, with fresh servers; return a JSON-ready dict.

    ``contestant`` is one of :data:`CONTESTANTS` (or ``"asyncio+uvloop"``: the asyncio
    port on uvloop's event loop, which must be installed).

    The dict holds ``outcome``, ``time_s``, ``bytes_sent`` (``None`` when unknown),
    ``attempts`` (the ports' ``Attempt.to_dict()`` rows, times from the scenario's start,
    each with its ``target``), ``workflows`` (the ports' workflows: span, status and phase
    times), ``connects`` (every ``socket.connect()`` seen), ``error``, ``detail``,
    ``left_behind`` (``{"sockets": n, "tasks": n, "threads": n}`` still open or running
    when the call returned), ``flaw`` (what went worse than it should, in one line, or
    ``None``) and ``as_expected``.
    """
    plain = PLAIN_KITS.get(contestant)
    kit: Kit
    if plain is not None:
        kit, loop = plain(), "asyncio"
        body = cast(Body, PLAIN_BODIES[scenario.name])  # run with the Plain kit made above
    else:
        name: PortName = "trio" if contestant == "trio" else "asyncio"
        kit, body, loop = KITS[name](), scenario.body, contestant
    threads = set(threading.enumerate())
    wall = time.perf_counter()
    with Net() as net:
        result = run_on(loop, lambda: _measured(kit, body, net, scenario.sndbuf))
        servers = net.own_threads
    # The servers are closed, so whatever a contestant left running fails at once now
    # (a blackholed connect meets a closed port, a send meets a reset): wait for it.
    deadline = time.monotonic() + THREAD_GRACE
    for thread in new_threads(threads) - servers:
        thread.join(max(deadline - time.monotonic(), 0))
    result["wall_s"] = time.perf_counter() - wall
    return result


def select(names: Iterable[str]) -> list[Scenario]:
    """The scenarios named (all of them for none), in the order given.

    Raises:
        KeyError: a name that is not a scenario (the argument is that name).
    """
    by_name = {s.name: s for s in SCENARIOS}
    chosen = [by_name[n] if n in by_name else _unknown(n) for n in names]
    return chosen or list(SCENARIOS)


def _unknown(name: str) -> Scenario:
    raise KeyError(name)
