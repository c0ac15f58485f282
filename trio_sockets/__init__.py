"""trio_sockets: connect, check, send, with Trio's structured concurrency.

``import trio_sockets`` gives the Trio port (:mod:`trio_sockets.trio_port`); its asyncio
twin, with the same names and signatures, is :mod:`trio_sockets.asyncio_port`.
"""

from ._checks import DEFAULT_DELAY, DEFAULT_TIMEOUT
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
