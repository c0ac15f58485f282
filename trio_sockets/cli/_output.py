"""What ``trio-sockets send`` prints: a report that fits 80 columns, and the reply.

The text is for people: each error is said once, addresses are written by the one
formatter (``[::1]:443`` for IPv6), and a reply is shown as a short, safe preview, its
size, and why reading it stopped. The whole reply goes to a file (``--output``) or raw
to standard output (``--raw``), byte for byte. ``--json`` is for programs.
"""

from __future__ import annotations

import textwrap
import unicodedata
from typing import Final

from .._addresses import format_address
from .._reports import SendReport

__all__ = ["WIDTH", "report_text"]

WIDTH: Final = 80  # columns: the text fits a default terminal
PREVIEW_LINES: Final = 12  # lines of a text reply shown
PREVIEW_BINARY: Final = 48  # bytes of a binary reply shown, escaped
_PHASES: Final = ("resolve", "connect", "tls", "check", "send", "reply")
_WHY_STOPPED: Final = {
    "eof": "the peer closed",
    "until": "--reply-until matched",
    "idle": "idle timeout",
}


def _wrap(text: str, indent: str = "  ") -> list[str]:
    # Long error texts (an OS message that quotes the address) wrap under their line.
    return textwrap.wrap(
        text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ", break_on_hyphens=False
    ) or [indent]


def report_text(report: SendReport, *, max_reply: int, reply_to: str | None = None) -> str:
    """A readable account of one :class:`SendReport`, at most :data:`WIDTH` columns wide.

    Args:
        report: the report to show.
        max_reply: the reply cap the send used, to say when a reply was cut.
        reply_to: where the whole reply was written (a file name, or "standard
            output"); the text then gives its size without a preview.
    """
    where = "" if report.address is None else f" ({format_address(report.address)})"
    lines = [f"{report.status}: {report.target}{where}"]
    # The total covers the whole workflow, the reply included: not the sending alone.
    covers = ", reply included" if report.reply is not None else ""
    lines.append(f"  sent {report.bytes_sent} bytes; total {report.total_s:.3f} s{covers}")
    shown: tuple[str, ...] = _PHASES if report.reply is not None else _PHASES[:-1]
    if report.tls_version is None and not report.tls_s:
        shown = tuple(p for p in shown if p != "tls")
    else:
        lines.append(
            f"  tls: {report.tls_version}, {report.tls_cipher}"
            if report.tls_version
            else "  tls: no session (the handshake did not complete)"
        )
    times = ", ".join(f"{p} {getattr(report, p + '_s'):.3f}" for p in shown)
    lines.extend(_wrap(f"time: {times} s"))
    for attempt in report.attempts:
        span = f"{attempt.started_s:.3f}-{attempt.ended_s:.3f} s"
        # The error of the attempt that decided the outcome is the report's own error:
        # say it once, on the error line.
        error = f": {attempt.error}" if attempt.error and attempt.error != report.error else ""
        address = format_address(attempt.address)
        lines.extend(_wrap(f"attempt {address} {attempt.outcome} ({span}){error}"))
    if report.error:
        lines.extend(_wrap(f"error: {report.error}"))
    if report.reply is not None:
        lines.extend(_reply_lines(report.reply, report.reply_end, max_reply, reply_to))
    return "\n".join(lines)


def _reply_lines(reply: bytes, end: str | None, max_reply: int, reply_to: str | None) -> list[str]:
    size = f"{len(reply)} byte{'' if len(reply) == 1 else 's'}"
    if end == "limit":
        why = f"cut at {max_reply} bytes (--max-reply)"
    else:
        why = _WHY_STOPPED.get(end or "", "")
    head = f"reply: {size}" + (f", {why}" if why else "")
    if reply_to is not None:
        return _wrap(f"{head}, written to {reply_to}")
    if not reply:
        return _wrap(head)
    head = "  " + head
    text = _as_text(reply, cut=end == "limit")
    if text is None:
        preview = repr(reply[:PREVIEW_BINARY])
        more = " ..." if len(reply) > PREVIEW_BINARY else ""
        return [f"{head}, binary:", *_wrap(preview + more, "  | ")]
    lines = text.splitlines() or [""]
    body = [f"  | {_printable(line)}" for line in lines[:PREVIEW_LINES]]
    if len(lines) > PREVIEW_LINES:
        rest = len(lines) - PREVIEW_LINES
        body.append(f"  | ... {rest} more line{'' if rest == 1 else 's'}")
    if len(lines) > PREVIEW_LINES or any(len(line) > WIDTH - 4 for line in lines):
        body.append("  (--raw or --output FILE for the whole reply)")
    return [f"{head}:", *body]


def _as_text(reply: bytes, *, cut: bool) -> str | None:
    """The reply as text if it is UTF-8 (a cut may split the last character)."""
    try:
        return reply.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Up to 3 bytes of a character cut off by the cap are not binary data.
        if cut and exc.start >= len(reply) - 3 and exc.reason == "unexpected end of data":
            return reply[: exc.start].decode("utf-8")
        return None


def _printable(line: str) -> str:
    """One line of reply shown safely: controls escaped, cut to fit the width."""
    room = WIDTH - 4
    out = []
    for char in line:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            char = repr(char)[1:-1]  # \r, \t, \x1b ...: visible, never acted upon
        out.append(char)
    shown = "".join(out)
    return shown if len(shown) <= room else shown[: room - 3] + "..."
