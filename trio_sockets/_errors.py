"""Errors of the I/O-free core, and the text a report gives for an exception.

Part of the sans-I/O core (see :mod:`trio_sockets._reports`): no ``await``, no clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._reports import Attempt
    from ._targets import Target

__all__ = ["ConnectError", "SendError", "TargetError"]


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


def resolve_error(target: Target, exc: OSError) -> ConnectError:
    """The :class:`ConnectError` for a name that did not resolve."""
    return ConnectError(f"could not resolve {target.host!r}: {exc}", errors=(exc,))
