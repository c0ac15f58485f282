"""``demo --code``: the Trio and asyncio source a scenario exercises, the differences marked.

The source is read from the installed port modules with :func:`inspect.getsource`, so the
listing follows the code as it is, not as it was when the demo was written. Lines that
differ between the twins (compared without their indentation) are marked with ``▌`` in the
gutter and a background, so that the marks survive a file or a pipe without colours.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Iterator, Sequence
from types import ModuleType
from typing import Final

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from .. import asyncio_port, trio_port

__all__ = [
    "SIDE_BY_SIDE_WIDTH",
    "Listing",
    "Listings",
    "Source",
    "differing",
    "folded",
    "source_of",
]

SIDE_BY_SIDE_WIDTH: Final = 160  # columns: narrower terminals get one listing above the other
_MARK: Final = "▌"
_STYLES: Final = {"trio": "cyan", "asyncio": "magenta"}
_DIFF_BACKGROUND: Final = "on grey23"
FOLD_AT: Final = 10  # equal lines in a row: fewer are shown whole
CONTEXT: Final = 3  # lines kept at each end of a folded run


class Source:
    """One function's source in one port: where it is, and its lines."""

    def __init__(self, module: ModuleType, name: str) -> None:
        self.port = "trio" if module is trio_port else "asyncio"
        self.name = name
        obj: object = module
        for part in name.split("."):
            obj = getattr(obj, part, None)
        self.found = obj is not None
        if obj is None:
            self.lines, self.first, self.path = [], 0, module.__name__
            return
        lines, self.first = inspect.getsourcelines(obj)  # type: ignore[arg-type]
        self.lines = [line.rstrip("\n") for line in _dedent(lines)]
        self.path = f"{module.__name__}:{self.first}"


def _dedent(lines: list[str]) -> list[str]:
    # A method's source keeps its class's indentation: take it off, as inspect.getsource
    # users do, so that the two listings line up on their own first column.
    margin = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    return [line[margin:] for line in lines]


def source_of(name: str) -> tuple[Source, Source]:
    """``name`` (``"send_to_many"``, ``"Connection.send_all"``) in the Trio and asyncio ports."""
    return Source(trio_port, name), Source(asyncio_port, name)


def differing(left: list[str], right: list[str]) -> tuple[set[int], set[int]]:
    """The indices of the lines that differ on each side, indentation aside."""
    ours: set[int] = set()
    theirs: set[int] = set()
    for tag, i1, i2, j1, j2 in _opcodes(left, right):
        if tag != "equal":
            ours.update(range(i1, i2))
            theirs.update(range(j1, j2))
    return ours, theirs


def _opcodes(left: list[str], right: list[str]) -> Sequence[tuple[str, int, int, int, int]]:
    matcher = difflib.SequenceMatcher(
        None, [line.strip() for line in left], [line.strip() for line in right], autojunk=False
    )
    return matcher.get_opcodes()


def folded(left: list[str], right: list[str]) -> tuple[set[int], set[int]]:
    """The indices of lines to fold away on each side: long runs the two sides share.

    A run of :data:`FOLD_AT` or more equal lines keeps :data:`CONTEXT` lines at each end.
    """
    ours: set[int] = set()
    theirs: set[int] = set()
    for tag, i1, i2, j1, j2 in _opcodes(left, right):
        if tag == "equal" and i2 - i1 >= FOLD_AT:
            ours.update(range(i1 + CONTEXT, i2 - CONTEXT))
            theirs.update(range(j1 + CONTEXT, j2 - CONTEXT))
    return ours, theirs


def _listing(source: Source, marked: set[int], hidden: set[int]) -> Table | Text:
    if not source.found:
        return Text(f"({source.name} is not in {source.path})", style="dim")
    code = "\n".join(source.lines)
    highlighted = Syntax(code, "python", theme="ansi_dark").highlight(code)
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", no_wrap=True, style="dim")
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")  # a long line wraps under itself, not under the gutter
    skipped = 0
    lines = highlighted.split("\n", allow_blank=True)[: len(source.lines)]  # no trailing blank
    for index, line in enumerate(lines):
        if index in hidden:
            skipped += 1
            continue
        if skipped:
            grid.add_row("⋮", "", Text(f"{skipped} lines as in the other port", style="dim"))
            skipped = 0
        differs = index in marked
        if differs:
            line.stylize(_DIFF_BACKGROUND)
        mark = Text(_MARK if differs else " ", style=f"bold {_STYLES[source.port]}")
        grid.add_row(str(source.first + index), mark, line)
    return grid


def _title(source: Source, count: int) -> Text:
    title = Text(f"{source.port}: ", style=f"bold {_STYLES[source.port]}")
    title.append(f"{source.name}  ", style="bold")
    title.append(f"{source.path}, {count} of {len(source.lines)} lines differ", style="dim")
    return title


class Listing:
    """A renderable: each named function in both ports, side by side or one above the other.

    Side by side when the console is at least :data:`SIDE_BY_SIDE_WIDTH` columns wide.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.pairs = [source_of(name) for name in names]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for trio_source, asyncio_source in self.pairs:
            yield from self._pair(trio_source, asyncio_source, options.max_width)

    def _pair(self, left: Source, right: Source, width: int) -> Iterator[Group | Table]:
        ours, theirs = differing(left.lines, right.lines)
        hide_ours, hide_theirs = folded(left.lines, right.lines)
        panels = [
            Group(_title(left, len(ours)), _listing(left, ours, hide_ours)),
            Group(_title(right, len(theirs)), _listing(right, theirs, hide_theirs)),
        ]
        if width >= SIDE_BY_SIDE_WIDTH:
            grid = Table.grid(padding=(0, 2), expand=True)
            grid.add_column(ratio=1)
            grid.add_column(ratio=1)
            grid.add_row(*panels)
            yield grid
        else:
            for panel in panels:
                yield panel
                yield Group(Text(""))


class Listings:
    """For ``demo --code``: called with a scenario's index, its listing; each function once.

    A function that an earlier scenario showed is named, not shown again.
    """

    def __init__(self, names: Sequence[Sequence[str]]) -> None:
        self.names = names
        self.shown: dict[str, int] = {}

    def __call__(self, index: int) -> RenderableType:
        names = self.names[index]
        told = [
            Text(f"{name}: shown above, under scenario {self.shown[name] + 1}", style="dim")
            for name in names
            if name in self.shown
        ]
        new = [name for name in names if name not in self.shown]
        self.shown.update((name, index) for name in new)
        return Group(*told, Listing(new))
