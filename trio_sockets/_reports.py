"""Attempts and reports: what happened to one target, built as the workflow goes.

Together with :mod:`~trio_sockets._errors`, :mod:`~trio_sockets._targets`,
:mod:`~trio_sockets._checks`, :mod:`~trio_sockets._addresses` and
:mod:`~trio_sockets._reply`, this is the I/O-free core shared by both ports. Everything
there is about the workflow, not about concurrency: parsing targets, checking arguments,
ordering addresses (RFC 8305), recording connection attempts, assembling the reply and
building reports. Like h11, it "contains no I/O code whatsoever": no ``await``, no clock
(the ports pass the time in), no socket calls. That keeps it testable with plain
synchronous tests, and it keeps the two ports honest: whatever differs between
``trio_port.py`` and ``asyncio_port.py`` is about the concurrency model.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final, Literal, TypeAlias, cast

from ._addresses import SockAddr, family_name, format_address, json_address
from ._errors import ConnectError, describe_error
from ._reply import ReplyEnd
from ._targets import Target

__all__ = [
    "PHASES",
    "Attempt",
    "AttemptLog",
    "ReportBuilder",
    "SendReport",
    "bad_target_report",
    "cancelled_report",
]

Status: TypeAlias = Literal["ok", "error", "timeout", "cancelled"]
Outcome: TypeAlias = Literal["connected", "failed", "cancelled"]

PHASES: Final = ("resolve", "connect", "tls", "check", "send", "reply")


@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    """One connection attempt: where, when (seconds since the workflow started), how it ended."""

    address: SockAddr
    family: int
    started_s: float
    ended_s: float
    outcome: Outcome
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``family`` becomes its name, e.g. ``"AF_INET6"``."""
        return {
            "address": json_address(self.address),
            "family": family_name(self.family),
            "started_s": self.started_s,
            "ended_s": self.ended_s,
            "outcome": self.outcome,
            "error": self.error,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class SendReport:
    """What happened to one target: status, bytes sent, reply, attempts and phase times.

    ``target`` is the parsed :class:`Target`, or the text given when a target met in a
    stream could not be parsed (its report is an ``"error"`` naming the problem).
    ``index`` is the target's position in the input of a fan-out (``None`` for a single
    workflow).
    """

    target: Target | str
    status: Status
    address: SockAddr | None = None
    tls_version: str | None = None
    tls_cipher: str | None = None
    bytes_sent: int = 0
    reply: bytes | None = None
    error: str | None = None
    attempts: tuple[Attempt, ...] = ()
    # Why reading the reply stopped ("eof", "limit", "until", "idle"); None when no
    # reply was read, or when the deadline or an error cut the reading short.
    reply_end: ReplyEnd | None = None
    resolve_s: float = 0.0
    connect_s: float = 0.0
    tls_s: float = 0.0
    check_s: float = 0.0
    send_s: float = 0.0
    reply_s: float = 0.0
    total_s: float = 0.0
    index: int | None = None

    @property
    def ok(self) -> bool:
        """True when the payload was delivered (and the reply read, if asked for)."""
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the reply is text when it decodes as UTF-8, else hex.

        A reply cut inside a character (by ``max_reply_bytes``, say) is still text: the
        complete characters are ``reply``, and the 1 to 3 bytes of the cut character are
        ``reply_tail_hex`` (``None`` when nothing was cut), so no byte is lost.
        """
        reply, encoding, tail = _reply_text(self.reply)
        return {
            "target": str(self.target),
            "status": self.status,
            "ok": self.ok,
            "address": json_address(self.address),
            "tls_version": self.tls_version,
            "tls_cipher": self.tls_cipher,
            "bytes_sent": self.bytes_sent,
            "reply": reply,
            "reply_encoding": encoding,
            "reply_tail_hex": tail,
            "reply_end": self.reply_end,
            "error": self.error,
            "attempts": [a.to_dict() for a in self.attempts],
            "resolve_s": self.resolve_s,
            "connect_s": self.connect_s,
            "tls_s": self.tls_s,
            "check_s": self.check_s,
            "send_s": self.send_s,
            "reply_s": self.reply_s,
            "total_s": self.total_s,
            "index": self.index,
        }


def _reply_text(reply: bytes | None) -> tuple[str | None, str | None, str | None]:
    """(text, encoding, hex of a cut last character) for :meth:`SendReport.to_dict`."""
    if reply is None:
        return None, None, None
    try:
        return reply.decode("utf-8"), "utf-8", None
    except UnicodeDecodeError as exc:
        # "unexpected end of data": valid up to a character that the end cuts short (at
        # most 3 of its 4 bytes). Any other error is not UTF-8 at all.
        if exc.reason == "unexpected end of data" and len(reply) - exc.start <= 3:
            return reply[: exc.start].decode("utf-8"), "utf-8", reply[exc.start :].hex()
        return reply.hex(), "hex", None


_RUNNING: Final = -1.0  # the ended_s of an attempt that has not ended yet

# An attempt while it runs: (address, family, started_s). It becomes an Attempt when it
# ends, and not before: a frozen dataclass is dear to build, and every workflow makes at
# least one attempt.
_Running: TypeAlias = tuple[SockAddr, int, float]


class AttemptLog:
    """Records connection attempts as they start and end (times given by the caller).

    The log is mutable and lives outside the race, so that whatever ends the race (a
    winner, a failure, a deadline, a cancellation) the attempts made so far can still be
    reported. ``connect_at`` is when resolving ended and connecting began; the ports
    set it.
    """

    __slots__ = ("_log", "connect_at", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.connect_at: float | None = None
        self._log: list[Attempt | _Running] = []

    @property
    def attempts(self) -> list[Attempt]:
        """Every attempt so far, in start order; one still running has ended_s -1.0."""
        return [
            entry if isinstance(entry, Attempt) else Attempt(*entry, _RUNNING, "cancelled")
            for entry in self._log
        ]

    def started(self, sockaddr: SockAddr, family: int, now: float) -> int:
        self._log.append((sockaddr, family, now - self.start))
        return len(self._log) - 1

    def ended(self, index: int, outcome: Outcome, now: float, error: str | None = None) -> None:
        entry = self._log[index]
        if isinstance(entry, Attempt):  # ended again: an attempt that connected too late
            entry = (entry.address, entry.family, entry.started_s)
        address, family, started_s = entry
        self._log[index] = Attempt(address, family, started_s, now - self.start, outcome, error)

    def close_all(self, now: float) -> tuple[Attempt, ...]:
        """Mark attempts still running as cancelled, now; return every attempt."""
        for index, entry in enumerate(self._log):
            if not isinstance(entry, Attempt):
                self.ended(index, "cancelled", now)
        return tuple(self._log)  # type: ignore[arg-type]  # each one has ended now

    def connect_error(self, target: Target, errors: list[OSError], now: float) -> ConnectError:
        """The :class:`ConnectError` for a race in which no attempt connected."""
        attempts = self.close_all(now)
        details = "; ".join(f"{format_address(a.address)}: {a.error}" for a in attempts)
        message = f"all {len(attempts)} connection attempts to {target} failed: {details}"
        if len(attempts) == 1:
            message = f"connection to {target} failed: {details}"
        return ConnectError(message, attempts=attempts, errors=tuple(errors))


class ReportBuilder(AttemptLog):
    """Collects one workflow's progress; :meth:`finish` turns it into a :class:`SendReport`.

    The ports keep ``address``, ``tls_version``, ``tls_cipher``, ``bytes_sent`` and
    ``reply`` current, and set when each phase began (``connect_at``, ``tls_at``,
    ``check_at``, ``send_at``, ``reply_at``; resolving begins at ``start``; without TLS,
    ``tls_at`` stays None, a phase of no time), so that a report made after a
    deadline or a cancellation still tells how far the workflow got. Plain attributes,
    not a method: the ports set them on every workflow, and a call costs more than the
    rest of the bookkeeping.
    """

    __slots__ = (
        "address",
        "bytes_sent",
        "check_at",
        "index",
        "reply",
        "reply_at",
        "reply_end",
        "send_at",
        "target",
        "tls_at",
        "tls_cipher",
        "tls_version",
    )

    def __init__(self, target: Target, start: float, index: int | None = None) -> None:
        super().__init__(start)
        self.target = target
        self.index = index
        self.address: SockAddr | None = None
        self.tls_version: str | None = None
        self.tls_cipher: str | None = None
        self.bytes_sent = 0
        self.reply: bytes | None = None
        self.reply_end: ReplyEnd | None = None
        self.tls_at: float | None = None
        self.check_at: float | None = None
        self.send_at: float | None = None
        self.reply_at: float | None = None

    def _phase_starts(self) -> list[float]:
        # The phases run in order, so those reached so far are a prefix of PHASES.
        # Without TLS there is no handshake: its phase takes no time.
        tls_at = self.check_at if self.tls_at is None else self.tls_at
        starts = [
            self.start,
            self.connect_at,
            tls_at,
            self.check_at,
            self.send_at,
            self.reply_at,
        ]
        reached = starts.index(None) if None in starts else len(starts)
        return cast("list[float]", starts[:reached])

    @property
    def phase(self) -> str:
        """The phase the workflow is in (or ended in), one of :data:`PHASES`."""
        return PHASES[len(self._phase_starts()) - 1]

    def finish(self, status: Status, now: float, error: str | None = None) -> SendReport:
        starts = self._phase_starts()
        # Each phase lasts until the next one began; the last one reached, until now.
        durations = [end - begin for begin, end in zip(starts, [*starts[1:], now], strict=True)]
        resolve_s, connect_s, tls_s, check_s, send_s, reply_s = durations + [0.0] * (
            len(PHASES) - len(durations)
        )
        return SendReport(
            target=self.target,
            status=status,
            address=self.address,
            tls_version=self.tls_version,
            tls_cipher=self.tls_cipher,
            bytes_sent=self.bytes_sent,
            reply=self.reply,
            error=error,
            attempts=self.close_all(now),
            reply_end=self.reply_end,
            resolve_s=resolve_s,
            connect_s=connect_s,
            tls_s=tls_s,
            check_s=check_s,
            send_s=send_s,
            reply_s=reply_s,
            total_s=now - self.start,
            index=self.index,
        )

    def timeout_text(self, timeout: float | None) -> str:
        return f"TimeoutError: deadline of {timeout:g} s passed during {self.phase}"


def cancelled_report(target: Target, why: str, index: int | None = None) -> SendReport:
    """The report of a target that never started (fail_fast stopped the fan-out)."""
    return SendReport(target=target, status="cancelled", error=why, index=index)


def bad_target_report(value: object, error: BaseException, index: int) -> SendReport:
    """The ``"error"`` report of a target met in a stream that could not be parsed.

    Such a target cannot be refused before any I/O, as a list's can: the fan-out is
    already running. Its report carries the value as text (a string as given, anything
    else as its ``repr``), and the error names it.
    """
    text = value if isinstance(value, str) else repr(value)
    return SendReport(target=text, status="error", error=describe_error(error), index=index)


FAIL_FAST_TEXT: Final = "Cancelled: fail_fast stopped the fan-out after a failed target"
