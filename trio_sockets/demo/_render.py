"""Rendering for the command line: the demo's side-by-side table, its plot, a send report.

Nothing here touches the network; it turns the JSON-ready dicts of
:mod:`trio_sockets.demo` and :class:`SendReport` into text or a picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._addresses import format_address
from .._reports import SendReport

__all__ = ["PLOT_SUFFIXES", "demo_table", "format_bytes", "render_plot", "report_text"]

PLOT_SUFFIXES: Final = (".png", ".svg")
_MARKS: Final = {"connected": "✓", "failed": "✗", "cancelled": "⊘"}
_COLOURS: Final = {"connected": "tab:green", "failed": "tab:red", "cancelled": "tab:gray"}


def format_bytes(count: int | None) -> str:
    if count is None:
        return "—"
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def _attempts_cell(attempts: Sequence[dict[str, Any]]) -> str:
    if not attempts:
        return "—"
    outcomes = [attempt["outcome"] for attempt in attempts]
    return " ".join(f"{mark}{outcomes.count(k)}" for k, mark in _MARKS.items() if k in outcomes)


def _left_cell(left: dict[str, int]) -> Text:
    if not any(left.values()):
        return Text("none", style="green")
    return Text(f"{left['fds']} fd, {left['tasks']} task", style="bold red")


def demo_table(scenarios: Sequence[dict[str, Any]], ports: Sequence[str]) -> Table:
    """The side-by-side table: one row per scenario, five columns per port."""
    table = Table(title="trio-sockets demo: the same trouble, two concurrency models")
    table.add_column("Scenario", style="bold", no_wrap=True)
    for port in ports:
        style = "cyan" if port == "trio" else "magenta"
        table.add_column(f"{port}\noutcome", header_style=style)
        # Rich has no column groups: the port's name heads the first column of its five.
        table.add_column("\ntime", justify="right", header_style=style, no_wrap=True)
        table.add_column("\nsent", justify="right", header_style=style, no_wrap=True)
        table.add_column("\ntries", header_style=style, no_wrap=True)
        table.add_column("\nleft", header_style=style, no_wrap=True)
    for scenario in scenarios:
        cells: list[str | Text] = [scenario["name"]]
        for port in ports:
            result = scenario["results"][port]
            colour = "green" if result["as_expected"] else "bold red"
            cells += [
                Text(result["outcome"], style=colour),
                f"{result['time_s']:.3f} s",
                format_bytes(result["bytes_sent"]),
                _attempts_cell(result["attempts"]),
                _left_cell(result["left_behind"]),
            ]
        table.add_row(*cells)
    table.caption = "tries: ✓ connected  ✗ failed  ⊘ cancelled; left: fds and tasks left behind"
    return table


def print_demo(console: Console, scenarios: Sequence[dict[str, Any]], ports: Sequence[str]) -> None:
    """The table, then each scenario's lesson and what each port saw."""
    console.print(demo_table(scenarios, ports))
    for scenario in scenarios:
        console.print()
        console.print(Text(f"{scenario['name']}: {scenario['title']}", style="bold"))
        console.print(Text(scenario["lesson"]), soft_wrap=False)
        for port in ports:
            console.print(Text(f"  {port}: {scenario['results'][port]['detail']}", style="dim"))


def render_plot(scenarios: Sequence[dict[str, Any]], ports: Sequence[str], path: Path) -> None:
    """Draw each port's connection attempts on a timeline, one panel per scenario.

    Raises:
        ImportError: matplotlib is not installed.
    """
    from matplotlib.figure import Figure  # an optional extra: imported only here

    shown = [s for s in scenarios if any(s["results"][p]["attempts"] for p in ports)]
    lanes = [sum(len(s["results"][p]["attempts"]) for p in ports) for s in shown]
    figure = Figure(figsize=(10, 1.2 + 0.32 * sum(lanes) + 0.6 * len(shown)), layout="constrained")
    axes_list = figure.subplots(max(len(shown), 1), 1, squeeze=False)[:, 0]
    for axes, scenario in zip(axes_list, shown, strict=False):
        labels: list[str] = []
        span = max(a["ended_s"] for p in ports for a in scenario["results"][p]["attempts"])
        for port in ports:
            for attempt in scenario["results"][port]["attempts"]:
                y = len(labels)
                start, end = attempt["started_s"], attempt["ended_s"]
                width = max(end - start, span / 150)  # an instant refusal still shows
                axes.barh(y, width, left=start, color=_COLOURS.get(attempt["outcome"], "k"))
                labels.append(f"{port} {format_address(attempt['address'])}")
        axes.set_yticks(range(len(labels)), labels, fontsize=8)
        axes.invert_yaxis()
        axes.set_xlim(left=0)
        axes.set_title(f"{scenario['name']}: {scenario['title']}", fontsize=10, loc="left")
        axes.set_xlabel("seconds since the scenario started", fontsize=8)
        axes.grid(axis="x", alpha=0.3)
    if not shown:
        axes_list[0].set_title("no connection attempts to show")
    handles = [
        _patch(colour, outcome) for outcome, colour in _COLOURS.items()
    ]  # one legend for all panels
    figure.legend(handles=handles, loc="outside upper right", ncols=3, fontsize=8)
    figure.suptitle(
        "Connection attempts: Trio and asyncio side by side", fontsize=11, x=0.02, ha="left"
    )
    figure.savefig(path)


def _patch(colour: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=colour, label=label)


def report_text(report: SendReport) -> str:
    """A readable, multi-line account of one :class:`SendReport`."""
    where = "" if report.address is None else f" ({format_address(report.address)})"
    lines = [f"{report.status}: {report.target}{where}"]
    lines.append(f"  sent {report.bytes_sent} bytes in {report.total_s:.3f} s")
    phases = ("resolve", "connect", "check", "send", "reply")
    lines.append("  phases: " + ", ".join(f"{p} {getattr(report, p + '_s'):.3f} s" for p in phases))
    for attempt in report.attempts:
        text = format_address(attempt.address)
        span = f"{attempt.started_s:.3f}-{attempt.ended_s:.3f} s"
        error = f": {attempt.error}" if attempt.error else ""
        lines.append(f"  attempt {text} {attempt.outcome} ({span}){error}")
    if report.error:
        lines.append(f"  error: {report.error}")
    if report.reply is not None:
        reply = report.reply.decode("utf-8", errors="replace")
        lines.append(f"  reply ({len(report.reply)} bytes): {reply!r}")
    return "\n".join(lines)
