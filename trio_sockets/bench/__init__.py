"""``trio-sockets bench``: the concurrency models measured side by side, on loopback.

The connect-check-send workflow, run by both ports of trio_sockets and by the raw
frameworks written the idiomatic way (see :mod:`trio_sockets.bench._models`), in four
scenarios:

- ``sequential``: connect, check, send 1 KiB, close, one connection at a time;
- ``concurrent``: thousands of such connections, at most ``--concurrency`` at once;
- ``bulk``: one connection sending hundreds of MiB;
- ``fan-out``: like ``concurrent``, but one target in ten refuses the connection and one
  in ten is blackholed, each under a per-target deadline.

Method: the sink (and the blackhole) runs in a process of its own; every measurement is
one (scenario, model) pair in a fresh interpreter, timed inside it around the work only;
the models are interleaved in rounds (their order rotating from round to round), so that
a noisy neighbour slows every model alike; after every run, the bytes the sink received
must equal the bytes the model says it sent, or the benchmark stops. The table gives the
median with min and max, the cost per connection or the MiB/s, the peak RSS, and each
model's ratio to the fastest one of its scenario.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import resource
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Final

from ..testing.servers import refusing_socket
from ._models import MODELS, ONLY_IN, SCENARIOS, Measurement, Workload, child_command, runs_in
from ._report import render_table, summarize, write_plot

__all__ = ["BenchError", "add_arguments", "main", "run"]

HOSTS: Final = ("127.0.0.1", "::1")  # loopback only
PLOT_SUFFIXES: Final = (".png", ".svg")
PLOT_HINT: Final = "pip install 'trio-sockets[plot]'"


@dataclasses.dataclass(frozen=True, slots=True)
class Sizes:
    """The size of each scenario, and how many rounds to run."""

    connections: int  # per run of sequential, concurrent and fan-out
    concurrency: int  # connections at once in concurrent and fan-out
    bulk_mib: int  # MiB sent over the one connection of bulk
    deadline: float  # seconds per target in fan-out
    rounds: int
    child_timeout: float  # seconds one measurement may take before the run fails


# Big enough that start-up costs fade: 3000 connections of 1 KiB at concurrency 200.
DEFAULT_SIZES: Final = Sizes(3000, 200, 256, 1.0, 7, 300.0)
# --quick: every scenario, small enough that every model of the four runs in about a
# minute on a 2-core machine (the tests run it); the numbers are only indicative.
QUICK_SIZES: Final = Sizes(600, 100, 64, 0.25, 2, 60.0)
LIMITS: Final = {"connections": 100_000, "concurrency": 1000, "bulk_mib": 4096, "rounds": 100}
PAYLOAD_BYTES: Final = 1024
SINK_WAIT: Final = 30.0  # seconds for the sink to receive what a model sent


class BenchError(Exception):
    """A measurement went wrong (a model failed, or the byte counts disagree)."""


class UsageError(Exception):
    """A bad option; the message names the bad value."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench`` options to ``parser`` (the CLI's subcommand, or ``main``)."""
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"scenarios to run: {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--models",
        metavar="M1,M2",
        help=f"comma-separated models (default: all available): {', '.join(MODELS)}",
    )
    parser.add_argument(
        "--rounds", type=int, metavar="N", help="rounds of every model (7; quick 2)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: small sizes, 2 rounds, about a minute; the numbers are noisy",
    )
    parser.add_argument(
        "--connections", type=int, metavar="N", help="connections per run (3000; quick 600)"
    )
    parser.add_argument(
        "--concurrency", type=int, metavar="N", help="connections at once (200; quick 100)"
    )
    parser.add_argument("--bulk-mib", type=int, metavar="MIB", help="MiB for bulk (256; quick 64)")
    parser.add_argument(
        "--deadline", type=float, metavar="S", help="seconds per fan-out target (1.0; quick 0.25)"
    )
    parser.add_argument("--host", default=HOSTS[0], help="loopback address: 127.0.0.1 or ::1")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--plot", metavar="FILE", help="write a chart (.png or .svg)")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark the options ask for; 0 on success, 1 if it failed, 2 for bad options."""
    try:
        scenarios, models, sizes, plot = _check_options(args)
    except UsageError as exc:
        print(f"trio-sockets bench: error: {exc}", file=sys.stderr)
        return 2
    try:
        runs = _measure_all(scenarios, models, sizes, args.host, progress=not args.json)
    except BenchError as exc:
        print(f"trio-sockets bench: failed: {exc}", file=sys.stderr)
        return 1
    results = summarize(runs)
    config = dataclasses.asdict(sizes) | {"host": args.host, "payload_bytes": PAYLOAD_BYTES}
    config["cpu_count"] = os.cpu_count()
    config["quick"] = bool(args.quick)
    if args.json:
        print(json.dumps({"config": config, "results": results}, indent=2))
    else:
        render_table(results, config)
    if args.quick:
        # On stderr with --json, so that stdout stays one JSON document.
        print(_smoke_run_text(sizes.rounds), file=sys.stderr if args.json else sys.stdout)
    if plot is not None:
        write_plot(results, plot, config)
        if not args.json:
            print(f"plot written to {plot}")
    return 0


def _smoke_run_text(rounds: int) -> str:
    plural = "round" if rounds == 1 else "rounds"
    return (
        f"--quick is a smoke run ({rounds} {plural}, small sizes): the numbers are noisy, "
        "not for comparisons"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trio_sockets.bench``: the ``trio-sockets bench`` command on its own."""
    parser = argparse.ArgumentParser(
        prog="trio-sockets bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


# --------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------


def _check_options(
    args: argparse.Namespace,
) -> tuple[list[str], list[str], Sizes, Path | None]:
    scenarios = list(dict.fromkeys(args.scenarios or SCENARIOS))
    for name in scenarios:
        if name not in SCENARIOS:
            raise UsageError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    have_uvloop = importlib.util.find_spec("uvloop") is not None
    if args.models is None:
        models = [m for m in MODELS if have_uvloop or "uvloop" not in m]
    else:
        models = list(dict.fromkeys(m.strip() for m in args.models.split(",") if m.strip()))
        if not models:
            raise UsageError(f"--models names no model: {args.models!r}")
        for name in models:
            if name not in MODELS:
                raise UsageError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
            if "uvloop" in name and not have_uvloop:
                raise UsageError(f"model {name!r} needs uvloop: pip install 'trio-sockets[uvloop]'")
    if not any(runs_in(m, s) for s in scenarios for m in models):
        where = "; ".join(f"{m} runs only in {' and '.join(s)}" for m, s in ONLY_IN.items())
        raise UsageError(
            f"no model of {', '.join(models)} runs in {', '.join(scenarios)} ({where})"
        )
    base = QUICK_SIZES if args.quick else DEFAULT_SIZES
    values: dict[str, Any] = {}
    for name in ("connections", "concurrency", "bulk_mib", "rounds"):
        value = getattr(args, name)
        if value is None:
            continue
        option = "--" + name.replace("_", "-")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{option} must be a positive integer, got {value!r}")
        if value > LIMITS[name]:
            raise UsageError(f"{option} must be at most {LIMITS[name]}, got {value!r}")
        values[name] = value
    if args.deadline is not None:
        deadline = args.deadline
        if not isinstance(deadline, (int, float)) or not 0 < deadline <= 60:
            raise UsageError(f"--deadline must be a number of seconds in (0, 60], got {deadline!r}")
        values["deadline"] = float(deadline)
    sizes = dataclasses.replace(base, **values)
    files, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if sizes.concurrency + 64 > files:
        raise UsageError(
            f"--concurrency {sizes.concurrency} needs more open files than the limit of "
            f"{files} (ulimit -n)"
        )
    if args.host not in HOSTS:
        raise UsageError(
            f"--host must be a loopback address ({' or '.join(HOSTS)}), got {args.host!r}"
        )
    plot = None
    if args.plot is not None:
        plot = Path(args.plot)
        if plot.suffix.lower() not in PLOT_SUFFIXES:
            raise UsageError(f"--plot must name a .png or .svg file, got {args.plot!r}")
        if not plot.parent.is_dir():
            raise UsageError(f"--plot: no directory {str(plot.parent)!r} for {args.plot!r}")
        if importlib.util.find_spec("matplotlib") is None:
            raise UsageError(f"--plot needs matplotlib: {PLOT_HINT}")
    return scenarios, models, sizes, plot


# --------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------


class _Sink:
    """The sink process: ``python -m trio_sockets.bench._sink``, and its byte count."""

    def __init__(self, host: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "trio_sockets.bench._sink", host],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_child_env(),
        )
        info = self._ask(None)
        self.port: int = info["port"]
        self.blackhole_port: int = info["blackhole_port"]
        self.expected = 0  # bytes every model so far said it sent
        self.cpu_s = 0.0

    def _ask(self, command: str | None) -> dict[str, Any]:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        if command is not None:
            stdin.write(command + "\n")
            stdin.flush()
        line = stdout.readline()
        if not line:
            raise BenchError(f"the sink process exited (status {self._process.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def account(self, sent: int) -> float:
        """Check that the sink received exactly what was sent; return its CPU seconds."""
        self.expected += sent
        answer = self._ask(f"wait {self.expected} {SINK_WAIT}")
        received = answer["bytes_received"]
        if received != self.expected:
            raise BenchError(
                f"the sink received {received} bytes in all, but the models say they sent "
                f"{self.expected}: a model miscounts, or lost bytes"
            )
        cpu, self.cpu_s = answer["cpu_s"] - self.cpu_s, answer["cpu_s"]
        return float(cpu)

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _child_env() -> dict[str, str]:
    # The children import this very package, even from a source checkout.
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _run_child(work: Workload, model: str, timeout: float) -> Measurement:
    command = child_command(work, model)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=_child_env()
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{model} on {work.scenario} took more than {timeout:g} s") from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise BenchError(f"{model} on {work.scenario} failed (status {done.returncode}):\n{tail}")
    try:
        fields = json.loads(done.stdout.strip().splitlines()[-1])
        return Measurement(**fields)
    except (IndexError, ValueError, TypeError) as exc:
        raise BenchError(f"{model} on {work.scenario}: unreadable output {done.stdout!r}") from exc


def _measure_all(
    scenarios: list[str],
    models: list[str],
    sizes: Sizes,
    host: str,
    *,
    progress: bool,
) -> list[tuple[Workload, Measurement, float]]:
    """Every (scenario, model) pair ``sizes.rounds`` times; (work, measurement, sink CPU s)."""
    runs: list[tuple[Workload, Measurement, float]] = []
    total = sizes.rounds * sum(runs_in(m, s) for s in scenarios for m in models)
    with refusing_socket(host) as refusing, _progress(total, progress) as advance:
        refused = refusing.getsockname()[1]
        sink = _Sink(host)
        try:
            for round_ in range(sizes.rounds):
                # Rotate the order, so that no model always runs first (or after a
                # model that leaves the machine busy with TIME_WAIT sockets).
                shift = round_ % len(models)
                order = models[shift:] + models[:shift]
                for scenario in scenarios:
                    work = Workload(
                        scenario=scenario,
                        host=host,
                        port=sink.port,
                        connections=sizes.connections,
                        concurrency=sizes.concurrency,
                        payload_bytes=PAYLOAD_BYTES,
                        bulk_bytes=sizes.bulk_mib * 2**20,
                        refused_port=refused,
                        blackhole_port=sink.blackhole_port,
                        deadline=sizes.deadline,
                    )
                    for model in (m for m in order if runs_in(m, scenario)):
                        advance(f"round {round_ + 1}/{sizes.rounds}: {scenario}, {model}")
                        measurement = _run_child(work, model, sizes.child_timeout)
                        if measurement.bytes_sent != work.expected_bytes:
                            raise BenchError(
                                f"{model} on {scenario} sent {measurement.bytes_sent} bytes, "
                                f"expected {work.expected_bytes}"
                            )
                        runs.append((work, measurement, sink.account(measurement.bytes_sent)))
                        advance(None)
        finally:
            sink.close()
    return runs


@contextmanager
def _progress(total: int, wanted: bool) -> Iterator[Any]:
    """A rich progress bar on stderr (a terminal only); yields ``advance(description)``."""
    stream: IO[str] = sys.stderr
    if not (wanted and stream.isatty()):
        yield lambda description: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(file=stream), transient=True) as bar:
        task = bar.add_task("starting", total=total)

        def advance(description: str | None) -> None:
            if description is None:
                bar.advance(task)
            else:
                bar.update(task, description=description)

        yield advance
