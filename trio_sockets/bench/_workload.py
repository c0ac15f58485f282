"""What one scenario of ``trio-sockets bench`` asks of a model, and what a run reports.

Shared by the parent (which plans the runs and checks their bytes) and the child
processes (which run one model each), with nothing of the frameworks in it.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from typing import Final, TypeAlias

__all__ = [
    "ALL_SCENARIOS",
    "PROCESS_SCENARIOS",
    "SCENARIOS",
    "SCENARIO_MODELS",
    "Address",
    "Measurement",
    "Workload",
    "reference",
    "runs_in",
]

# Scenarios whose models run in a child process timed from inside, around the work.
SCENARIOS: Final = ("sequential", "concurrent", "bulk", "fan-out", "cost", "tls", "scale")
# Scenarios timed from outside: a whole command, from its start to its exit.
PROCESS_SCENARIOS: Final = ("file",)
ALL_SCENARIOS: Final = SCENARIOS + PROCESS_SCENARIOS

_EVERY: Final = (
    "trio_port",
    "asyncio_port",
    "asyncio_port+uvloop",
    "trio-streams",
    "trio.socket",
    "asyncio-streams",
    "asyncio-raw",
    "blocking",
)
_TRIO: Final = ("trio_port", "trio-streams", "trio.socket")
# The models of each scenario, in the order the table lists them before it sorts.
SCENARIO_MODELS: Final[dict[str, tuple[str, ...]]] = {
    "sequential": _EVERY,
    "concurrent": (*_EVERY, "asyncio-raw+deadline"),
    "bulk": _EVERY,
    "fan-out": _EVERY,
    # Every model with the ports' default deadline per connection; raw code is
    # trio.socket, asyncio-raw and asyncio-raw+uvloop (and aiohappyeyeballs, which is
    # raw code too).
    "cost": (
        "trio_port",
        "asyncio_port",
        "asyncio_port+uvloop",
        "trio.socket",
        "asyncio-raw",
        "asyncio-raw+uvloop",
        "trio-streams",
        "asyncio-streams",
        "anyio",
        "aiohappyeyeballs",
    ),
    "tls": ("trio_port", "asyncio_port", "asyncio_port+uvloop", "trio-streams", "asyncio-streams"),
    "scale": ("trio_port", "asyncio_port"),
    # `trio-sockets send --file` on each backend, and the peers that can send a file.
    "file": ("trio_port", "asyncio_port", "asyncio_port+uvloop", "python-sendfile", "nc", "socat"),
}


def runs_in(model: str, scenario: str) -> bool:
    """Whether ``model`` is measured in ``scenario``."""
    return model in SCENARIO_MODELS.get(scenario, ())


def reference(scenario: str, model: str) -> str | None:
    """The model that ``model`` is compared with in ``scenario``, if any.

    cost: the raw code of the same framework, with the same deadline (on uvloop, raw
    code on uvloop); file: the smallest Python client that sends a file
    (``socket.create_connection`` + ``socket.sendfile``).
    """
    if scenario == "cost":
        if model in _TRIO:
            return "trio.socket"
        if model == "asyncio-raw+uvloop":
            return None  # raw code itself, as trio.socket and asyncio-raw
        return "asyncio-raw+uvloop" if model == "asyncio_port+uvloop" else "asyncio-raw"
    if scenario == "file":
        return "python-sendfile"
    return None


Address: TypeAlias = tuple[str, int]


@dataclasses.dataclass(frozen=True, slots=True)
class Workload:
    """What one scenario asks of a model: the sink, the sizes, the fan-out's bad targets."""

    scenario: str
    host: str
    port: int
    connections: int = 1
    concurrency: int = 1
    payload_bytes: int = 1024
    bulk_bytes: int = 0
    refused_port: int = 0
    blackhole_port: int = 0
    deadline: float = 1.0  # seconds per target, fan-out only
    # scale: more sink ports, the targets spread over them with ``port``, so that the
    # connections do not all share one (address, port) and its ephemeral ports.
    more_ports: tuple[int, ...] = ()
    cafile: str = ""  # tls: the PEM file of the CA that signed the sink's certificate

    def iter_targets(self) -> Iterator[Address]:
        """Every target in order, lazily; fan-out makes one in ten refused, one blackholed."""
        if self.scenario in ("bulk", "file"):
            yield (self.host, self.port)
        elif self.scenario == "fan-out":
            ports = {0: self.refused_port, 5: self.blackhole_port}
            for i in range(self.connections):
                yield (self.host, ports.get(i % 10, self.port))
        elif self.scenario == "scale":
            spread = itertools.cycle((self.port, *self.more_ports))
            for _, port in zip(range(self.connections), spread, strict=False):
                yield (self.host, port)
        else:
            yield from itertools.repeat((self.host, self.port), self.connections)

    @property
    def targets(self) -> list[Address]:
        """Every target in order, as a list."""
        return list(self.iter_targets())

    @property
    def target_count(self) -> int:
        return 1 if self.scenario in ("bulk", "file") else self.connections

    @property
    def expected_bytes(self) -> int:
        """What a correct model sends: only the sink targets get their payload."""
        if self.scenario in ("bulk", "file"):
            return self.bulk_bytes
        if self.scenario != "fan-out":
            return self.connections * self.payload_bytes
        good = sum(1 for _, port in self.iter_targets() if port == self.port)
        return good * self.payload_bytes

    @property
    def data(self) -> bytes:
        return bytes(self.bulk_bytes) if self.scenario == "bulk" else b"x" * self.payload_bytes

    @property
    def tolerant(self) -> bool:
        """Fan-out expects failures; every other scenario treats one as a bug."""
        return self.scenario == "fan-out"


@dataclasses.dataclass(frozen=True, slots=True)
class Measurement:
    """One model's run of one scenario, as the child process reports it."""

    scenario: str
    model: str
    elapsed_s: float
    bytes_sent: int
    max_rss_kib: int
    cpu_s: float = 0.0  # user and system CPU seconds of the model's process in the work
