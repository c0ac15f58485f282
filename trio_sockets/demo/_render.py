"""Rendering for the command line: the demo's side-by-side table, its plot, a send report.

Nothing here touches the network; it turns the JSON-ready dicts of
:mod:`trio_sockets.demo` and :class:`SendReport` into text or a picture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from .._addresses import format_address
from .._reports import SendReport
from . import LABELS
from ._plot import PLOT_SUFFIXES, render_plot

__all__ = [
    "PLOT_SUFFIXES",
    "format_bytes",
    "print_demo",
    "render_plot",
    "report_text",
    "scenario_table",
]

_MARKS: Final = {"connected": "✓", "failed": "✗", "cancelled": "⊘"}
_STYLES: Final = {"trio": "cyan", "asyncio": "magenta", "asyncio+uvloop": "magenta"}
CAPTION: Final = (
    "Four contestants meet each scenario: the two ports, asyncio as tutorials write it, "
    "and threads. Measured, not asserted: time, bytes sent, attempts (✓ connected ✗ failed "
    "⊘ cancelled, as the ports report them; for the others, the connects seen), and what "
    "was left running when the call returned."
)


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
    counts = [f"{n} {kind if n != 1 else kind[:-1]}" for kind, n in left.items() if n]
    # One count a line: the table fits 80 columns, and a count stays with its word.
    return Text(",\n".join(counts), style="bold red")


def _tries_cell(result: dict[str, Any]) -> str:
    if result["attempts"]:
        return _attempts_cell(result["attempts"])
    # The plain contestants keep no record: the connects the demo saw instead.
    return f"{result['connects']} seen" if result["connects"] else "—"


def scenario_table(scenario: dict[str, Any], contestants: Sequence[str]) -> Table:
    """One scenario, one row per contestant: what each measurably did and left behind."""
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False)
    # Every header stays whole at 80 columns. Only the contestant wraps, at its comma
    # ("asyncio,/unstructured"), wide enough that no word is cut; a count cut from its
    # word ("5/cancelled") read badly, so the outcome and what was left stay whole.
    table.add_column("contestant", min_width=len("unstructured"))
    table.add_column("outcome", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("sent", justify="right", no_wrap=True)
    table.add_column("tries", no_wrap=True)
    table.add_column("left", no_wrap=True)
    for name in contestants:
        result = scenario["results"][name]
        colour = "green" if result["flaw"] is None else "bold red"
        table.add_row(
            Text(LABELS.get(name, name), style=_STYLES.get(name, "")),
            Text(result["outcome"], style=colour),
            f"{result['time_s']:.3f} s",
            format_bytes(result["bytes_sent"]),
            _tries_cell(result),
            _left_cell(result["left_behind"]),
        )
    return table


def _notes(scenario: dict[str, Any], contestants: Sequence[str]) -> Table:
    """One line per contestant: what went worse and why, or what it did well."""
    notes = Table.grid(padding=(0, 1))
    notes.add_column(no_wrap=True)
    notes.add_column()
    for name in contestants:
        result = scenario["results"][name]
        line = Text(f"{LABELS.get(name, name)}: ", style="bold")
        if result["flaw"] is None:
            notes.add_row(Text("✓", style="green"), line.append(result["detail"], style="dim"))
        else:
            notes.add_row(Text("✗", style="bold red"), line.append(result["flaw"], style=""))
    return notes


def print_demo(
    console: Console,
    scenarios: Sequence[dict[str, Any]],
    contestants: Sequence[str],
    code: Callable[[int], RenderableType] | None = None,
) -> None:
    """Each scenario: its title and lesson, the table, and one line per contestant.

    ``code``, if given, is called with each scenario's index for its source listing
    (``demo --code``).
    """
    console.print(Text("trio-sockets demo: the same trouble, four ways", style="bold"))
    console.print(Text(CAPTION, style="dim"))
    for index, scenario in enumerate(scenarios):
        console.print()
        console.rule(Text(f"{scenario['name']}: {scenario['title']}", style="bold"), align="left")
        console.print(Text(scenario["lesson"]))
        console.print()
        console.print(scenario_table(scenario, contestants))
        console.print(_notes(scenario, contestants))
        if code is not None:
            console.print()
            console.print(code(index))


def report_text(report: SendReport) -> str:
    """A readable, multi-line account of one :class:`SendReport`."""
    where = "" if report.address is None else f" ({format_address(report.address)})"
    lines = [f"{report.status}: {report.target}{where}"]
    # The total covers the whole workflow, the reply included: not the sending alone.
    covers = ", reply included" if report.reply is not None else ""
    lines.append(f"  sent {report.bytes_sent} bytes; total {report.total_s:.3f} s{covers}")
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
