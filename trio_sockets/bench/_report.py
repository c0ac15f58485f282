"""The numbers of ``trio-sockets bench``: statistics, the table and the chart.

The benchmark reports measurements only: numbers, and how far apart the models are; never a
verdict on whether a number is good enough.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ._workload import ALL_SCENARIOS, Measurement, Workload, reference

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["render_table", "summarize", "write_plot"]

MIB: Final = 2**20
# The models of this project, drawn in colour on the plot (the peers are grey).
OURS: Final = ("trio_port", "asyncio_port")


def summarize(runs: Sequence[tuple[Workload, Measurement, float]]) -> list[dict[str, Any]]:
    """One result per (scenario, size, model): median, min, max, cost, RSS, and ratios.

    ``ratio`` is to the fastest model of the same scenario and size; ``reference`` and
    ``ratio_to_reference`` compare a model with the one its scenario holds it against
    (cost: raw code of its framework; file: the smallest Python client); a scale run
    gives ``rss_over_base_mib``, its peak RSS over the same model's run with fewer targets.
    """
    grouped: dict[tuple[str, int, int, str], list[tuple[Workload, Measurement, float]]] = {}
    for item in runs:
        work, measurement = item[0], item[1]
        key = (measurement.scenario, work.target_count, work.bulk_bytes, measurement.model)
        grouped.setdefault(key, []).append(item)
    results: list[dict[str, Any]] = []
    for (scenario, count, size, model), items in grouped.items():
        times = [m.elapsed_s for _, m, _ in items]
        median = statistics.median(times)
        cpu = statistics.median(m.cpu_s for _, m, _ in items)
        result: dict[str, Any] = {
            "scenario": scenario,
            "model": model,
            "median_s": median,
            "min_s": min(times),
            "max_s": max(times),
            "runs": len(times),
            "connections": count,
            "bytes_sent": items[0][1].bytes_sent,
            "per_connection_us": None,
            "mib_per_s": None,
            "peak_rss_mib": max(m.max_rss_kib for _, m, _ in items) / 1024,
            # The sink's CPU seconds per second of the run: near 1.0 would mean that the
            # sink, not the model, set the pace.
            "sink_cpu_share": statistics.median(cpu / m.elapsed_s for _, m, cpu in items),
            "cpu_s": cpu,
            "reference": None,
            "ratio_to_reference": None,
            "cpu_ratio_to_reference": None,
            "rss_over_base_mib": None,
        }
        if scenario in ("bulk", "file"):
            result["mib_per_s"] = size / MIB / median
            result["file_mib"] = size / MIB if scenario == "file" else None
        else:
            result["per_connection_us"] = median / count * 1e6
        results.append(result)
    _compare(results)
    order = {name: i for i, name in enumerate(ALL_SCENARIOS)}
    results.sort(
        key=lambda r: (order[r["scenario"]], r["connections"], r["bytes_sent"], r["median_s"])
    )
    return results


def _compare(results: list[dict[str, Any]]) -> None:
    """Fill in each result's ratios, to its group's fastest and to its reference."""
    groups: dict[tuple[str, int, int], dict[str, dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["scenario"], r["connections"], r["bytes_sent"]), {})[r["model"]] = r
    for (scenario, _, _), mine in groups.items():
        fastest = min(r["median_s"] for r in mine.values())
        for model, r in mine.items():
            r["ratio"] = r["median_s"] / fastest
            ref = reference(scenario, model)
            if ref is not None and ref != model and ref in mine:
                r["reference"] = ref
                r["ratio_to_reference"] = r["median_s"] / mine[ref]["median_s"]
                if mine[ref]["cpu_s"] > 0:
                    r["cpu_ratio_to_reference"] = r["cpu_s"] / mine[ref]["cpu_s"]
    for r in results:
        if r["scenario"] != "scale":
            continue
        smaller = [
            other
            for other in results
            if other["scenario"] == "scale"
            and other["model"] == r["model"]
            and other["connections"] < r["connections"]
        ]
        if smaller:
            base = min(smaller, key=lambda other: other["connections"])
            r["rss_over_base_mib"] = r["peak_rss_mib"] - base["peak_rss_mib"]
            r["base_connections"] = base["connections"]


def render_table(
    results: Sequence[dict[str, Any]], config: dict[str, Any], *, width: int | None = None
) -> None:
    """Print the results on stdout: a table per scenario, then how each model compares.

    A terminal narrower than :data:`FULL` columns gets the short tables (model, median,
    cost, CPU, x fastest), so that no number is cut short; ``--json`` has every column.
    A warning follows where a number is suspect. ``width``: the terminal's, or
    :data:`FULL` when stdout is not a terminal.
    """
    from rich.console import Console

    if width is None and not sys.stdout.isatty():
        width = FULL
    console = Console(file=sys.stdout, width=width)
    full = console.width >= FULL
    console.print(
        f"trio-sockets bench: {config['connections']} connections of "
        f"{config['payload_bytes']} B at concurrency {config['concurrency']}, bulk "
        f"{config['bulk_mib']} MiB, fan-out deadline {config['deadline']:g} s; "
        f"tls concurrency {config['tls_concurrency']}; median of {config['rounds']} "
        "rounds (scale and the larger file: one run)",
        style="italic",
        highlight=False,
    )
    for label, group in _by_label(results):
        console.print(_table(group, label, full=full))
        for r in group:
            compared = _compared(r)
            if compared:
                console.print(f"  {r['model']}: {compared}", highlight=False)
    if not full:
        console.print(
            f"(min, max and peak RSS: in a terminal of {FULL} columns or more, or with --json)",
            highlight=False,
        )
    busy = [r for r in results if r["sink_cpu_share"] > 0.8]
    for r in busy:
        console.print(
            f"warning: the sink was busy {r['sink_cpu_share']:.0%} of {r['model']} on "
            f"{r['scenario']}: it may have set the pace",
            highlight=False,
        )


# Columns from which the tables have every column.
FULL: Final = 110


def _table(group: Sequence[dict[str, Any]], label: str, *, full: bool) -> Table:
    from rich.table import Table

    table = Table(title=label, title_justify="left", title_style="bold")
    names = ("median", "min", "max", "cost", "CPU", "peak RSS", "x fastest")
    shown = names if full else ("median", "cost", "CPU", "x fastest")
    # Nothing wraps or is cut short: "asyncio-raw+..." would name two models.
    table.add_column("model", no_wrap=True)
    for name in shown:
        table.add_column(name, justify="right", no_wrap=True)
    for r in group:
        cells = {
            "median": f"{r['median_s']:.3f} s",
            "min": f"{r['min_s']:.3f}",
            "max": f"{r['max_s']:.3f}",
            "cost": _cost(r),
            "CPU": f"{r['cpu_s']:.3f} s",
            "peak RSS": f"{r['peak_rss_mib']:.0f} MiB",
            "x fastest": f"{r['ratio']:.2f}",
        }
        table.add_row(r["model"], *(cells[name] for name in shown))
    return table


def _by_label(results: Sequence[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(_label(r), []).append(r)
    return list(groups.items())


def _cost(r: dict[str, Any]) -> str:
    if r["mib_per_s"] is not None:
        return f"{r['mib_per_s']:,.0f} MiB/s"
    return f"{r['per_connection_us']:,.1f} us/conn"


def _label(r: dict[str, Any]) -> str:
    if r["scenario"] == "file":
        return f"file {r['file_mib']:g} MiB"
    if r["scenario"] == "scale":
        return f"scale {r['connections']:,}"
    return str(r["scenario"])


def _compared(r: dict[str, Any]) -> str:
    if r["ratio_to_reference"] is not None:
        cpu = r["cpu_ratio_to_reference"]
        return f"{r['ratio_to_reference']:.2f} x {r['reference']}" + (
            f" (CPU {cpu:.2f} x)" if cpu is not None else ""
        )
    if r["rss_over_base_mib"] is not None:
        return f"RSS {r['rss_over_base_mib']:+.1f} MiB over {r['base_connections']:,}"
    return ""


def write_plot(results: Sequence[dict[str, Any]], path: Path, config: dict[str, Any]) -> None:
    """One panel per scenario: each model's median (bar) with its min..max range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(_label(r) for r in results))
    fig, axes = plt.subplots(
        len(scenarios), 1, figsize=(8, 1.2 + 2.1 * len(scenarios)), squeeze=False
    )
    for ax, scenario in zip(axes[:, 0], scenarios, strict=True):
        mine = [r for r in results if _label(r) == scenario][::-1]  # fastest on top
        names = [r["model"] for r in mine]
        medians = [r["median_s"] for r in mine]
        low = [r["median_s"] - r["min_s"] for r in mine]
        high = [r["max_s"] - r["median_s"] for r in mine]
        colours = ["tab:blue" if r["model"].startswith(OURS) else "tab:gray" for r in mine]
        ax.barh(names, medians, xerr=[low, high], color=colours, capsize=3)
        for y, r in enumerate(mine):
            ax.text(r["max_s"], y, f"  {r['ratio']:.2f}x", va="center", fontsize=8)
        ax.set_title(scenario, loc="left", fontsize=10)
        ax.set_xlabel("seconds per run (median, min..max); label: x fastest", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.set_xlim(0, max(r["max_s"] for r in mine) * 1.2)
    fig.suptitle(
        f"trio-sockets bench on {config['cpu_count']} cores: {config['connections']} x "
        f"{config['payload_bytes']} B at concurrency {config['concurrency']}, "
        f"bulk {config['bulk_mib']} MiB",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
