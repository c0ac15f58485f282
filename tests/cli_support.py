"""What the command-line tests share: the backends, an in-process run, a subprocess.

The tests of ``trio-sockets`` call it in-process through ``main([...])`` where they can
(:func:`run`), and as a subprocess where they need a real process: a signal, a pipe
whose reader goes away, standard input that stays open (:func:`cli_process`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from trio_sockets.cli import main
from trio_sockets.testing import refusing_socket

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None
needs_uvloop = pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed")
#: Every ``--backend``; the uvloop one is skipped where uvloop is not installed.
BACKENDS = ["trio", "asyncio", pytest.param("asyncio+uvloop", marks=needs_uvloop)]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``trio-sockets ARGV`` in this process: the exit status, standard output and error."""
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def command(*argv: str) -> list[str]:
    """The command line of ``trio-sockets ARGV`` as a subprocess (``python -m``)."""
    return [sys.executable, "-m", "trio_sockets", *argv]


@contextlib.contextmanager
def cli_process(*argv: str, **popen: Any) -> Iterator[subprocess.Popen[str]]:
    """``trio-sockets ARGV`` as a subprocess with text pipes for standard output and error.

    ``popen`` goes to :class:`subprocess.Popen` (``stdin=subprocess.PIPE``, say). A
    process still running when the block ends (a failed assertion) is killed, so a
    failing test never leaves one behind or hangs on it.
    """
    with subprocess.Popen(
        command(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    ) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@contextlib.contextmanager
def refusing_target() -> Iterator[str]:
    """A loopback target that refuses: bound, never listening, held for the block."""
    with refusing_socket() as sock:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
