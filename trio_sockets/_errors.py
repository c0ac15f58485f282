"""Errors of the I/O-free core, and the text a report gives for an exception.

Part of the sans-I/O core (see :mod:`trio_sockets._reports`): no ``await``, no clock.
"""

from __future__ import annotations

import os
import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

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
    """Return ``"TypeName: message"`` text for a report, the same on every port.

    An operating-system error is described by its type, its errno and the OS's own
    message: ``"ConnectionRefusedError: [Errno 111] Connection refused"``. The frameworks
    word the same failure each their own way (Trio: "Error connecting to ...", asyncio:
    "Connect call failed ...", uvloop: its own) and put the address in it; the address is
    the attempt's to carry, not the text's. Notes added to the exception (``add_note``)
    follow in parentheses: that is where this package puts its own context.

    A :class:`ConnectError` whose attempts all failed the same way is described by that
    one error, which is what a user wants to read; mixed failures keep the summary. A
    name that did not resolve keeps the message that names it, after the resolver's
    error type: ``"gaierror: could not resolve 'example.test': [Errno -2] ..."`` (the
    resolver's error alone would not say which name failed).
    """
    if isinstance(exc, ConnectError) and not exc.attempts:
        causes = [e for e in exc.errors if isinstance(e, OSError)]
        kind = type(causes[0]).__name__ if len(exc.errors) == len(causes) == 1 else None
        return f"{kind}: {exc}" if kind else _exc_text(exc)
    if isinstance(exc, ConnectError):
        texts = {_exc_text(e) for e in exc.errors}
        if len(texts) == 1:
            return texts.pop()
    return _exc_text(exc)


def _exc_text(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    # Only the builtin OSError family: our own errors (ConnectError, SendError) word
    # their message on purpose, and socket.gaierror's codes are not errno values.
    if type(exc).__module__ == "builtins" and isinstance(code, int) and code > 0:
        text = f"[Errno {code}] {os.strerror(code)}"
    else:
        text = str(exc)
    # Named by its first public class: a port may raise a private subclass of a public
    # error (one that is also its framework's error), and reports name the public one.
    name = next(c.__name__ for c in type(exc).__mro__ if not c.__name__.startswith("_"))
    text = f"{name}: {text}" if text else name
    notes = [note for note in getattr(exc, "__notes__", ()) if isinstance(note, str)]
    return f"{text} ({'; '.join(notes)})" if notes else text


def handshake_error(
    target: Target, exc: BaseException, attempts: tuple[Attempt, ...]
) -> ConnectError:
    """The :class:`ConnectError` for a TLS handshake that failed (after connecting).

    Its text is the handshake's own error, so a report reads, for example,
    ``"SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify
    failed: Hostname mismatch, ..."``. ``errno`` is the socket's errno when the
    connection itself failed (a reset); a TLS alert or a refused certificate has none.
    """
    error = ConnectError(
        f"TLS handshake with {target} failed: {exc}", attempts=attempts, errors=(exc,)
    )
    if isinstance(exc, ssl.SSLError) or not isinstance(exc, OSError):
        error.errno = None
    return error


def resolve_error(target: Target, exc: BaseException) -> ConnectError:
    """The :class:`ConnectError` for a name that did not resolve, whatever the reason.

    ``exc`` is what the resolver raised: a ``socket.gaierror``, or the ``UnicodeError``
    (``idna.IDNAError`` on Trio) or ``ValueError`` of a name that cannot be encoded.
    """
    # An OSError (socket.gaierror) says enough as it is; another kind needs its name.
    detail = str(exc) if isinstance(exc, OSError) else _exc_text(exc)
    return ConnectError(f"could not resolve {target.host!r}: {detail}", errors=(exc,))


def bare_exception(group: BaseExceptionGroup, cancelled: type[BaseException]) -> BaseException:
    """The one exception to raise for a failed task group, so that callers never see a group.

    A task group (nursery) raises a group when a child fails; the race and the fan-out
    run children only so as to stop at the first failure, so one exception is what
    happened. The pick: ``KeyboardInterrupt`` or ``SystemExit`` first (the user wants out),
    then any other error (a bug, which cancelled its siblings), and a cancellation
    (``cancelled``, the framework's type) only when there is nothing else. The group
    stays reachable as the exception's ``__context__``.
    """
    leaves = list(_leaves(group))
    for leaf in leaves:
        if not isinstance(leaf, (Exception, cancelled)):
            return leaf
    for leaf in leaves:
        if not isinstance(leaf, cancelled):
            return leaf
    return leaves[0]


def _leaves(group: BaseExceptionGroup) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc
