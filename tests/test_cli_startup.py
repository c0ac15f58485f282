"""What ``trio-sockets send`` imports, and the help that names what to install.

A command that sends one payload waits for the interpreter, its framework and this
package to import before its first byte goes out: for a short send, start-up is most of
its time. So ``send`` imports its backend's port and nothing of the other framework, and
no module that only another command, an error or ``--help`` needs. Each check runs the
command in a fresh interpreter and reads ``sys.modules`` after it; loopback only.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trio_sockets import _hints
from trio_sockets._hints import install_hint
from trio_sockets.cli import main
from trio_sockets.testing import LoopbackServer

# Never on the send path: the install hints read the installation's metadata
# (importlib.metadata, which imports email and more), json is for --json only, and the
# demo, the benchmark, the loopback servers and rich are other commands'.
NOT_FOR_SEND = {
    "importlib.metadata",
    "email",
    "urllib.request",
    "json",
    "rich",
    "trio_sockets._hints",
    "trio_sockets.demo",
    "trio_sockets.bench",
    "trio_sockets.testing",
}
# Each backend imports its own framework and port, nothing of the other. tempfile and
# pathlib come with Trio, not with asyncio: on asyncio they would be ours. uvloop is
# imported to see whether it is there, not looked up with importlib.util.
NOT_ON_BACKEND = {
    "trio": {"asyncio", "uvloop", "trio_sockets.asyncio_port"},
    "asyncio": {"trio", "uvloop", "trio_sockets.trio_port", "tempfile", "pathlib"},
    "asyncio+uvloop": {"trio", "trio_sockets.trio_port", "tempfile", "pathlib", "importlib.util"},
}
BACKENDS = [
    "trio",
    "asyncio",
    pytest.param(
        "asyncio+uvloop",
        marks=pytest.mark.skipif(sys.platform == "win32", reason="no uvloop on Windows"),
    ),
]
HINTED = {"demo": "plot", "send": "uvloop", "send-many": "uvloop", "serve": "tls"}


def _imported_by(argv: list[str]) -> tuple[int, set[str]]:
    """Run ``trio-sockets ARGV`` as the console script does; its status and modules."""
    code = (
        "import sys\n"
        "from trio_sockets.cli import main\n"
        "status = main(sys.argv[1:])\n"
        "print(*sorted(sys.modules), sep='\\n', file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=20
    )
    return done.returncode, set(done.stderr.splitlines())


@pytest.mark.timeout(30)
@pytest.mark.parametrize("backend", BACKENDS)
def test_send_imports_only_what_it_needs(backend: str, tmp_path: Path) -> None:
    if backend == "asyncio+uvloop":
        pytest.importorskip("uvloop")
    payload = tmp_path / "payload"
    payload.write_bytes(b"x" * 1000)
    with LoopbackServer("sink") as sink:
        status, modules = _imported_by(
            ["send", "--file", str(payload), "--backend", backend, sink.target]
        )
        assert status == 0
        assert sink.wait_bytes(1000)
    port = "trio_sockets.trio_port" if backend == "trio" else "trio_sockets.asyncio_port"
    assert port in modules  # the command ran its backend's port
    assert modules & (NOT_FOR_SEND | NOT_ON_BACKEND[backend]) == set()


@pytest.mark.timeout(10)
@pytest.mark.parametrize("command", list(HINTED))
def test_help_names_the_install_hint(capsys: pytest.CaptureFixture[str], command: str) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "<install hint" not in out
    assert install_hint(HINTED[command]) in " ".join(out.split())  # as wrapped


@pytest.mark.timeout(10)
def test_help_shows_a_hint_with_a_percent_sign(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # argparse %-formats each help text: a checkout path with "%" must come out as is.
    monkeypatch.setattr(_hints, "install_hint", lambda extra: f"pip install '/src/100%[{extra}]'")
    assert main(["send", "--help"]) == 0
    assert "pip install '/src/100%[uvloop]'" in " ".join(capsys.readouterr().out.split())
