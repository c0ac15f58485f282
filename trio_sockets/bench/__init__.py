"""``trio-sockets bench``: the concurrency models measured side by side, on loopback.

The connect-check-send workflow, run by both ports of trio_sockets and by the raw
frameworks and their peers written the idiomatic way (see
:mod:`trio_sockets.bench._models`), in these scenarios:

- ``sequential``: connect, check, send 1 KiB, close, one connection at a time;
- ``concurrent``: thousands of such connections, at most ``--concurrency`` at once;
- ``bulk``: one connection sending hundreds of MiB;
- ``fan-out``: like ``concurrent``, but one target in ten refuses the connection and one
  in ten is blackholed, each under a per-target deadline;
- ``cost``: like ``concurrent``, every model with the ports' default deadline per
  connection: the ports against raw code with that deadline, and the peers;
- ``tls``: like ``concurrent`` at ``--tls-concurrency``, over TLS (a trustme certificate);
- ``scale``: ``--targets`` targets from a generator through ``stream_to_many``, spread over
  several sink ports; its peak RSS against the same run with a hundredth as many
  (10,000 at most);
- ``file``: ``trio-sockets send --file`` as a whole process, on every backend, against the
  smallest Python client and ``nc`` and ``socat``; and its peak RSS for a larger file.

Method: the sink (and the blackhole) runs in a process of its own; every measurement is
one (scenario, model) pair in a fresh interpreter, timed inside it around the work only;
the models are interleaved in rounds (their order rotating from round to round), so that
a noisy neighbour slows every model alike (``scale`` and the large file run once);
``file`` times each command from its start to its exit instead, after one untimed run
of each (the bytecode written; the file is read into the page cache when it is made).
After every run, the bytes the sink received must equal the bytes the model says it
sent, or the benchmark stops. A table per scenario gives the median with min and max,
the cost per connection or the MiB/s, the CPU time, the peak RSS, and each model's ratio
to the fastest one of its scenario; a line under it compares a model with the one its
scenario holds it against.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Final

from .._hints import install_hint
from ..testing.servers import refusing_socket
from . import _process
from ._models import child_command
from ._report import render_table, summarize, write_plot
from ._workload import ALL_SCENARIOS, SCENARIO_MODELS, Measurement, Workload, runs_in

__all__ = ["BenchError", "add_arguments", "main", "run"]

HOSTS: Final = ("127.0.0.1", "::1")  # loopback only
ALL_MODELS: Final = tuple(dict.fromkeys(m for models in SCENARIO_MODELS.values() for m in models))
PLOT_SUFFIXES: Final = (".png", ".svg")
PLOT_HINT: Final = install_hint("plot")
SCENARIO_HELP: Final = (
    "Scenarios: sequential (one connection at a time), concurrent (many at once), bulk "
    "(one large send), fan-out (refused and blackholed targets among good ones, under a "
    "deadline), cost (every model with the same deadline per connection: the ports "
    "against raw code and the peers), tls (handshake and 1 KiB over TLS), scale "
    "(--targets through stream_to_many, peak RSS against a smaller run), file "
    "(trio-sockets send --file as a whole process against the smallest Python client, "
    "nc and socat; peak RSS for --rss-file-mib)."
)


@dataclasses.dataclass(frozen=True, slots=True)
class Sizes:
    """The size of each scenario, and how many rounds to run."""

    connections: int  # per run of sequential, concurrent, fan-out, cost and tls
    concurrency: int  # connections at once in concurrent, fan-out, cost and scale
    bulk_mib: int  # MiB sent over the one connection of bulk
    deadline: float  # seconds per target in fan-out
    rounds: int
    child_timeout: float  # seconds one measurement may take before the run fails
    tls_concurrency: int  # connections at once in tls
    targets: int  # targets of scale
    file_mib: int  # MiB of the file that file times
    rss_file_mib: int  # MiB of the file whose peak RSS file measures

    @property
    def base_targets(self) -> int:
        """The small run of scale, whose peak RSS the large one is compared with."""
        return max(1, min(10_000, self.targets // 100))


# Big enough that start-up costs fade: 3000 connections of 1 KiB at concurrency 200.
DEFAULT_SIZES: Final = Sizes(3000, 200, 256, 1.0, 7, 1800.0, 100, 1_000_000, 200, 1024)
# --quick: every scenario, small enough that every model runs in a minute or two on a
# 2-core machine; the numbers are only indicative.
QUICK_SIZES: Final = Sizes(600, 100, 64, 0.25, 2, 60.0, 50, 20_000, 20, 64)
LIMITS: Final = {
    "connections": 100_000,
    "concurrency": 1000,
    "bulk_mib": 4096,
    "rounds": 100,
    "tls_concurrency": 1000,
    "targets": 10_000_000,
    "file_mib": 16384,
    "rss_file_mib": 16384,
}
# Sink ports that scale spreads its targets over: each (address, port) has its own ~28,000
# ephemeral ports, and every closed connection holds one in TIME_WAIT for a minute.
SCALE_PORTS: Final = 16
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
        help=f"scenarios to run: {', '.join(ALL_SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--models",
        metavar="M1,M2",
        help=f"comma-separated models (default: all available): {', '.join(ALL_MODELS)}",
    )
    parser.add_argument(
        "--rounds", type=int, metavar="N", help="rounds of every model (7; quick 2)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: small sizes, 2 rounds, a few minutes; the numbers are noisy",
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
    parser.add_argument(
        "--tls-concurrency",
        type=int,
        metavar="N",
        help="connections at once in tls (100; quick 50)",
    )
    parser.add_argument(
        "--targets", type=int, metavar="N", help="targets of scale (1000000; quick 20000)"
    )
    parser.add_argument(
        "--file-mib", type=int, metavar="MIB", help="MiB file sends (200; quick 20)"
    )
    parser.add_argument(
        "--rss-file-mib",
        type=int,
        metavar="MIB",
        help="MiB of the file whose peak RSS file measures (1024; quick 64)",
    )
    parser.add_argument("--host", default=HOSTS[0], help="loopback address: 127.0.0.1 or ::1")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--plot", metavar="FILE", help="write a chart (.png or .svg)")
    parser.epilog = SCENARIO_HELP


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
    config["base_targets"] = sizes.base_targets
    config["cpu_count"] = os.cpu_count()
    config["python"] = platform.python_version()
    config["quick"] = bool(args.quick)
    config["scenarios"] = scenarios
    # The peers that could not run, so that a missing row is explained.
    config["not_installed"] = [t for t in _process.missing_tools() if "file" in scenarios]
    if args.json:
        print(json.dumps({"config": config, "results": results}, indent=2))
    else:
        render_table(results, config)
        for tool in config["not_installed"]:
            print(f"{tool} is not installed: it was not measured in file")
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
        f"--quick is a smoke run ({rounds} {plural}, small sizes):\n"  # two lines: 80 columns
        "the numbers are noisy, not for comparisons"
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
    scenarios = list(dict.fromkeys(args.scenarios or ALL_SCENARIOS))
    for name in scenarios:
        if name not in ALL_SCENARIOS:
            raise UsageError(f"unknown scenario {name!r}; choose from {', '.join(ALL_SCENARIOS)}")
    have_uvloop = importlib.util.find_spec("uvloop") is not None
    missing = set(_process.missing_tools())
    if args.models is None:
        models = [m for m in ALL_MODELS if (have_uvloop or "uvloop" not in m) and m not in missing]
    else:
        models = list(dict.fromkeys(m.strip() for m in args.models.split(",") if m.strip()))
        if not models:
            raise UsageError(f"--models names no model: {args.models!r}")
        for name in models:
            if name not in ALL_MODELS:
                raise UsageError(f"unknown model {name!r}; choose from {', '.join(ALL_MODELS)}")
            if name in missing:
                raise UsageError(f"model {name!r} is a program that is not installed")
            if "uvloop" in name and not have_uvloop:
                raise UsageError(f"model {name!r} needs uvloop: {install_hint('uvloop')}")
    if not any(runs_in(m, s) for s in scenarios for m in models):
        where = "; ".join(f"{s}: {', '.join(SCENARIO_MODELS[s])}" for s in scenarios)
        raise UsageError(
            f"no model of {', '.join(models)} runs in {', '.join(scenarios)} ({where})"
        )
    needs = {"anyio": "anyio" in models, "aiohappyeyeballs": "aiohappyeyeballs" in models}
    needs["trustme"] = "tls" in scenarios
    for module, needed in needs.items():
        if needed and importlib.util.find_spec(module) is None:
            raise UsageError(f"{module} is not installed: {install_hint('bench')}")
    base = QUICK_SIZES if args.quick else DEFAULT_SIZES
    values: dict[str, Any] = {}
    for name in LIMITS:
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

    def __init__(self, host: str, *, more_ports: int = 0, tls_cafile: Path | None = None) -> None:
        command = [sys.executable, "-m", "trio_sockets.bench._sink", host]
        command.append(f"--more-ports={more_ports}")
        if tls_cafile is not None:
            command.append(f"--tls-cafile={tls_cafile}")
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_child_env(),
        )
        info = self._ask(None)
        self.port: int = info["port"]
        self.blackhole_port: int = info["blackhole_port"]
        self.more_ports: tuple[int, ...] = tuple(info["more_ports"])
        self.tls_port: int = info["tls_port"]
        self.expected = 0  # bytes every model so far said it sent
        self.cpu_s: float = info["cpu_s"]

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
    root = str(Path(__file__).resolve().parents[2])
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


def _check_bytes(model: str, work: Workload, sent: int) -> None:
    if sent != work.expected_bytes:
        raise BenchError(
            f"{model} on {work.scenario} sent {sent} bytes, expected {work.expected_bytes}"
        )


def _plan(
    scenario: str, sizes: Sizes, host: str, sink: _Sink, refused: int, cafile: Path, round_: int
) -> list[Workload]:
    """The workloads of ``scenario`` in round ``round_`` (scale and the large file: once)."""
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
    if scenario == "tls":
        return [
            dataclasses.replace(
                work, port=sink.tls_port, concurrency=sizes.tls_concurrency, cafile=str(cafile)
            )
        ]
    if scenario == "scale":
        if round_ > 0:
            return []
        work = dataclasses.replace(work, more_ports=sink.more_ports)
        counts = (sizes.base_targets, sizes.targets)
        return [dataclasses.replace(work, connections=n) for n in counts]
    if scenario == "file":
        work = dataclasses.replace(work, bulk_bytes=sizes.file_mib * 2**20)
        if round_ > 0:
            return [work]
        return [work, dataclasses.replace(work, bulk_bytes=sizes.rss_file_mib * 2**20)]
    return [work]


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
    total = sum(
        len(_plan(s, sizes, host, _NO_SINK, 0, Path(), r)) * sum(runs_in(m, s) for m in models)
        for r in range(sizes.rounds)
        for s in scenarios
    )
    with (
        refusing_socket(host) as refusing,
        _progress(total, progress) as advance,
        tempfile.TemporaryDirectory(prefix="trio-sockets-bench-") as temp,
    ):
        refused = refusing.getsockname()[1]
        cafile = Path(temp) / "ca.pem"
        sink = _Sink(
            host,
            more_ports=SCALE_PORTS - 1 if "scale" in scenarios else 0,
            tls_cafile=cafile if "tls" in scenarios else None,
        )
        files: dict[int, Path] = {}
        warmed: set[str] = set()
        try:
            for round_ in range(sizes.rounds):
                # Rotate the order, so that no model always runs first (or after a
                # model that leaves the machine busy with TIME_WAIT sockets).
                shift = round_ % len(models)
                order = models[shift:] + models[:shift]
                for scenario in scenarios:
                    for work in _plan(scenario, sizes, host, sink, refused, cafile, round_):
                        for model in (m for m in order if runs_in(m, scenario)):
                            advance(f"round {round_ + 1}/{sizes.rounds}: {scenario}, {model}")
                            if scenario == "file":
                                if work.bulk_bytes not in files:
                                    files[work.bulk_bytes] = _process.make_file(
                                        Path(temp), work.bulk_bytes
                                    )
                                path = files[work.bulk_bytes]
                                if model not in warmed:
                                    # Once untimed, so that the bytecode is written, as
                                    # an installed package has it.
                                    warmed.add(model)
                                    _run_command(work, model, path, sizes.child_timeout)
                                    sink.account(work.bulk_bytes)
                                measurement = _run_command(work, model, path, sizes.child_timeout)
                            else:
                                measurement = _run_child(work, model, sizes.child_timeout)
                            _check_bytes(model, work, measurement.bytes_sent)
                            runs.append((work, measurement, sink.account(measurement.bytes_sent)))
                            advance(None)
        finally:
            sink.close()
    return runs


class _NoSink:
    """Stands for the sink while the runs are counted, before it starts."""

    port = blackhole_port = tls_port = 0
    more_ports: tuple[int, ...] = ()


_NO_SINK: Final[Any] = _NoSink()


def _run_command(work: Workload, model: str, path: Path, timeout: float) -> Measurement:
    """file: one command, timed from its start to its exit."""
    command, stdin = _process.file_command(model, path, work.host, work.port)
    env = _child_env()
    # pip compiles an installed package's bytecode; a source checkout run with
    # PYTHONDONTWRITEBYTECODE would compile every module of ours at every start instead.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = _process.run(command, stdin, env, timeout)
    if done.status != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise BenchError(f"{model} on file failed (status {done.status}):\n{tail}")
    return Measurement("file", model, done.elapsed_s, work.bulk_bytes, done.max_rss_kib, done.cpu_s)


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
