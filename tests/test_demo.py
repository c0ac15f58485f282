"""The demo: what each contestant measurably did, the rendering, and the demo's portability.

The command-line wiring (``trio-sockets demo`` and its options) is in ``test_cli.py``; here
the demo package is called directly. Loopback only.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path

import pytest

from trio_sockets.cli import main
from trio_sockets.demo import _kit

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


# --------------------------------------------------------------------------------------
# Portability
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_open_fds_without_a_listing_directory_probes_each_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as sock:
        listed = _kit.open_fds()
        assert sock.fileno() in listed
        # macOS has no /proc; a system with neither listing falls back to probing.
        monkeypatch.setattr(_kit, "FD_DIRECTORIES", ("/no/such/dir",))
        assert _kit.open_fds() == listed
    assert sock.fileno() not in _kit.open_fds()


@pytest.mark.timeout(10)
def test_open_fds_reads_dev_fd_where_there_is_no_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.path.isdir("/dev/fd"):
        pytest.skip("no /dev/fd here")
    listed = _kit.open_fds()
    monkeypatch.setattr(_kit, "FD_DIRECTORIES", ("/no/such/dir", "/dev/fd"))
    monkeypatch.setattr(_kit, "_fd_limit", lambda: 0)  # probing would find nothing
    assert _kit.open_fds() == listed


# --------------------------------------------------------------------------------------
# --plot: a bad path fails before anything runs
# --------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("name", "says"),
    [("missing/x.png", "does not exist"), ("folder.png", "is a directory")],
)
def test_demo_plot_path_is_checked_before_the_demo_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, says: str
) -> None:
    (tmp_path / "folder.png").mkdir()
    path = tmp_path / name
    status = main(["demo", "deadline", "--json", "--plot", str(path)])
    out, err = capsys.readouterr()
    assert status == 2
    assert str(path) in err and says in err
    assert out == ""  # nothing ran: a 0.5 s scenario would have printed its JSON


@pytest.mark.timeout(30)
@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_demo_plot_that_fails_late_keeps_the_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trio_sockets.demo import _render

    def refuse(*args: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_render, "render_plot", refuse)
    status = main(["demo", "all-refused", "--json", "--plot", str(tmp_path / "x.png")])
    out, err = capsys.readouterr()
    assert status == 2
    assert '"scenarios"' in out
    assert "Permission denied" in err
