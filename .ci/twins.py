"""Check that every line where the two ports differ differs for a stated reason.

The idea is httpcore's ``scripts/unasync.py --check``, adapted to hand-written twins.
httpcore generates its sync code from its async code with a table of substitutions, so
its check is "every line is the async line after the table". Our ports are written by
hand, because Trio and asyncio differ in meaning, not in spelling; so a differing stretch
of lines (a hunk of ``diff trio_port.py asyncio_port.py``) passes when one of these holds:

1. **A known substitution**: each Trio line, after the table below, is the asyncio line.
   The table itself documents the mechanical differences between the two frameworks.
2. **A reason**: the hunk, or the comment block just above it, carries a ``# trio:`` or
   ``# asyncio:`` comment saying what the other model does instead.
3. **Blank lines only**, or the hunk lies in the module docstring or the import block,
   which say what each module is and what it uses.

Anything else is a line that differs with no reason given, and the check fails on it,
printing the hunk. Run it with ``python .ci/twins.py`` (exit 1 on a failure) or import
``check()``.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRIO = ROOT / "trio_sockets" / "trio_port.py"
ASYNCIO = ROOT / "trio_sockets" / "asyncio_port.py"

# (Trio pattern, asyncio replacement): regular expressions applied in order to a Trio line.
SUBSTITUTIONS: list[tuple[str, str]] = [
    # The frameworks' own names for the same thing.
    (r"\btrio\.Event\b", "asyncio.Event"),
    (r"\btrio\.Cancelled\b", "asyncio.CancelledError"),
    (r"\btrio\.Lock\b", "asyncio.Lock"),
    (r"\btrio\.CapacityLimiter\b", "asyncio.Semaphore"),
    (r"\btrio\.sleep\b", "asyncio.sleep"),
    (r"\btrio\.socket\.getaddrinfo\(", "asyncio.get_running_loop().getaddrinfo("),
    (r"\btrio\.socket\.socket\(", "_stdlib_socket.socket("),
    (r"\btrio\.socket\.SocketType\b", "_stdlib_socket.socket"),
    (r"\btrio\.lowlevel\.checkpoint\(\)", "asyncio.sleep(0)"),
    (r"\btrio\.open_nursery\(\)", "asyncio.TaskGroup()"),
    (r"\bnursery\.start_soon\((\w+), ", r"tg.create_task(\1("),
    (r"\bnursery\.start_soon\((\w+)\)", r"tg.create_task(\1())"),
    (r"\bas nursery\b", "as tg"),
    (r"\btrio\.Nursery\b", "asyncio.TaskGroup"),
    (r"\bsend\.send\(", "queue.put("),
    (r"\btrio\.MemorySendChannel\b", "asyncio.Queue"),
    (r"\btrio\.MemoryReceiveChannel\b", "asyncio.Queue"),
    # The same words in comments and docstrings.
    (r"\bnurseries\b", "task groups"),
    (r"\bnursery\b", "task group"),
    (r"\bcancel scope\b", "timeout"),
    (r"\btrio\.Cancelled\b", "asyncio.CancelledError"),
    (r"\bTrio\b", "asyncio"),
]

REASON = re.compile(r"#.*\b(trio|asyncio):")


# Prose may name asyncio's classes where code names its variables.
PROSE: list[tuple[str, str]] = [(r"\bnursery\b", "TaskGroup"), (r"\bnurseries\b", "TaskGroups")]


def _translations(line: str) -> set[str]:
    """The asyncio lines the table allows for one Trio line."""
    results = set()
    for table in (SUBSTITUTIONS, PROSE + SUBSTITUTIONS):
        translated = line
        for pattern, replacement in table:
            translated = re.sub(pattern, replacement, translated)
        results.add(translated.strip())
    return results


def _preamble_end(lines: Sequence[str]) -> int:
    """Index of the first line after the module docstring and the import block."""
    for i, line in enumerate(lines):
        if line.startswith("__all__"):
            return i
    return 0


def _comment_block_above(lines: Sequence[str], start: int) -> list[str]:
    block: list[str] = []
    i = start - 1
    while i >= 0 and lines[i].lstrip().startswith("#"):
        block.append(lines[i])
        i -= 1
    return block


def _sanctioned(
    trio: list[str], asyncio: list[str], t0: int, a0: int, ts: list[str], as_: list[str]
) -> bool:
    if all(not line.strip() for line in trio + asyncio):
        return True
    if len(trio) == len(asyncio) and all(
        a.strip() in _translations(t) for t, a in zip(trio, asyncio, strict=True)
    ):
        return True
    context = trio + asyncio + _comment_block_above(ts, t0) + _comment_block_above(as_, a0)
    return any(REASON.search(line) for line in context)


def check(trio_text: str, asyncio_text: str) -> list[str]:
    """Return one message per hunk that differs with no reason; empty when all is well."""
    ts = trio_text.splitlines()
    as_ = asyncio_text.splitlines()
    skip_t, skip_a = _preamble_end(ts), _preamble_end(as_)
    problems: list[str] = []
    matcher = difflib.SequenceMatcher(a=ts, b=as_, autojunk=False)
    for tag, t0, t1, a0, a1 in matcher.get_opcodes():
        if tag == "equal" or (t1 <= skip_t and a1 <= skip_a):
            continue
        trio, asyncio = ts[t0:t1], as_[a0:a1]
        if not _sanctioned(trio, asyncio, t0, a0, ts, as_):
            shown = [f"  trio:{t0 + 1 + i}: {line}" for i, line in enumerate(trio)]
            shown += [f"  asyncio:{a0 + 1 + i}: {line}" for i, line in enumerate(asyncio)]
            problems.append("\n".join(["a difference with no reason:", *shown]))
    return problems


def count_differing_lines(trio_text: str, asyncio_text: str) -> int:
    diff = difflib.unified_diff(trio_text.splitlines(), asyncio_text.splitlines(), n=0)
    return sum(1 for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---")))


def main() -> int:
    trio_text = TRIO.read_text(encoding="utf-8")
    asyncio_text = ASYNCIO.read_text(encoding="utf-8")
    problems = check(trio_text, asyncio_text)
    for problem in problems:
        print(problem, file=sys.stderr)
    n = count_differing_lines(trio_text, asyncio_text)
    if problems:
        print(f"twins: {len(problems)} differing hunk(s) with no reason", file=sys.stderr)
        return 1
    print(f"twins: the ports differ in {n} lines, each a known substitution or explained")
    return 0


if __name__ == "__main__":
    sys.exit(main())
