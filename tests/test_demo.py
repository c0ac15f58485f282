"""The demo: what each contestant measurably did, the rendering, and the demo's portability.

The command-line wiring (``trio-sockets demo`` and its options) is in ``test_cli.py``; here
the demo package is called directly. Loopback only.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from trio_sockets import demo
from trio_sockets._hints import install_hint
from trio_sockets.cli import main
from trio_sockets.demo import _code, _kit, _plain, _plot, _render
from trio_sockets.demo._scenarios import (
    CANCEL_AFTER,
    FAIL_FAST_TIMEOUT,
    HE_DELAY,
    HE_TIMEOUT,
    PAYLOAD,
    RESET_AFTER,
)
from trio_sockets.testing import ipv6_loopback

CONTESTANTS = demo.CONTESTANTS

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


# --------------------------------------------------------------------------------------
# Portability
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_open_fds_without_a_listing_directory_probes_each_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as sock:
        listed = _kit.open_fds()
        assert sock.fileno() in listed
        # macOS has no /proc; a system with neither listing falls back to probing.
        monkeypatch.setattr(_kit, "FD_DIRECTORIES", ("/no/such/dir",))
        assert _kit.open_fds() == listed
    assert sock.fileno() not in _kit.open_fds()


@pytest.mark.timeout(10)
def test_open_fds_reads_dev_fd_where_there_is_no_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.path.isdir("/dev/fd"):
        pytest.skip("no /dev/fd here")
    listed = _kit.open_fds()
    monkeypatch.setattr(_kit, "FD_DIRECTORIES", ("/no/such/dir", "/dev/fd"))
    monkeypatch.setattr(_kit, "_fd_limit", lambda: 0)  # probing would find nothing
    assert _kit.open_fds() == listed


# --------------------------------------------------------------------------------------
# --plot: a bad path fails before anything runs
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("name", "says"),
    [("missing/x.png", "does not exist"), ("folder.png", "is a directory")],
)
def test_demo_plot_path_is_checked_before_the_demo_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, says: str
) -> None:
    (tmp_path / "folder.png").mkdir()
    path = tmp_path / name
    status = main(["demo", "deadline", "--json", "--plot", str(path)])
    out, err = capsys.readouterr()
    assert status == 2
    assert str(path) in err and says in err
    assert out == ""  # nothing ran: a 0.5 s scenario would have printed its JSON


@pytest.mark.timeout(10)
def test_demo_plot_in_a_directory_that_refuses_files_is_checked_up_front(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /proc on Linux: access() says writable, creating a file there fails.
    import tempfile

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    path = tmp_path / "x.png"
    status = main(["demo", "deadline", "--json", "--plot", str(path)])
    out, err = capsys.readouterr()
    assert status == 2
    assert repr(str(path)) in err and "Permission denied" in err
    assert out == ""  # nothing ran


@pytest.mark.timeout(10)
def test_demo_plot_empty_is_reported_as_given(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["demo", "deadline", "--plot", ""])
    out, err = capsys.readouterr()
    assert status == 2
    assert "--plot '':" in err
    assert out == ""


@pytest.mark.timeout(30)
@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_demo_plot_that_fails_late_keeps_the_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trio_sockets.demo import _render

    def refuse(*args: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_render, "render_plot", refuse)
    status = main(["demo", "all-refused", "--json", "--plot", str(tmp_path / "x.png")])
    out, err = capsys.readouterr()
    assert status == 2
    assert '"scenarios"' in out
    assert "Permission denied" in err


# --------------------------------------------------------------------------------------
# The contestants: what each measurably did
# --------------------------------------------------------------------------------------

# The contestants that do worse than the ports in each scenario, and a phrase of the
# reason they are given; every other contestant must be measured as flawless.
FLAWS: dict[str, dict[str, str]] = {
    "happy-eyeballs": {
        "asyncio-unstructured": "one address at a time",
        "threads": "one address at a time",
    },
    "all-refused": {"threads": "names 0 of the 3"},
    "deadline": {"threads": "overran the 0.5 s deadline"},
    "backpressure": {},
    "reset": {"asyncio-unstructured": "byte count", "threads": "byte count"},
    "fan-out": {},
    "fail-fast": {"asyncio-unstructured": "tasks still running", "threads": "to fail fast"},
    "cancel": {"asyncio-unstructured": "after it was cancelled", "threads": "cannot be cancelled"},
    "tls": {},  # every contestant verifies the host name: the ssl module does it for all
}


def test_every_scenario_has_its_expected_flaws() -> None:
    assert sorted(FLAWS) == sorted(demo.scenario_names())


@pytest.fixture(scope="module")
def measured() -> dict[str, dict[str, Any]]:
    """Each scenario on each contestant, run once for the tests below."""
    return {}


def _run(scenario: str, cache: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if scenario not in cache:
        fds, threads = _kit.open_fds(), set(threading.enumerate())
        cache[scenario] = {c: demo.run_scenario(demo.select([scenario])[0], c) for c in CONTESTANTS}
        # The demo measures what a contestant left behind, then cleans it up. (Only new
        # ones count: an idle worker of an earlier test may end meanwhile.)
        assert _kit.open_fds() <= fds, scenario
        assert _kit.new_threads(threads) == set(), scenario
    return cache[scenario]


@pytest.mark.timeout(40)
@pytest.mark.parametrize("scenario", sorted(FLAWS))
def test_what_each_contestant_did_is_measured(
    scenario: str, measured: dict[str, dict[str, Any]]
) -> None:
    results = _run(scenario, measured)
    for name, result in results.items():
        phrase = FLAWS[scenario].get(name)
        if phrase is None:
            assert result["flaw"] is None, (name, result)
            assert result["as_expected"], (name, result)
        else:
            assert result["flaw"] is not None and phrase in result["flaw"], (name, result)
        if name in demo.PORTS:
            assert result["left_behind"] == {"sockets": 0, "tasks": 0, "threads": 0}, name
        assert result["connects"] > 0, name  # every scenario connects somewhere


@pytest.mark.timeout(40)
def test_unstructured_fail_fast_leaves_tasks_and_sockets_the_ports_do_not(
    measured: dict[str, dict[str, Any]],
) -> None:
    results = _run("fail-fast", measured)
    left = results["asyncio-unstructured"]["left_behind"]
    assert left["tasks"] > 0 and left["sockets"] > 0, left
    assert results["threads"]["time_s"] >= 0.9 * FAIL_FAST_TIMEOUT
    for port in demo.PORTS:
        assert results[port]["time_s"] < 0.5


@pytest.mark.timeout(40)
def test_a_thread_cannot_be_cancelled(measured: dict[str, dict[str, Any]]) -> None:
    results = _run("cancel", measured)
    left = results["threads"]["left_behind"]
    assert left["threads"] > 0 and left["sockets"] > 0, left
    assert results["asyncio-unstructured"]["time_s"] > CANCEL_AFTER + 0.1
    for port in demo.PORTS:
        assert results[port]["time_s"] < CANCEL_AFTER + 0.1


@pytest.mark.timeout(40)
def test_only_the_ports_know_the_bytes_sent_before_a_reset(
    measured: dict[str, dict[str, Any]],
) -> None:
    results = _run("reset", measured)
    for port in demo.PORTS:
        assert results[port]["bytes_sent"] >= RESET_AFTER
    for plain in ("asyncio-unstructured", "threads"):
        assert results[plain]["bytes_sent"] is None


@pytest.mark.timeout(40)
def test_only_the_ports_race_the_addresses(measured: dict[str, dict[str, Any]]) -> None:
    results = _run("happy-eyeballs", measured)
    for port in demo.PORTS:
        assert results[port]["time_s"] < 2 * HE_DELAY
    for plain in ("asyncio-unstructured", "threads"):
        assert results[plain]["time_s"] >= 0.9 * HE_TIMEOUT


@pytest.mark.timeout(40)
def test_tls_handshake_and_a_wrong_name_refused_with_its_reason(
    measured: dict[str, dict[str, Any]],
) -> None:
    results = _run("tls", measured)
    for name, result in results.items():
        assert result["outcome"] == "ok, refused", (name, result)
        assert result["bytes_sent"] == len(PAYLOAD), name
        assert result["refusal"] == "Hostname mismatch", (name, result["error"])
        assert "other.demo" in result["error"], name
    for port in demo.PORTS:
        assert results[port]["tls_version"] in ("TLSv1.2", "TLSv1.3")
        assert 0 < results[port]["handshake_s"] < results[port]["time_s"]
        ok, refused = results[port]["workflows"]
        assert ok["phases"]["tls"] > 0 and ok["status"] == "ok"
        assert refused["status"] == "error"
    for plain in ("asyncio-unstructured", "threads"):
        assert results[plain]["handshake_s"] is None  # inside the call: not known


@pytest.mark.timeout(30)
@pytest.mark.parametrize("contestant", CONTESTANTS)
def test_tls_verdict_says_when_a_wrong_name_is_let_through(
    contestant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trio_sockets.demo import _scenarios

    # A client that checks no host name: the wrong name connects, and the verdict says so.
    real = _scenarios.tls_contexts

    def lax() -> tuple[ssl.SSLContext, ssl.SSLContext]:
        server, client = real()
        client.check_hostname = False
        return server, client

    monkeypatch.setattr(_scenarios, "tls_contexts", lax)
    monkeypatch.setattr(_plain, "tls_contexts", lax)
    [scenario] = demo.select(["tls"])
    result = demo.run_scenario(scenario, contestant)
    assert result["outcome"] == "ok, ok", result
    assert not result["as_expected"]
    assert "other.demo was not refused: ok" in result["flaw"], result


@pytest.mark.timeout(30)
def test_demo_tls_without_trustme_is_skipped_with_a_hint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "trustme" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    status = main(["demo", "tls", "all-refused"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"skipping tls: it needs trustme: {install_hint('tls')}" in err
    assert "all-refused" in out and "tls:" not in out
    assert main(["demo", "tls"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.timeout(30)
def test_demo_code_shows_both_ports_tls(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert main(["demo", "tls", "--code"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "other.demo refused: Hostname mismatch" in out.replace("\n  ", " ")
    assert "trio: Connection._start_tls" in out and "asyncio: Connection._start_tls" in out
    assert "trio.SSLStream(" in out and "TLSLayer(" in out
    assert "trio: _handshake" in out and "asyncio: _handshake" in out


# --------------------------------------------------------------------------------------
# The terminal
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(40)
@pytest.mark.parametrize("width", [80, 120])
def test_every_column_and_contestant_fits_the_terminal(
    width: int, measured: dict[str, dict[str, Any]]
) -> None:
    rows = []
    for scenario in demo.select(["fail-fast", "all-refused"]):
        results = _run(scenario.name, measured)
        rows.append(
            {"name": scenario.name, "title": scenario.title, "lesson": "", "results": results}
        )
    console = Console(width=width, record=True, file=io.StringIO())
    _render.print_demo(console, rows, CONTESTANTS)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text
    for header in ("contestant", "outcome", "time", "sent", "tries", "left"):
        assert re.search(rf"\b{header}\b", text), header
    for name in CONTESTANTS:
        label = demo.LABELS[name]
        assert label in text or label.replace(", ", ",\n") in text, label
    assert "tasks still running" in text  # the one-line reason under the table


# --------------------------------------------------------------------------------------
# --code
# --------------------------------------------------------------------------------------


def test_differing_lines_ignore_indentation_only() -> None:
    left = ["def f():", "    with trio.move_on_after(1):", "        x = 1", "    return x"]
    right = ["def f():", "    async with asyncio.timeout(1):", "            x = 1", "    return x"]
    assert _code.differing(left, right) == ({1}, {1})


def test_long_runs_of_shared_lines_are_folded_with_context() -> None:
    same = [f"line {n}" for n in range(20)]
    hidden_left, hidden_right = _code.folded(["a", *same], ["b", *same])
    assert hidden_left == set(range(1 + _code.CONTEXT, 21 - _code.CONTEXT))
    assert hidden_right == hidden_left


def _marked_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "▌" in line]


@pytest.mark.timeout(30)
def test_demo_code_shows_both_ports_sources_with_the_differences_marked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["demo", "fail-fast", "--code"])
    out, err = capsys.readouterr()
    assert status == 0, err
    # send_to_many reads the same in both ports; the model's difference is in the
    # fan-out beneath it, which the listing shows too.
    trio_source, asyncio_source = _code.source_of("_fan_out")
    assert trio_source.found and asyncio_source.found
    assert "trio: send_to_many" in out and "asyncio: send_to_many" in out
    assert "trio: _fan_out" in out and "asyncio: _fan_out" in out
    marked = _marked_lines(out)
    ours, theirs = _code.differing(trio_source.lines, asyncio_source.lines)
    assert ours and theirs  # the ports differ here, or there would be no lesson
    for lines, index in ((trio_source.lines, min(ours)), (asyncio_source.lines, min(theirs))):
        text = lines[index].strip()[:40]
        assert any(text in line for line in marked), text
    # A line the two ports share is shown unmarked.
    assert "async def send_to_many(" in out
    assert not any("async def send_to_many(" in line for line in marked)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("width", [80, 200])
def test_code_listing_side_by_side_only_when_wide(width: int) -> None:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(_code.Listing(["_workflow"]))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    titles = [line for line in text.splitlines() if "_workflow" in line and ":" in line]
    side_by_side = any("trio:" in line and "asyncio:" in line for line in titles)
    assert side_by_side == (width >= _code.SIDE_BY_SIDE_WIDTH)


def test_code_listings_show_each_function_once() -> None:
    listings = _code.Listings([("send_to_many",), ("send_to_many", "_open")])
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(listings(0))
    first = console.export_text()
    console.print(listings(1))
    second = console.export_text()
    assert "trio: send_to_many" in first
    assert "trio: send_to_many" not in second and "shown above" in second
    assert "trio: _open" in second


# --------------------------------------------------------------------------------------
# --plot
# --------------------------------------------------------------------------------------


def _row(scenario: str, measured: dict[str, dict[str, Any]]) -> dict[str, Any]:
    chosen = demo.select([scenario])[0]
    return {"name": chosen.name, "title": chosen.title, "results": _run(scenario, measured)}


@pytest.mark.timeout(40)
def test_plot_lanes_are_named_by_role_never_by_port_number(
    measured: dict[str, dict[str, Any]],
) -> None:
    lanes = _plot._lanes(_row("happy-eyeballs", measured), CONTESTANTS)
    family = "IPv6" if ipv6_loopback() else "IPv4"
    assert f"attempt: {family}, blackholed" in [label.strip() for label in lanes.labels]
    assert "attempt: IPv4, accepts" in [label.strip() for label in lanes.labels]
    assert not any(re.search(r"\d{3,}", label) for label in lanes.labels), lanes.labels
    for name in CONTESTANTS:
        assert any(label.startswith(demo.LABELS[name]) for label in lanes.labels), name


@pytest.mark.timeout(40)
def test_plot_shows_the_send_phase_of_backpressure(measured: dict[str, dict[str, Any]]) -> None:
    lanes = _plot._lanes(_row("backpressure", measured), CONTESTANTS)
    sends = [bar for bar in lanes.bars if bar[3] == _plot.PHASE_COLOURS["send"]]
    assert len(sends) == len(demo.PORTS)
    assert all(width > 0.05 for _, _, width, _, _ in sends)  # the reader set the pace


@pytest.mark.timeout(40)
def test_plot_shows_the_tls_phase_of_both_workflows(measured: dict[str, dict[str, Any]]) -> None:
    lanes = _plot._lanes(_row("tls", measured), CONTESTANTS)
    handshakes = [bar for bar in lanes.bars if bar[3] == _plot.PHASE_COLOURS["tls"]]
    assert len(handshakes) == 2 * len(demo.PORTS)  # the right name, and the wrong one
    assert all(width > 0 for _, _, width, _, _ in handshakes)
    labels = [label.strip() for label in lanes.labels]
    assert "Trio port: IPv4, accepts" in labels
    assert "Trio port: other.demo, not in the certificate" in labels


# --------------------------------------------------------------------------------------
# Ctrl+C
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(40)
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc (Linux)")
def test_ctrl_c_while_a_plain_contestant_runs_exits_130_at_once() -> None:
    # The ports take 0.25 s each on this scenario; then the plain contestants wait out
    # their 2 s deadline on the blackholed address. asyncio.run turns Ctrl+C into a
    # cancellation of the demo's task, which must not be taken for a contestant's outcome.
    demo_run = subprocess.Popen(
        [sys.executable, "-m", "trio_sockets", "demo", "happy-eyeballs"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Another process offers nothing to wait on: watch for its first server thread
        # (the demo has started, past its imports), then give the ports their turn.
        threads = Path(f"/proc/{demo_run.pid}/task")
        started = time.monotonic()
        while len(list(threads.iterdir())) < 2 and time.monotonic() - started < 20:
            time.sleep(0.01)
        time.sleep(1.2)
        demo_run.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        status = demo_run.wait(timeout=15)
        err = demo_run.stderr.read() if demo_run.stderr else ""
    finally:
        demo_run.kill()
        demo_run.wait()
    assert status == 130, err
    assert time.monotonic() - interrupted < 3.0
    assert "Traceback" not in err


# --------------------------------------------------------------------------------------
# happy-eyeballs on uvloop, and a verdict computed from what happened
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed")
def test_demo_uvloop_happy_eyeballs_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    # uvloop sends IP literals through the demo's patched loop.getaddrinfo too.
    status = main(["demo", "happy-eyeballs", "--uvloop"])
    out, err = capsys.readouterr()
    assert status == 0, out + err
    assert "not in the demo's resolver" not in out


@pytest.mark.timeout(30)
@pytest.mark.parametrize("port", demo.PORTS)
def test_happy_eyeballs_verdict_says_what_happened(
    port: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trio_sockets.demo import _scenarios

    [scenario] = demo.select(["happy-eyeballs"])
    result = demo.run_scenario(scenario, port)
    assert result["as_expected"], result["detail"]
    assert re.search(r"IPv4 started after 0\.2\d s", result["detail"]), result["detail"]
    # A deadline shorter than the delay: IPv4 never starts, and the verdict says so.
    monkeypatch.setattr(_scenarios, "HE_TIMEOUT", HE_DELAY / 2)
    result = demo.run_scenario(scenario, port)
    assert not result["as_expected"]
    assert "IPv4 started" not in result["detail"], result["detail"]
    assert "timeout" in result["detail"], result["detail"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("port", demo.PORTS)
def test_a_verdict_that_failed_says_what_happened(
    port: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trio_sockets.demo import _scenarios

    # all-refused expects the refusals within HE_DELAY: no time at all cannot be met.
    monkeypatch.setattr(_scenarios, "HE_DELAY", 0.0)
    [scenario] = demo.select(["all-refused"])
    result = demo.run_scenario(scenario, port)
    assert not result["as_expected"]
    assert "started the next at once" not in result["detail"], result["detail"]
    assert result["detail"].startswith("error in "), result["detail"]
    assert "failed" in result["detail"], result["detail"]


# --------------------------------------------------------------------------------------
# Output that is not a terminal
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_demo_to_a_file_or_pipe_is_80_columns_without_trailing_spaces(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    status = main(["demo", "fail-fast", "all-refused"])
    out, err = capsys.readouterr()
    assert status == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert [line for line in lines if line != line.rstrip()] == []
    # A count stays with its word: no "5" at a line's end, "cancelled" on the next.
    assert "1 error, 5 cancelled" in out
    cut = r"\b\d+\n\s*(sockets?|tasks?|threads?|cancelled|timeout|error)\b"
    assert re.search(cut, out) is None, out


@pytest.mark.timeout(30)
def test_demo_in_colour_has_no_trailing_spaces(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # as in a terminal: styles on
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("NO_COLOR", raising=False)
    status = main(["demo", "fail-fast"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "\x1b[" in out
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in out.splitlines()]
    assert max(len(line) for line in plain) <= 80
    assert [line for line in plain if line != line.rstrip()] == []


@pytest.mark.timeout(30)
def test_demo_to_a_file_or_pipe_follows_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    status = main(["demo", "fail-fast"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert 80 < max(len(line) for line in out.splitlines()) <= 120
