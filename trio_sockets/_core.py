"""The I/O-free core shared by both ports.

Everything here is about the workflow, not about concurrency: parsing targets, checking
arguments, ordering addresses (RFC 8305), recording connection attempts, assembling the
reply and building reports. Like h11, it "contains no I/O code whatsoever": no ``await``,
no clock (the ports pass the time in), no socket calls. That keeps it testable with plain
synchronous tests, and it keeps the two ports honest: whatever differs between
``trio_port.py`` and ``asyncio_port.py`` is about the concurrency model.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import ipaddress
import math
import socket
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal, TypeAlias, cast

__all__ = [
    "Attempt",
    "AttemptLog",
    "ConnectError",
    "ReportBuilder",
    "SendError",
    "SendReport",
    "Target",
    "TargetError",
]

# RFC 8305 section 8 recommends 250 ms as the "Connection Attempt Delay".
DEFAULT_DELAY: Final = 0.250  # seconds
DEFAULT_TIMEOUT: Final = 10.0  # seconds, for the whole workflow
DEFAULT_MAX_REPLY_BYTES: Final = 65536  # bytes
DEFAULT_MAX_CONCURRENCY: Final = 100  # workflows at once
DEFAULT_RECEIVE_BYTES: Final = 65536  # bytes per receive_some call

Status: TypeAlias = Literal["ok", "error", "timeout", "cancelled"]
Outcome: TypeAlias = Literal["connected", "failed", "cancelled"]
# What getaddrinfo returns, one entry: (family, type, proto, canonname, sockaddr).
AddrInfo: TypeAlias = tuple[int, int, int, str, tuple[Any, ...]]
SockAddr: TypeAlias = tuple[Any, ...]

PHASES: Final = ("resolve", "connect", "check", "send", "reply")


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class TargetError(ValueError):
    """A target that cannot be parsed; the message names the offending value."""


class ConnectError(OSError):
    """Every connection attempt failed (or the name did not resolve).

    Attributes:
        attempts: one :class:`Attempt` per address, in the order they were started.
        errors: the exception each failed attempt raised, in the same order (a failed
            resolution is the only entry when there were no attempts).
        errno: set when every attempt failed with the same errno, else ``None``.
    """

    attempts: tuple[Attempt, ...]
    errors: tuple[BaseException, ...]

    def __init__(
        self,
        message: str,
        *,
        attempts: tuple[Attempt, ...] = (),
        errors: tuple[BaseException, ...] = (),
    ) -> None:
        codes = {getattr(exc, "errno", None) for exc in errors}
        common = codes.pop() if len(codes) == 1 else None
        if isinstance(common, int) and attempts:
            super().__init__(common, message)
        else:
            super().__init__(message)
        self.attempts = attempts
        self.errors = errors

    def __str__(self) -> str:
        # OSError(errno, message) would print "[Errno N] message"; the message already
        # carries each attempt's own error text, so keep it plain.
        return str(self.strerror if self.strerror is not None else self.args[0])


class SendError(OSError):
    """Sending failed; ``bytes_sent`` is what this call had delivered to the kernel."""

    bytes_sent: int

    def __init__(self, errno: int | None, message: str, *, bytes_sent: int) -> None:
        if errno is None:
            super().__init__(message)
        else:
            super().__init__(errno, message)
        self.bytes_sent = bytes_sent


def describe_error(exc: BaseException) -> str:
    """Return ``"TypeName: message"`` text for a report.

    A :class:`ConnectError` whose attempts all failed the same way is described by that
    one error (``"ConnectionRefusedError: [Errno 111] Connection refused"``), which is
    what a user wants to read; mixed failures keep the summary.
    """
    if isinstance(exc, ConnectError):
        texts = {_exc_text(e) for e in exc.errors}
        if len(texts) == 1:
            return texts.pop()
    return _exc_text(exc)


def _exc_text(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------------------
# Targets and argument checks
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """Where to connect: a host name or IP literal, and a TCP port (1..65535)."""

    host: str
    port: int

    def __post_init__(self) -> None:
        problem = _target_problem(self.host, self.port)
        if problem is not None:
            raise TargetError(f"{problem} in {self!r}")

    @classmethod
    def parse(cls, value: object) -> Target:
        """Parse ``Target``, ``"host:port"``, ``"[v6-literal]:port"`` or ``(host, port)``.

        Raises:
            TargetError: the value has no port, a port that is not an integer in
                1..65535 (service names such as ``http`` are refused), an empty host, a
                host with whitespace or control characters, or a host that is not a string.
        """
        if isinstance(value, Target):
            return value
        if isinstance(value, str):
            host, port_text = _split_host_port(value)
            port: object = _parse_port(port_text, value)
        elif isinstance(value, tuple):
            if len(value) != 2:
                raise TargetError(f"target tuple must be (host, port), got {value!r}")
            host, port = value
            if isinstance(host, str) and host.startswith("[") and host.endswith("]"):
                host = host[1:-1]
            if isinstance(port, str):
                port = _parse_port(port, value)
        else:
            raise TargetError(
                f"target must be 'host:port', '[v6]:port', (host, port) or a Target, got {value!r}"
            )
        try:
            return cls(host, port)  # type: ignore[arg-type]  # checked by __post_init__
        except TargetError:
            # Checked once, by the constructor; only a refusal asks again, so that the
            # message can name the whole value rather than the Target it would have made.
            raise TargetError(f"{_target_problem(host, port)} in target {value!r}") from None

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _split_host_port(value: str) -> tuple[str, str]:
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            raise TargetError(f"missing ']' in IPv6 target {value!r}")
        host, rest = value[1:end], value[end + 1 :]
        if not rest.startswith(":"):
            raise TargetError(f"no port in target {value!r} (expected '[v6-literal]:port')")
        if not _is_ip(host, version=6):
            raise TargetError(f"{host!r} in {value!r} is not an IPv6 literal")
        return host, rest[1:]
    host, sep, port = value.rpartition(":")
    if not sep:
        raise TargetError(f"no port in target {value!r} (expected 'host:port')")
    if ":" in host:
        raise TargetError(f"IPv6 literal must be in brackets, as '[{host}]:{port}', got {value!r}")
    return host, port


def _parse_port(text: str, value: object) -> int:
    # str.isdigit() accepts other scripts' digits and superscripts; ports are ASCII.
    if not (text.isascii() and text.isdigit()):
        raise TargetError(f"port must be an integer in 1..65535, got {text!r} in {value!r}")
    port = int(text)
    if not 1 <= port <= 65535:
        raise TargetError(f"port must be in 1..65535, got {port} in {value!r}")
    return port


def _target_problem(host: object, port: object) -> str | None:
    """What is wrong with a target's host or port, or ``None`` when both are valid."""
    if not isinstance(host, str):
        return f"host must be a string, got {host!r}"
    if not host:
        return "empty host"
    # isprintable() is False for every control and whitespace character but " ".
    if " " in host or not host.isprintable():
        return f"host {host!r} contains whitespace or control characters"
    # str(Target) writes "host:port" or "[v6]:port"; a host with brackets, or with a
    # colon that is not an IPv6 literal's, could not be read back.
    if "[" in host or "]" in host:
        return f"host {host!r} contains '[' or ']'"
    if ":" in host and not _is_ip(host, version=6):
        return f"host {host!r} contains ':' but is not an IPv6 literal"
    if not host.isascii():
        try:
            host.encode("idna")
        except UnicodeError as exc:
            return f"host {host!r} is not a valid host name ({exc})"
    if isinstance(port, bool) or not isinstance(port, int):
        return f"port must be an integer in 1..65535, got {port!r}"
    if not 1 <= port <= 65535:
        return f"port must be in 1..65535, got {port!r}"
    return None


def _is_ip(text: str, version: int | None = None) -> bool:
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return False
    return version is None or address.version == version


def parse_targets(targets: Iterable[object]) -> list[Target]:
    """Parse every target before any I/O; the error names the bad one and its index."""
    if isinstance(targets, (str, bytes, Target)):
        raise TargetError(f"targets must be a list of targets, got a single {targets!r}")
    parsed = []
    for index, value in enumerate(targets):
        try:
            parsed.append(Target.parse(value))
        except TargetError as exc:
            raise TargetError(f"target #{index}: {exc}") from None
    return parsed


def check_seconds(value: object, name: str, *, allow_none: bool = True) -> float | None:
    """Check a duration in seconds: a non-negative, non-NaN number (or ``None``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        what = "a number of seconds or None" if allow_none else "a number of seconds"
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number of seconds, got {value!r}")
    return float(value)


def check_count(value: object, name: str) -> int:
    """Check a positive integer (a size or a concurrency limit)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_payload(payload: object) -> memoryview:
    """Return a flat byte view of a bytes-like payload, or raise ``TypeError``."""
    try:
        if isinstance(payload, str):
            raise TypeError(payload)
        view = memoryview(payload)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"payload must be bytes-like (bytes, bytearray or memoryview), "
            f"got {type(payload).__name__}: {payload!r:.60}"
        ) from None
    if not view.c_contiguous:
        # Python's "bytes-like" means a C-contiguous buffer; socket.send() refuses others
        # (BufferError), which would surface mid-I/O instead of before it.
        raise TypeError(f"payload must be a C-contiguous buffer, got {payload!r:.60}")
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def check_local_address(value: object) -> str | None:
    """A local address to bind before connecting must be an IP literal (or ``None``)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _is_ip(value):
        raise ValueError(f"local_address must be an IP address string, got {value!r}")
    return value


def local_address_error(local: str, family: int, sockaddr: SockAddr) -> OSError | None:
    """The error for a ``local_address`` of the wrong family for ``sockaddr``, else None.

    Checked before binding: Trio would bind an IPv4 address to an IPv6 socket as an
    IPv4-mapped address, and the failure would come later, from ``connect()``, without
    naming the local address.
    """
    version = ipaddress.ip_address(local.partition("%")[0]).version
    if (version == 6) == (family == socket.AF_INET6):
        return None
    return OSError(
        errno.EAFNOSUPPORT,
        f"local_address={local!r} is an IPv{version} address; it cannot reach "
        f"{format_address(sockaddr)}",
    )


def check_callback(value: object, name: str) -> Callable[..., object] | None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    """The checked options of one connect-check-send workflow."""

    timeout: float | None
    delay: float | None
    read_reply: bool
    max_reply_bytes: int

    @classmethod
    def check(
        cls, timeout: object, delay: object, read_reply: object, max_reply_bytes: object
    ) -> Options:
        return cls(
            timeout=check_seconds(timeout, "timeout"),
            delay=check_seconds(delay, "happy_eyeballs_delay"),
            read_reply=bool(read_reply),
            max_reply_bytes=check_count(max_reply_bytes, "max_reply_bytes"),
        )


# --------------------------------------------------------------------------------------
# Addresses: numeric fast path and RFC 8305 ordering
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def numeric_addrinfo(host: str, port: int) -> tuple[AddrInfo, ...] | None:
    """Return the one address of an IP literal without any lookup, else ``None``.

    Trio's ``getaddrinfo`` and asyncio's ``create_connection`` both skip the resolver
    thread for numeric hosts; so do we, and a numeric host also skips the race. The
    answer depends on nothing but the text, so it is cached: a fan-out to one address
    parses it once.
    """
    if not _is_ip(host):
        return None
    flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
    # No I/O: with AI_NUMERICHOST the C library only parses the literal. It may still
    # refuse what ipaddress accepts (a scope id naming no interface, "1.2.3.4%x"); the
    # resolver then reports it, as a ConnectError like any name that does not resolve.
    try:
        return tuple(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, flags))
    except socket.gaierror:
        return None


def reorder_for_rfc_8305_section_4(addrinfos: Iterable[AddrInfo]) -> list[AddrInfo]:
    """Interleave address families as RFC 8305 section 4 asks.

    The resolver's order is kept within each family, and the families alternate,
    starting with the family of the first address: A1 A2 B1 B2 B3 becomes A1 B1 A2 B2 B3.
    (RFC 8305 allows a "First Address Family Count" above one; like trio, we use one.)
    """
    by_family: dict[int, list[AddrInfo]] = {}
    for info in addrinfos:
        by_family.setdefault(info[0], []).append(info)
    queues = list(by_family.values())  # dicts keep insertion order: first family first
    ordered: list[AddrInfo] = []
    for rank in range(max((len(q) for q in queues), default=0)):
        ordered.extend(q[rank] for q in queues if rank < len(q))
    return ordered


def format_address(sockaddr: SockAddr) -> str:
    """``127.0.0.1:80`` or ``[::1]:80``."""
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


# --------------------------------------------------------------------------------------
# Attempts and reports
# --------------------------------------------------------------------------------------


def _json_address(sockaddr: SockAddr | None) -> list[Any] | None:
    return None if sockaddr is None else list(sockaddr)


def _family_name(family: int) -> str:
    try:
        return socket.AddressFamily(family).name
    except ValueError:
        return str(family)


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
            "address": _json_address(self.address),
            "family": _family_name(self.family),
            "started_s": self.started_s,
            "ended_s": self.ended_s,
            "outcome": self.outcome,
            "error": self.error,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class SendReport:
    """What happened to one target: status, bytes sent, reply, attempts and phase times."""

    target: Target
    status: Status
    address: SockAddr | None = None
    bytes_sent: int = 0
    reply: bytes | None = None
    error: str | None = None
    attempts: tuple[Attempt, ...] = ()
    resolve_s: float = 0.0
    connect_s: float = 0.0
    check_s: float = 0.0
    send_s: float = 0.0
    reply_s: float = 0.0
    total_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the payload was delivered (and the reply read, if asked for)."""
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the reply is text when it decodes as UTF-8, else hex."""
        reply: str | None = None
        encoding: str | None = None
        if self.reply is not None:
            try:
                reply, encoding = self.reply.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                reply, encoding = self.reply.hex(), "hex"
        return {
            "target": str(self.target),
            "status": self.status,
            "ok": self.ok,
            "address": _json_address(self.address),
            "bytes_sent": self.bytes_sent,
            "reply": reply,
            "reply_encoding": encoding,
            "error": self.error,
            "attempts": [a.to_dict() for a in self.attempts],
            "resolve_s": self.resolve_s,
            "connect_s": self.connect_s,
            "check_s": self.check_s,
            "send_s": self.send_s,
            "reply_s": self.reply_s,
            "total_s": self.total_s,
        }


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


def resolve_error(target: Target, exc: OSError) -> ConnectError:
    """The :class:`ConnectError` for a name that did not resolve."""
    return ConnectError(f"could not resolve {target.host!r}: {exc}", errors=(exc,))


class ReportBuilder(AttemptLog):
    """Collects one workflow's progress; :meth:`finish` turns it into a :class:`SendReport`.

    The ports keep ``address``, ``bytes_sent`` and ``reply`` current, and set when each
    phase began (``connect_at``, ``check_at``, ``send_at``, ``reply_at``; resolving
    begins at ``start``), so that a report made after a deadline or a cancellation still
    tells how far the workflow got. Plain attributes, not a method: the ports set them
    on every workflow, and a call costs more than the rest of the bookkeeping.
    """

    __slots__ = ("address", "bytes_sent", "check_at", "reply", "reply_at", "send_at", "target")

    def __init__(self, target: Target, start: float) -> None:
        super().__init__(start)
        self.target = target
        self.address: SockAddr | None = None
        self.bytes_sent = 0
        self.reply: bytes | None = None
        self.check_at: float | None = None
        self.send_at: float | None = None
        self.reply_at: float | None = None

    def _phase_starts(self) -> list[float]:
        # The phases run in order, so those reached so far are a prefix of PHASES.
        starts = [self.start, self.connect_at, self.check_at, self.send_at, self.reply_at]
        reached = starts.index(None) if None in starts else len(starts)
        return cast("list[float]", starts[:reached])

    @property
    def phase(self) -> str:
        """The phase the workflow is in (or ended in): ``"resolve"`` ... ``"reply"``."""
        return PHASES[len(self._phase_starts()) - 1]

    def finish(self, status: Status, now: float, error: str | None = None) -> SendReport:
        starts = self._phase_starts()
        # Each phase lasts until the next one began; the last one reached, until now.
        durations = [end - begin for begin, end in zip(starts, [*starts[1:], now], strict=True)]
        resolve_s, connect_s, check_s, send_s, reply_s = durations + [0.0] * (
            len(PHASES) - len(durations)
        )
        return SendReport(
            target=self.target,
            status=status,
            address=self.address,
            bytes_sent=self.bytes_sent,
            reply=self.reply,
            error=error,
            attempts=self.close_all(now),
            resolve_s=resolve_s,
            connect_s=connect_s,
            check_s=check_s,
            send_s=send_s,
            reply_s=reply_s,
            total_s=now - self.start,
        )

    def timeout_text(self, timeout: float | None) -> str:
        return f"TimeoutError: deadline of {timeout:g} s passed during {self.phase}"


def cancelled_report(target: Target, why: str) -> SendReport:
    """The report of a target that never started (fail_fast stopped the fan-out)."""
    return SendReport(target=target, status="cancelled", error=why)


FAIL_FAST_TEXT: Final = "Cancelled: fail_fast stopped the fan-out after a failed target"


# --------------------------------------------------------------------------------------
# Reply assembly
# --------------------------------------------------------------------------------------


class ReplyBuffer:
    """Gathers reply chunks up to ``max_bytes``; :attr:`room` is what may still come."""

    __slots__ = ("_chunks", "_size", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._chunks: list[bytes] = []
        self._size = 0

    @property
    def room(self) -> int:
        return self.max_bytes - self._size

    def add(self, chunk: bytes) -> None:
        if len(chunk) > self.room:
            raise ValueError(f"chunk of {len(chunk)} bytes exceeds the {self.room} bytes left")
        self._chunks.append(chunk)
        self._size += len(chunk)

    def value(self) -> bytes:
        return b"".join(self._chunks)
