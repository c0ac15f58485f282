"""``demo --plot``: each scenario on one time axis, every workflow's phases and attempts.

One panel per scenario, all contestants on the same axis, so that the times compare. For
each port, one lane per workflow shows its phases (resolve, connect, tls, check, send,
reply) as the report timed them; its connection attempts follow, one lane each when there
were several (the race), or as a thin bar inside the workflow's lane when there was one.
A plain contestant keeps no report: its lane is the whole call. Lanes are named by what
the server on the other end does ("IPv6, blackholed"), never by port numbers.

matplotlib is an optional extra, imported only when a plot is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from . import LABELS, PORTS_ON_UVLOOP

__all__ = ["PLOT_SUFFIXES", "render_plot"]

PLOT_SUFFIXES: Final = (".png", ".svg")
PHASE_COLOURS: Final = {
    "resolve": "#9467bd",
    "connect": "#1f77b4",
    "tls": "#17becf",
    "check": "#bcbd22",
    "send": "#ff7f0e",
    "reply": "#8c564b",
}
OUTCOME_COLOURS: Final = {"connected": "tab:green", "failed": "tab:red", "cancelled": "tab:gray"}
CALL_COLOUR: Final = "#c7c7c7"
_LANE_INCHES: Final = 0.24
_PORTS: Final = frozenset({"trio", "asyncio", *PORTS_ON_UVLOOP})


class _Lanes:
    """The bars of one panel, lane by lane, top to bottom."""

    def __init__(self) -> None:
        self.labels: list[str] = []
        self.bars: list[tuple[int, float, float, str, float]] = []  # lane, x, w, colour, h

    def add(self, label: str) -> int:
        self.labels.append(label)
        return len(self.labels) - 1

    def bar(self, lane: int, start: float, end: float, colour: str, height: float = 0.7) -> None:
        self.bars.append((lane, start, end - start, colour, height))


def _role(row: dict[str, Any]) -> str:
    return str(row.get("role") or row.get("target") or "?")


def _lanes(scenario: dict[str, Any], contestants: Sequence[str]) -> _Lanes:
    lanes = _Lanes()
    for name in contestants:
        result = scenario["results"][name]
        label = LABELS.get(name, name)
        if name not in _PORTS or not result["workflows"]:
            lane = lanes.add(f"{label}: the call")
            lanes.bar(lane, 0.0, result["time_s"], CALL_COLOUR)
            continue
        for workflow in result["workflows"]:
            lane = lanes.add(f"{label}: {_role(workflow)}")
            at = workflow["started_s"]
            for phase, colour in PHASE_COLOURS.items():
                seconds = workflow["phases"].get(phase, 0.0)
                if seconds > 0:
                    lanes.bar(lane, at, at + seconds, colour)
                    at += seconds
            mine = [a for a in result["attempts"] if a["target"] == workflow["target"]]
            mine = [a for a in mine if workflow["started_s"] - 1e-3 <= a["started_s"]]
            mine = [a for a in mine if a["ended_s"] <= workflow["ended_s"] + 1e-3]
            for attempt in mine:
                colour = OUTCOME_COLOURS.get(attempt["outcome"], "k")
                if len(mine) == 1:  # one attempt: a thin bar under the phases
                    lanes.bar(lane, attempt["started_s"], attempt["ended_s"], colour, 0.2)
                else:
                    row = lanes.add(f"    attempt: {_role(attempt)}")
                    lanes.bar(row, attempt["started_s"], attempt["ended_s"], colour)
    return lanes


def render_plot(
    scenarios: Sequence[dict[str, Any]], contestants: Sequence[str], path: Path
) -> None:
    """Draw every scenario on its own time axis, to ``path`` (``.png`` or ``.svg``).

    Raises:
        ImportError: matplotlib is not installed.
        OSError: the file cannot be written.
    """
    from matplotlib.figure import Figure  # an optional extra: imported only here
    from matplotlib.patches import Patch

    panels = [_lanes(scenario, contestants) for scenario in scenarios]
    heights = [max(len(p.labels), 1) + 2 for p in panels]
    figure = Figure(figsize=(11, 1.0 + _LANE_INCHES * sum(heights)), layout="constrained")
    axes_list = figure.subplots(
        max(len(panels), 1), 1, squeeze=False, gridspec_kw={"height_ratios": heights or [1]}
    )[:, 0]
    for axes, scenario, lanes in zip(axes_list, scenarios, panels, strict=False):
        span = max((x + w for _, x, w, _, _ in lanes.bars), default=1.0)
        for lane, start, width, colour, height in lanes.bars:
            # An instant refusal or a microsecond check still shows as a sliver.
            shown = max(width, span / 400)
            offset = 0.25 if height < 0.5 else 0.0  # a lone attempt sits under the phases
            axes.barh(lane + offset, shown, left=start, height=height, color=colour)
        axes.set_yticks(range(len(lanes.labels)), lanes.labels, fontsize=7)
        axes.set_ylim(len(lanes.labels) - 0.5, -0.5)
        axes.set_xlim(0, span * 1.02)
        axes.set_title(f"{scenario['name']}: {scenario['title']}", fontsize=9, loc="left")
        axes.tick_params(axis="x", labelsize=7)
        axes.grid(axis="x", alpha=0.3)
    axes_list[-1].set_xlabel("seconds since the scenario started", fontsize=8)
    handles = [Patch(color=c, label=phase) for phase, c in PHASE_COLOURS.items()]
    handles += [Patch(color=c, label=f"attempt {o}") for o, c in OUTCOME_COLOURS.items()]
    handles.append(Patch(color=CALL_COLOUR, label="a plain contestant's whole call"))
    figure.legend(handles=handles, loc="outside lower center", ncols=5, fontsize=7)
    figure.suptitle(
        "Each workflow's phases and attempts, one time axis per scenario",
        fontsize=11,
        x=0.02,
        ha="left",
    )
    figure.savefig(path)
