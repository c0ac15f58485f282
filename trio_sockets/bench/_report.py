"""The numbers of ``trio-sockets bench``: statistics, the table and the chart.

The benchmark reports measurements only: numbers, and how far apart the models are; never a
verdict on whether a number is good enough.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from ._models import SCENARIOS, Measurement, Workload

__all__ = ["render_table", "summarize", "write_plot"]

MIB: Final = 2**20


def summarize(runs: Sequence[tuple[Workload, Measurement, float]]) -> list[dict[str, Any]]:
    """One result per (scenario, model): median, min, max, cost, RSS, ratio to the fastest."""
    grouped: dict[tuple[str, str], list[tuple[Workload, Measurement, float]]] = {}
    for item in runs:
        grouped.setdefault((item[1].scenario, item[1].model), []).append(item)
    results: list[dict[str, Any]] = []
    for (scenario, model), items in grouped.items():
        work = items[0][0]
        times = [m.elapsed_s for _, m, _ in items]
        median = statistics.median(times)
        result: dict[str, Any] = {
            "scenario": scenario,
            "model": model,
            "median_s": median,
            "min_s": min(times),
            "max_s": max(times),
            "runs": len(times),
            "connections": len(work.targets),
            "bytes_sent": items[0][1].bytes_sent,
            "per_connection_us": None,
            "mib_per_s": None,
            "peak_rss_mib": max(m.max_rss_kib for _, m, _ in items) / 1024,
            # The sink's CPU seconds per second of the run: near 1.0 would mean that the
            # sink, not the model, set the pace.
            "sink_cpu_share": statistics.median(cpu / m.elapsed_s for _, m, cpu in items),
        }
        if scenario == "bulk":
            result["mib_per_s"] = work.bulk_bytes / MIB / median
        else:
            result["per_connection_us"] = median / len(work.targets) * 1e6
        results.append(result)
    for scenario in SCENARIOS:
        mine = [r for r in results if r["scenario"] == scenario]
        fastest = min((r["median_s"] for r in mine), default=0.0)
        for r in mine:
            r["ratio"] = r["median_s"] / fastest
    order = {name: i for i, name in enumerate(SCENARIOS)}
    results.sort(key=lambda r: (order[r["scenario"]], r["median_s"]))
    return results


def render_table(results: Sequence[dict[str, Any]], config: dict[str, Any]) -> None:
    """Print the results as a table on stdout, with a warning where a number is suspect."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 120)
    table = Table(
        title=(
            f"trio-sockets bench: {config['connections']} connections of "
            f"{config['payload_bytes']} B at concurrency {config['concurrency']}, bulk "
            f"{config['bulk_mib']} MiB, fan-out deadline {config['deadline']:g} s; "
            f"median of {config['rounds']} rounds"
        ),
        title_justify="left",
    )
    for name in ("scenario", "model", "median", "min", "max", "cost", "peak RSS", "x fastest"):
        table.add_column(name, justify="left" if name in ("scenario", "model") else "right")
    previous = None
    for r in results:
        if previous is not None and r["scenario"] != previous:
            table.add_section()
        cost = (
            f"{r['mib_per_s']:,.0f} MiB/s"
            if r["mib_per_s"] is not None
            else f"{r['per_connection_us']:,.1f} us/conn"
        )
        table.add_row(
            r["scenario"] if r["scenario"] != previous else "",
            r["model"],
            f"{r['median_s']:.3f} s",
            f"{r['min_s']:.3f}",
            f"{r['max_s']:.3f}",
            cost,
            f"{r['peak_rss_mib']:.0f} MiB",
            f"{r['ratio']:.2f}",
        )
        previous = r["scenario"]
    console.print(table)
    busy = [r for r in results if r["sink_cpu_share"] > 0.8]
    for r in busy:
        console.print(
            f"warning: the sink was busy {r['sink_cpu_share']:.0%} of {r['model']} on "
            f"{r['scenario']}: it may have set the pace",
            highlight=False,
        )


def write_plot(results: Sequence[dict[str, Any]], path: Path, config: dict[str, Any]) -> None:
    """One panel per scenario: each model's median (bar) with its min..max range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = [s for s in SCENARIOS if any(r["scenario"] == s for r in results)]
    fig, axes = plt.subplots(
        len(scenarios), 1, figsize=(8, 1.2 + 2.1 * len(scenarios)), squeeze=False
    )
    for ax, scenario in zip(axes[:, 0], scenarios, strict=True):
        mine = [r for r in results if r["scenario"] == scenario][::-1]  # fastest on top
        names = [r["model"] for r in mine]
        medians = [r["median_s"] for r in mine]
        low = [r["median_s"] - r["min_s"] for r in mine]
        high = [r["max_s"] - r["median_s"] for r in mine]
        colours = [
            "tab:blue" if r["model"].startswith("trio_sockets") else "tab:gray" for r in mine
        ]
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
