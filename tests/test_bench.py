"""``trio-sockets bench``: the JSON it prints, its byte accounting, its option checks.

The benchmark runs in child processes, so these tests run ``python -m trio_sockets.bench``
as a user would, on small sizes; each has a hard time limit.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from trio_sockets import bench
from trio_sockets._hints import install_hint
from trio_sockets.bench._models import Workload

RESULT_KEYS = {
    "scenario",
    "model",
    "median_s",
    "min_s",
    "max_s",
    "runs",
    "connections",
    "bytes_sent",
    "per_connection_us",
    "mib_per_s",
    "peak_rss_mib",
    "ratio",
    "sink_cpu_share",
    "cpu_s",
    "reference",
    "ratio_to_reference",
    "cpu_ratio_to_reference",
}


def _bench(*args: str, timeout: float = 50) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trio_sockets.bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.timeout(60)
def test_quick_json_shape_and_bytes() -> None:
    done = _bench(
        "--quick", "--json", "--rounds=1", "--connections=200", "--bulk-mib=8",
        "--models=trio_port,asyncio-raw,asyncio-raw+deadline",
        "concurrent", "fan-out", "bulk",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # No progress display without a terminal; the smoke-run note goes to stderr, so that
    # stdout stays one JSON document.
    assert done.stderr.splitlines() == [
        "--quick is a smoke run (1 round, small sizes):",
        "the numbers are noisy, not for comparisons",
    ]
    output: dict[str, Any] = json.loads(done.stdout)
    results = output["results"]
    pairs = {(r["scenario"], r["model"]) for r in results}
    assert pairs == {
        (s, m) for s in ("concurrent", "fan-out", "bulk") for m in ("trio_port", "asyncio-raw")
    } | {("concurrent", "asyncio-raw+deadline")}  # measured where it means something
    for r in results:
        assert r.keys() >= RESULT_KEYS
        assert r["runs"] == 1
        assert 0 < r["min_s"] <= r["median_s"] <= r["max_s"]
        assert r["ratio"] >= 1.0
        assert r["peak_rss_mib"] > 0
        assert r["cpu_s"] > 0
    # Each run's bytes were checked against the sink by the benchmark itself; here,
    # that a model sent what its scenario asks: fan-out only reaches 8 targets in 10.
    sent = {r["scenario"]: r["bytes_sent"] for r in results}  # the same for every model
    assert sent == {"concurrent": 200 * 1024, "fan-out": 160 * 1024, "bulk": 8 * 2**20}
    bulk = [r for r in results if r["scenario"] == "bulk"]
    assert all(r["mib_per_s"] > 0 and r["per_connection_us"] is None for r in bulk)
    assert min(r["ratio"] for r in bulk) == 1.0
    assert output.keys() == {"config", "results"}  # measurements only, no project goals
    assert output["config"]["connections"] == 200
    assert output["config"]["quick"] is True


def test_fan_out_targets_mix_refused_and_blackholed() -> None:
    work = Workload("fan-out", "127.0.0.1", 1000, connections=20, refused_port=2, blackhole_port=3)
    ports = [port for _, port in work.targets]
    assert ports.count(2) == ports.count(3) == 2
    assert work.expected_bytes == 16 * 1024


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["nope"], "'nope'"),
        (["--models=trio_port,nope"], "'nope'"),
        (["--models=,"], "','"),
        (["--rounds=0"], "0"),
        (["--connections=-5"], "-5"),
        (["--concurrency=100000"], "100000"),
        (["--bulk-mib=0"], "0"),
        (["--deadline=0"], "0"),
        (["--host=10.0.0.1"], "'10.0.0.1'"),
        (["--plot=chart.pdf"], "'chart.pdf'"),
        (["--plot=/no/such/dir/chart.png"], "/no/such/dir"),
        (["--models=asyncio-raw+deadline", "bulk"], "bulk: trio_port, asyncio_port"),
        (["--targets=0"], "0"),
        (["--tls-concurrency=5000"], "5000"),
        (["--file-mib=-1"], "-1"),
    ],
)
def test_bad_options_exit_2_naming_the_value(
    args: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(args) == 2
    err = capsys.readouterr().err
    assert named in err, err


@pytest.mark.timeout(10)
def test_non_integer_option_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["--rounds=many"])
    assert exc.value.code == 2
    assert "'many'" in capsys.readouterr().err


@pytest.mark.timeout(10)
def test_plot_without_matplotlib_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "matplotlib" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert bench.main(["--plot", str(tmp_path / "bench.png")]) == 2
    assert install_hint("plot") in capsys.readouterr().err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_is_written(tmp_path: Path, suffix: str) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / f"bench{suffix}"
    done = _bench(
        "--quick", "--rounds=1", "--connections=50", "--bulk-mib=4",
        "--models=trio_port,blocking", "sequential", "bulk", f"--plot={plot}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "trio_port" in done.stdout  # the table
    assert "goal" not in done.stdout.lower()  # measurements, not the project's goals
    assert "--quick is a smoke run (1 round, small sizes)" in done.stdout
    assert plot.stat().st_size > 1000
    head = plot.read_bytes()[:200]
    assert head.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in plot.read_bytes()


def _json_run(*args: str, timeout: float = 50) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    done = _bench("--quick", "--json", "--rounds=1", *args, timeout=timeout)
    assert done.returncode == 0, done.stderr
    output: dict[str, Any] = json.loads(done.stdout)
    return output["config"], output["results"]


@pytest.mark.timeout(60)
def test_cost_compares_each_port_with_raw_code_of_its_framework() -> None:
    _, results = _json_run("--connections=100", "--concurrency=20", "cost")
    by_model = {r["model"]: r for r in results}
    assert {"anyio", "aiohappyeyeballs", "trio-streams", "asyncio-streams"} <= by_model.keys()
    assert by_model["trio_port"]["reference"] == "trio.socket"
    assert by_model["trio-streams"]["reference"] == "trio.socket"
    for model in ("asyncio_port", "anyio", "aiohappyeyeballs", "asyncio-streams"):
        assert by_model[model]["reference"] == "asyncio-raw"
    for raw in ("trio.socket", "asyncio-raw"):
        assert by_model[raw]["reference"] is None
    if "asyncio_port+uvloop" in by_model:  # uvloop installed: raw code on uvloop too
        assert by_model["asyncio_port+uvloop"]["reference"] == "asyncio-raw+uvloop"
        assert by_model["asyncio-raw+uvloop"]["reference"] is None
    ratio = by_model["trio_port"]["median_s"] / by_model["trio.socket"]["median_s"]
    assert by_model["trio_port"]["ratio_to_reference"] == pytest.approx(ratio)
    cpu = by_model["asyncio_port"]["cpu_s"] / by_model["asyncio-raw"]["cpu_s"]
    assert by_model["asyncio_port"]["cpu_ratio_to_reference"] == pytest.approx(cpu)
    assert all(r["bytes_sent"] == 100 * 1024 for r in results)


@pytest.mark.timeout(60)
def test_tls_runs_the_ports_and_the_frameworks_streams_over_tls() -> None:
    pytest.importorskip("trustme")
    config, results = _json_run("--connections=40", "--tls-concurrency=10", "tls")
    models = {r["model"] for r in results}
    assert {"trio_port", "asyncio_port", "trio-streams", "asyncio-streams"} <= models
    assert all(r["bytes_sent"] == 40 * 1024 for r in results)  # checked against the sink
    assert config["tls_concurrency"] == 10


@pytest.mark.timeout(60)
def test_scale_streams_targets_and_compares_peak_rss_with_a_smaller_run() -> None:
    config, results = _json_run("--targets=1000", "scale")
    assert config["base_targets"] == 10
    sizes = {(r["model"], r["connections"]) for r in results}
    assert sizes == {(m, n) for m in ("trio_port", "asyncio_port") for n in (10, 1000)}
    for r in results:
        assert r["bytes_sent"] == r["connections"] * 1024
        if r["connections"] == 1000:
            assert r["base_connections"] == 10
            assert r["rss_over_base_mib"] is not None
        else:
            assert r["rss_over_base_mib"] is None


@pytest.mark.timeout(60)
def test_file_times_whole_commands_against_the_smallest_client() -> None:
    have_nc = shutil.which("nc") is not None
    models = "trio_port,asyncio_port,python-sendfile" + (",nc" if have_nc else "")
    config, results = _json_run("--file-mib=2", "--rss-file-mib=3", f"--models={models}", "file")
    wanted = {"trio_port", "asyncio_port", "python-sendfile"} | ({"nc"} if have_nc else set())
    for size in (2, 3):
        mine = {r["model"]: r for r in results if r["file_mib"] == size}
        assert mine.keys() == wanted
        assert all(r["bytes_sent"] == size * 2**20 for r in mine.values())
        assert mine["trio_port"]["reference"] == "python-sendfile"
        assert mine["python-sendfile"]["reference"] is None
    assert ("nc" in config["not_installed"]) is not have_nc


@pytest.mark.timeout(30)
@pytest.mark.skipif(shutil.which("fincore") is None, reason="fincore (util-linux) is not installed")
def test_the_file_is_in_the_page_cache_before_any_model_sends_it(tmp_path: Path) -> None:
    # Otherwise the first model to send it pays for filling the page cache.
    from trio_sockets.bench import _process

    size = 8 * 2**20
    path = _process.make_file(tmp_path, size)
    assert path.stat().st_size == size
    done = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == size


def _result(model: str, reference: str | None) -> dict[str, Any]:
    return {
        "scenario": "cost", "model": model, "median_s": 0.3071, "min_s": 0.2811,
        "max_s": 0.3243, "mib_per_s": None, "per_connection_us": 102.3, "cpu_s": 0.3044,
        "peak_rss_mib": 37.0, "ratio": 1.16, "reference": reference,
        "ratio_to_reference": None if reference is None else 1.16,
        "cpu_ratio_to_reference": None if reference is None else 1.15,
        "rss_over_base_mib": None, "sink_cpu_share": 0.2,
    }  # fmt: skip


@pytest.mark.timeout(10)
@pytest.mark.parametrize("width", [80, 110])
def test_the_tables_fit_the_terminal_and_never_cut_a_model_name(
    width: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from trio_sockets.bench._report import render_table

    results = [
        _result("asyncio_port+uvloop", "asyncio-raw+uvloop"),
        _result("asyncio-raw+uvloop", None),
        _result("asyncio-raw+deadline", None),
    ]
    config = {
        "connections": 3000, "payload_bytes": 1024, "concurrency": 200, "bulk_mib": 256,
        "deadline": 1.0, "tls_concurrency": 100, "rounds": 7,
    }  # fmt: skip
    render_table(results, config, width=width)
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= width
    for model in ("asyncio_port+uvloop", "asyncio-raw+uvloop", "asyncio-raw+deadline"):
        assert f"│ {model} " in out  # whole, in its cell
    assert "…" not in out
    assert "0.307 s" in out and "102.3 us/conn" in out and "0.304 s" in out
    assert "asyncio_port+uvloop: 1.16 x asyncio-raw+uvloop (CPU 1.15 x)" in out
    assert ("0.281" in out and "37 MiB" in out) == (width >= 110)  # min, peak RSS
