"""trio_sockets: connect, check, send, with Trio's structured concurrency.

``import trio_sockets`` gives the Trio port (:mod:`trio_sockets.trio_port`); its asyncio
twin, with the same names and signatures, is :mod:`trio_sockets.asyncio_port`.
"""

from typing import TYPE_CHECKING, Any

from ._checks import DEFAULT_DELAY, DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from .trio_port import (
        Attempt,
        ConnectError,
        Connection,
        SendError,
        SendReport,
        Target,
        TargetError,
        connect_check_send,
        open_connection,
        send_to_many,
        stream_to_many,
    )

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_DELAY",
    "DEFAULT_TIMEOUT",
    "Attempt",
    "ConnectError",
    "Connection",
    "SendError",
    "SendReport",
    "Target",
    "TargetError",
    "__version__",
    "connect_check_send",
    "open_connection",
    "send_to_many",
    "stream_to_many",
]


# The Trio port's names are imported on first use (PEP 562), not with the package, so
# that what imports only a submodule (`trio-sockets send --backend asyncio`, the
# asyncio port, the loopback servers) does not import Trio: that is most of the
# command's start-up.
_FROM_TRIO_PORT: frozenset[str] = frozenset(__all__) - {
    "DEFAULT_DELAY",
    "DEFAULT_TIMEOUT",
    "__version__",
}


def __getattr__(name: str) -> Any:
    if name in _FROM_TRIO_PORT:
        from . import trio_port

        value = getattr(trio_port, name)
        globals()[name] = value  # found directly from now on
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
