"""The ``file`` scenario of ``trio-sockets bench``: whole commands, from start to exit.

``trio-sockets send --file F`` on each backend, against the smallest Python client that
sends a file (``socket.create_connection`` + ``socket.sendfile`` in ``python -c``, the
same interpreter) and, when installed, ``nc`` and ``socat``: each one a process whose
wall time runs from its start to its exit, interpreter start-up and imports included,
since a user waits for those too. The peak RSS comes from ``os.wait4``, which gives the
resource usage of that one child.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from .._addresses import format_address

__all__ = ["BACKENDS", "TOOLS", "ProcessRun", "file_command", "make_file", "missing_tools", "run"]

# The models that are `trio-sockets send --backend ...`.
BACKENDS: Final = {
    "trio_port": "trio",
    "asyncio_port": "asyncio",
    "asyncio_port+uvloop": "asyncio+uvloop",
}
GNU_TIME: Final = "/usr/bin/time"
TOOLS: Final = ("nc", "socat")  # peers that are programs of their own, when installed

# The smallest Python client: what `send --file` does, with nothing else.
SMALLEST_CLIENT: Final = (
    "import socket, sys\n"
    "with socket.create_connection((sys.argv[1], int(sys.argv[2]))) as s, "
    "open(sys.argv[3], 'rb') as f:\n"
    "    s.sendfile(f)\n"
)


class ProcessRun:
    """One command's run: wall seconds, peak RSS in KiB, exit status, standard error."""

    def __init__(self, elapsed_s: float, max_rss_kib: int, status: int, stderr: str) -> None:
        self.elapsed_s = elapsed_s
        self.max_rss_kib = max_rss_kib
        self.cpu_s = 0.0  # from GNU time, with the peak RSS
        self.status = status
        self.stderr = stderr


def missing_tools() -> list[str]:
    """The peer programs that are not installed (``nc``, ``socat``)."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def make_file(directory: Path, size: int) -> Path:
    """A sparse file of ``size`` zero bytes, no disk space, read once into the page cache."""
    path = directory / f"payload-{size}.bin"
    with path.open("wb") as f:
        f.truncate(size)
    # Read through once here, so that no model pays for it: the first read of a new file
    # fills the page cache, and inside sendfile() that is billed to whichever command
    # sends it first. For 1 GiB that took 0.2 to 2.5 s, most of it system time, varying
    # from file to file (measured 1 December 2026); a send from the page cache, 0.6 s.
    with path.open("rb") as f:
        while f.read(1 << 20):
            pass
    return path


def file_command(model: str, path: Path, host: str, port: int) -> tuple[list[str], Path | None]:
    """The command that sends ``path`` to the sink, and the file for its stdin, if any."""
    if model in BACKENDS:
        target = format_address((host, port))
        command = [sys.executable, "-m", "trio_sockets", "send", "--file", str(path)]
        return [*command, "--backend", BACKENDS[model], "--timeout", "none", target], None
    if model == "python-sendfile":
        return [sys.executable, "-c", SMALLEST_CLIENT, host, str(port), str(path)], None
    if model == "nc":
        # OpenBSD nc: -N shuts the socket down at the end of its input, and it exits.
        return ["nc", "-N", host, str(port)], path
    if model == "socat":
        address = f"TCP6:[{host}]:{port}" if ":" in host else f"TCP4:{host}:{port}"
        return ["socat", "-u", f"OPEN:{path}", address], None
    raise ValueError(f"no command for model {model!r}")


def run(
    command: list[str], stdin: Path | None, env: Mapping[str, str], timeout: float
) -> ProcessRun:
    """Run ``command`` to its exit; its wall time and its own peak RSS.

    The peak RSS and the CPU seconds come from GNU time (``/usr/bin/time``), 0 when
    it is not installed. Not from ``os.wait4`` on the command itself: Linux counts in a child's
    peak RSS the memory of the process it was started from (a child of this benchmark
    starts as a copy of it, and ``exec`` records that copy's peak), so that every command
    would seem to need this Python process's tens of MiB. GNU time is small, and its
    child starts as a copy of it. Every command runs under it, so that its start-up (a
    millisecond or two) is in every wall time alike.
    """
    rss_out = None
    if shutil.which(GNU_TIME) is not None:
        handle, name = tempfile.mkstemp(prefix="trio-sockets-bench-rss-")
        os.close(handle)
        rss_out = Path(name)
        command = [GNU_TIME, "-f", "%M %U %S", "-o", str(rss_out), *command]
    try:
        done = _run(command, stdin, env, timeout)
        if rss_out is not None and done.status == 0:
            rss, user, system = rss_out.read_text().split()[-3:]
            done.max_rss_kib, done.cpu_s = int(rss), float(user) + float(system)
        return done
    finally:
        if rss_out is not None:
            rss_out.unlink()


def _run(
    command: list[str], stdin: Path | None, env: Mapping[str, str], timeout: float
) -> ProcessRun:
    with stdin.open("rb") if stdin else open(os.devnull, "rb") as source:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, stdin=source, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )
        # A timer kills a command that hangs; wait4 blocks until the exit, and gives the
        # resource usage of that one child (RUSAGE_CHILDREN would be a maximum over all).
        killer = threading.Timer(timeout, process.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
            elapsed = time.perf_counter() - start
        finally:
            killer.cancel()
        assert process.stderr is not None
        stderr = process.stderr.read().decode(errors="replace")
        process.stderr.close()
        process.returncode = os.waitstatus_to_exitcode(status)
    return ProcessRun(elapsed, usage.ru_maxrss, process.returncode, stderr)
