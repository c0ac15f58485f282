"""The ``trio-sockets`` command: demo, send, serve, and the bench wiring.

Most tests call ``main([...])`` in-process and read what it printed with ``capsys``;
``serve`` and the installed console script run as subprocesses. Loopback only.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import math
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cli_support
import pytest
from cli_support import BACKENDS, cli_process, needs_uvloop, refusing_target, run

from trio_sockets import demo
from trio_sockets._hints import install_hint
from trio_sockets.cli import build_parser, main
from trio_sockets.testing import LoopbackServer, ipv6_loopback
from trio_sockets.testing.servers import MODES

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
FAST = ["all-refused", "fail-fast"]  # two scenarios that take milliseconds


# --------------------------------------------------------------------------------------
# --help
# --------------------------------------------------------------------------------------


def _subparsers_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    return _subparsers_of(build_parser(["bench"]))  # "bench": its options are built too


@pytest.mark.timeout(10)
def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == 0
    for command in ("demo", "send", "serve", "bench"):
        assert command in out


@pytest.mark.timeout(10)
def test_help_lists_every_serve_mode(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == 0
    listed = re.search(r"run a loopback test server \(([^)]*)\)", " ".join(out.split()))
    assert listed is not None, out
    assert listed.group(1).split(", ") == list(MODES)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("command", ["demo", "send", "serve", "bench"])
def test_help_of_each_subcommand_documents_every_option(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    if command == "bench" and importlib.util.find_spec("trio_sockets.bench") is None:
        pytest.skip("trio_sockets.bench is not there yet")
    status, out, _ = run(capsys, command, "--help")
    assert status == 0
    parser = _subparsers()[command]
    for action in parser._actions:
        for option in action.option_strings:
            assert option in out
        if not action.option_strings and action.help != argparse.SUPPRESS:
            assert str(action.metavar or action.dest) in out
        assert action.help, f"{command}: {action.option_strings or action.dest} has no help"


@pytest.mark.timeout(10)
def test_help_names_the_documented_options(capsys: pytest.CaptureFixture[str]) -> None:
    expected = {
        "demo": ["SCENARIO", "--json", "--plot"],
        "send": ["TARGET", "--data", "--file", "--backend", "--timeout", "--reply", "--json"],
        "serve": ["MODE", "--host", "--port", "sink", "echo", "slow", "reset", "blackhole"],
    }
    for command, words in expected.items():
        assert main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert all(word in out for word in words), (command, out)


@pytest.mark.timeout(10)
def test_no_subcommand_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys)
    assert status == 2
    assert "demo" in err


# --------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_demo_prints_a_side_by_side_table(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "demo", *FAST)
    assert status == 0, err
    assert "trio" in out and "asyncio" in out
    for name in FAST:
        assert name in out
    assert "happy-eyeballs" not in out  # only the scenarios asked for
    assert "ConnectError" in out  # a lesson is shown under the table
    assert "\x1b[" not in err  # no progress display when stderr is not a terminal


@pytest.mark.timeout(30)
def test_demo_json_has_every_contestant_for_every_scenario(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(capsys, "demo", "deadline", *FAST, "--json")
    assert status == 0
    data = json.loads(out)
    assert [c["id"] for c in data["contestants"]] == list(demo.CONTESTANTS)
    assert [s["name"] for s in data["scenarios"]] == ["deadline", *FAST]
    for scenario in data["scenarios"]:
        assert scenario["lesson"]
        assert set(scenario["results"]) == set(demo.CONTESTANTS)
        for name, result in scenario["results"].items():
            keys = {"outcome", "time_s", "bytes_sent", "attempts", "connects", "left_behind"}
            assert keys | {"flaw", "detail", "error"} <= set(result)
            if name in demo.PORTS:
                assert result["left_behind"] == {"sockets": 0, "tasks": 0, "threads": 0}
            for attempt in result["attempts"]:
                assert {"address", "family", "started_s", "ended_s", "outcome"} <= set(attempt)
    deadline = data["scenarios"][0]["results"]
    for result in deadline.values():
        assert result["outcome"] == "timeout"
        assert 0.45 <= result["time_s"] < 1.5


@pytest.mark.timeout(10)
def test_demo_unknown_scenario_is_named_with_the_valid_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run(capsys, "demo", "reset", "no-such-thing")
    assert status == 2
    assert "'no-such-thing'" in err
    assert all(name in err for name in demo.scenario_names())
    assert out == ""


@pytest.mark.timeout(90)
def test_full_demo_is_fast_and_leaves_nothing_behind(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    status, out, _ = run(capsys, "demo", "--json")
    elapsed = time.monotonic() - started
    assert elapsed < 60
    data = json.loads(out)
    assert [s["name"] for s in data["scenarios"]] == demo.scenario_names()
    for scenario in data["scenarios"]:
        for port in demo.PORTS:
            result = scenario["results"][port]
            where = f"{scenario['name']} on {port}"
            assert result["left_behind"] == {"sockets": 0, "tasks": 0, "threads": 0}, where
            assert result["as_expected"], (where, result)
            assert result["flaw"] is None, where
    assert status == 0


@pytest.mark.timeout(60)
@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<svg")])
def test_demo_plot(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, suffix: str, magic: bytes
) -> None:
    path = tmp_path / f"attempts{suffix}"
    status, _, err = run(capsys, "demo", "all-refused", "--plot", str(path))
    assert status == 0, err
    assert magic in path.read_bytes()[:400]
    assert str(path) in err


@pytest.mark.timeout(30)
@needs_uvloop
def test_demo_uvloop_runs_the_asyncio_port_on_uvloop(capsys: pytest.CaptureFixture[str]) -> None:
    # fan-out too: its "at most N at once" mixes the report's times with the demo's
    # clock, and must stay within the limit on uvloop's coarser loop clock.
    status, out, err = run(capsys, "demo", *FAST, "fan-out", "--uvloop", "--json")
    assert status == 0, err
    for scenario in json.loads(out)["scenarios"]:
        assert set(scenario["results"]) == set(demo.CONTESTANTS_ON_UVLOOP)
        for port in demo.PORTS_ON_UVLOOP:
            result = scenario["results"][port]
            assert result["as_expected"], (scenario["name"], result["detail"])
            assert result["left_behind"] == {"sockets": 0, "tasks": 0, "threads": 0}


@pytest.mark.timeout(10)
def test_demo_uvloop_without_uvloop_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # find_spec() finds nothing
    status, out, err = run(capsys, "demo", "--uvloop")
    assert status == 2
    assert install_hint("uvloop") in err
    assert out == ""
    status, out, err = run(capsys, "send", "127.0.0.1:9", "--data", "x", "--backend=asyncio+uvloop")
    assert status == 2
    assert install_hint("uvloop") in err


@pytest.mark.timeout(10)
def test_demo_plot_without_matplotlib_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    status, out, err = run(capsys, "demo", "--plot", str(tmp_path / "x.png"))
    assert status == 2
    assert install_hint("plot") in err
    assert out == ""
    assert not (tmp_path / "x.png").exists()


@pytest.mark.timeout(10)
def test_demo_plot_needs_png_or_svg(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "demo", "--plot", str(tmp_path / "x.jpeg"))
    assert status == 2
    assert "x.jpeg" in err


# --------------------------------------------------------------------------------------
# send
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("backend", BACKENDS)
def test_send_data_delivers_and_exits_0(capsys: pytest.CaptureFixture[str], backend: str) -> None:
    with LoopbackServer("sink") as server:
        status, out, _ = run(capsys, "send", server.target, "--data", "héllo", "--backend", backend)
        assert server.wait_bytes(6)
        assert server.bytes_received == 6
    assert status == 0
    assert out.startswith(f"ok: {server.target}")
    assert "sent 6 bytes" in out


@pytest.mark.timeout(20)
@pytest.mark.parametrize("backend", BACKENDS)
def test_send_json_with_reply(capsys: pytest.CaptureFixture[str], backend: str) -> None:
    with LoopbackServer("echo") as server:
        status, out, _ = run(
            capsys,
            "send",
            server.target,
            "--data",
            "ping",
            "--reply",
            "--json",
            "--backend",
            backend,
        )
    assert status == 0
    report = json.loads(out)
    assert report["status"] == "ok"
    assert report["bytes_sent"] == 4
    assert report["reply"] == "ping"
    assert report["backend"] == backend
    assert "port" not in report  # --port and "port" only ever mean a TCP port
    assert report["attempts"][0]["outcome"] == "connected"


@pytest.mark.timeout(20)
def test_send_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "payload.bin"
    path.write_bytes(bytes(range(256)) * 1000)
    with LoopbackServer("sink") as server:
        status, _, _ = run(capsys, "send", server.target, "--file", str(path))
        assert server.wait_bytes(256_000)
        assert server.bytes_received == 256_000
    assert status == 0


@pytest.mark.timeout(20)
def test_send_reads_standard_input_by_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"from stdin\n")))
    with LoopbackServer("echo") as server:
        status, out, _ = run(capsys, "send", server.target, "--reply", "--json")
    assert status == 0
    assert json.loads(out)["reply"] == "from stdin\n"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("backend", BACKENDS)
def test_send_refused_exits_1(capsys: pytest.CaptureFixture[str], backend: str) -> None:
    with refusing_target() as target:
        status, out, _ = run(capsys, "send", target, "--data", "x", "--backend", backend)
    assert status == 1
    assert out.startswith("error:")
    assert "ConnectionRefusedError" in out


@pytest.mark.timeout(20)
@pytest.mark.parametrize("backend", BACKENDS)
def test_send_timeout_exits_1(capsys: pytest.CaptureFixture[str], backend: str) -> None:
    with LoopbackServer("blackhole") as server:
        status, out, _ = run(
            capsys, "send", server.target, "--data", "x", "--timeout", "0.2", "--json",
            "--backend", backend,
        )  # fmt: skip
    assert status == 1
    report = json.loads(out)
    assert report["status"] == "timeout"
    assert report["attempts"][0]["outcome"] == "cancelled"


@pytest.mark.timeout(10)
@pytest.mark.parametrize("target", ["localhost", "localhost:http", "bad host:80", "[::1:80"])
def test_send_bad_target_exits_2_naming_it(capsys: pytest.CaptureFixture[str], target: str) -> None:
    status, out, err = run(capsys, "send", target, "--data", "x")
    assert status == 2
    assert "bad TARGET" in err
    assert err.count(repr(target)) == 1  # named once: the library's message names it
    assert out == ""


@pytest.mark.timeout(10)
@pytest.mark.parametrize("value", ["-1", "nan", "soon"])
def test_send_bad_timeout_exits_2_naming_it(capsys: pytest.CaptureFixture[str], value: str) -> None:
    status, _, err = run(capsys, "send", "127.0.0.1:9", "--data", "x", "--timeout", value)
    assert status == 2
    assert "--timeout" in err
    assert value in err


@pytest.mark.timeout(10)
def test_send_missing_file_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.bin"
    status, _, err = run(capsys, "send", "127.0.0.1:9", "--file", str(missing))
    assert status == 2
    assert str(missing) in err


@pytest.mark.timeout(10)
def test_send_bad_backend_choice_and_both_sources_are_bad_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = run(capsys, "send", "127.0.0.1:9", "--data", "x", "--backend", "curio")
    assert status == 2
    assert "curio" in err
    # --port only ever means a TCP port: it no longer picks the framework.
    status, _, err = run(capsys, "send", "127.0.0.1:9", "--data", "x", "--port", "asyncio")
    assert status == 2
    assert "--port" in err
    status, _, err = run(capsys, "send", "127.0.0.1:9", "--data", "x", "--file", "y")
    assert status == 2
    assert "--file" in err


# --------------------------------------------------------------------------------------
# serve (a subprocess: it runs until a signal)
# --------------------------------------------------------------------------------------


def _first_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_echo_then_stop_cleanly(sig: signal.Signals) -> None:
    with cli_process("serve", "echo") as proc:
        line = _first_line(proc)
        assert line.startswith("listening on 127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"ping")
            conn.shutdown(socket.SHUT_WR)
            assert conn.recv(100) == b"ping"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped: 1 connection, 4 bytes received" in err


@pytest.mark.timeout(30)
def test_serve_ipv6_blackhole() -> None:
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    with cli_process("serve", "blackhole", "--host", "::1") as proc:
        line = _first_line(proc)
        assert line.startswith("listening on [::1]:")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("args", "named"),
    [(["serve", "loud"], "loud"), (["serve", "echo", "--port", "70000"], "70000")],
)
def test_serve_bad_usage_exits_2(
    capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    status, _, err = run(capsys, *args)
    assert status == 2
    assert named in err


# --------------------------------------------------------------------------------------
# The installed command, and python -m
# --------------------------------------------------------------------------------------


def _console_script() -> list[str]:
    beside = Path(sys.executable).with_name("trio-sockets")
    if beside.exists():
        return [str(beside)]
    import shutil

    found = shutil.which("trio-sockets")
    return [found] if found else cli_support.command()


@pytest.mark.timeout(60)
def test_console_script_runs_the_demo() -> None:
    done = subprocess.run(
        [*_console_script(), "demo", *FAST, "--json"], capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    assert [s["name"] for s in data["scenarios"]] == FAST
    assert done.stderr == ""


@pytest.mark.timeout(60)
def test_python_dash_m_is_the_same_command() -> None:
    done = subprocess.run(cli_support.command("--help"), capture_output=True, text=True, timeout=50)
    assert done.returncode == 0
    assert "demo" in done.stdout and "send" in done.stdout
    with refusing_target() as target:
        done = subprocess.run(
            cli_support.command("send", target, "--data", "x", "--json"),
            capture_output=True,
            text=True,
            timeout=50,
        )
    assert done.returncode == 1
    assert json.loads(done.stdout)["status"] == "error"


@pytest.mark.timeout(30)
def test_bench_is_wired_lazily(capsys: pytest.CaptureFixture[str]) -> None:
    # `trio-sockets --help` does not build the bench's own options...
    plain = _subparsers_of(build_parser(["demo"]))["bench"]
    assert [a.dest for a in plain._actions] == ["help"]
    # ...`trio-sockets bench ...` does, from trio_sockets.bench when it is there.
    if importlib.util.find_spec("trio_sockets.bench") is None:
        status, _, err = run(capsys, "bench")
        assert status == 2
        assert "not available" in err
    else:
        assert len(_subparsers()["bench"]._actions) > 1


@pytest.mark.timeout(10)
def test_timeout_none_means_no_deadline() -> None:
    parsed = build_parser(["send"]).parse_args(["send", "h:1", "--timeout", "none"])
    assert parsed.timeout is None
    parsed = build_parser(["send"]).parse_args(["send", "h:1", "--timeout", "inf"])
    assert math.isinf(parsed.timeout)


def test_serve_counts_bytes_in_a_human_size() -> None:
    from trio_sockets.cli import _size_text

    assert _size_text(1) == "1 byte"
    assert _size_text(4) == "4 bytes"
    assert _size_text(11811160066) == "11.0 GiB (11,811,160,066 bytes)"


def test_send_text_says_what_the_total_time_covers() -> None:
    from trio_sockets import SendReport, Target
    from trio_sockets.cli._output import report_text

    report = SendReport(Target("h", 1), "ok", bytes_sent=6, total_s=3.791, reply=b"+PONG\r\n")
    assert "  sent 6 bytes; total 3.791 s, reply included\n" in report_text(report, max_reply=9)
    report = SendReport(Target("h", 1), "ok", bytes_sent=6, total_s=0.007)
    assert "  sent 6 bytes; total 0.007 s\n" in report_text(report, max_reply=9)


def test_send_text_brackets_ipv6_addresses() -> None:
    # The report text writes every address with the one formatter: [::1]:port for IPv6.
    from trio_sockets import Attempt, SendReport, Target
    from trio_sockets.cli._output import report_text

    attempt = Attempt(("::1", 50089, 0, 0), socket.AF_INET6, 0.0, 0.001, "connected")
    report = SendReport(Target("::1", 50089), "ok", address=attempt.address, attempts=(attempt,))
    text = report_text(report, max_reply=65536)
    assert text.startswith("ok: [::1]:50089 ([::1]:50089)\n")
    assert "attempt [::1]:50089 connected" in text
