"""The command over TLS: ``serve MODE --tls`` and ``send --tls [--cafile] [--insecure]``.

``serve --tls`` runs as a subprocess and prints its throwaway CA's file, which ``send
--tls --cafile`` then trusts: the two-command loopback round trip users are shown.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from cli_support import cli_process, run

from trio_sockets.testing import LoopbackServer
from trio_sockets.testing.servers import tls_server_context

BACKENDS = ["trio", "asyncio"]
INSECURE_WARNING = "--insecure: the server's certificate and host name are NOT verified"


@pytest.fixture
def tls_echo() -> Iterator[LoopbackServer]:
    with LoopbackServer("echo", tls=tls_server_context(trustme.CA())) as server:
        yield server


@pytest.mark.timeout(30)
def test_serve_tls_then_send_tls_cafile(capsys: pytest.CaptureFixture[str]) -> None:
    with cli_process("serve", "echo", "--tls") as proc:
        assert proc.stdout is not None
        listening = proc.stdout.readline().strip()
        assert listening.startswith("listening on 127.0.0.1:")
        target = listening.rsplit(" ", 1)[1]
        ca_line = proc.stdout.readline().strip()
        assert ca_line.startswith("TLS certificate from a throwaway CA: ")
        ca_path = ca_line.rsplit(" ", 1)[1]
        assert os.path.isfile(ca_path)
        # The hint: two lines joined by the shell's backslash, the first within 80 columns.
        hint = proc.stdout.readline().rstrip("\n")
        assert hint.startswith("try: trio-sockets send ") and hint.endswith(" \\"), hint
        assert len(hint) <= 80, hint
        assert proc.stdout.readline().strip() == f"--cafile {ca_path}"
        for backend in BACKENDS:
            status, out, err = run(
                capsys, "send", target, "--tls", "--cafile", ca_path, "--data", "hi",
                "--reply", "--json", "--backend", backend,
            )  # fmt: skip
            assert status == 0, err
            report: dict[str, Any] = json.loads(out)
            assert (report["status"], report["reply"]) == ("ok", "hi")
            assert report["tls_version"] in ("TLSv1.2", "TLSv1.3")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert not os.path.exists(ca_path)  # the throwaway CA goes with the server


@pytest.mark.timeout(10)
@pytest.mark.parametrize("backend", BACKENDS)
def test_send_tls_refuses_an_unknown_ca(
    capsys: pytest.CaptureFixture[str], tls_echo: LoopbackServer, backend: str
) -> None:
    status, out, _ = run(
        capsys, "send", tls_echo.target, "--tls", "--data", "x", "--json", "--backend", backend
    )
    assert status == 1
    report: dict[str, Any] = json.loads(out)
    assert report["error"].startswith("SSLCertVerificationError: ")
    assert "certificate verify failed" in report["error"]
    assert tls_echo.bytes_received == 0


@pytest.mark.timeout(10)
def test_send_insecure_warns_every_time(
    capsys: pytest.CaptureFixture[str], tls_echo: LoopbackServer
) -> None:
    for backend in BACKENDS:
        status, out, err = run(
            capsys, "send", tls_echo.target, "--insecure", "--data", "x", "--reply", "--json",
            "--backend", backend,
        )  # fmt: skip
        assert status == 0, err
        assert INSECURE_WARNING in err
        assert json.loads(out)["reply"] == "x"


@pytest.mark.timeout(10)
def test_send_without_tls_says_nothing_of_it(capsys: pytest.CaptureFixture[str]) -> None:
    with LoopbackServer("sink") as server:
        status, out, err = run(capsys, "send", server.target, "--data", "x")
    assert status == 0, err
    assert "tls" not in out and err == ""


@pytest.mark.timeout(10)
def test_send_cafile_that_cannot_be_read_is_bad_usage(
    capsys: pytest.CaptureFixture[str], tls_echo: LoopbackServer
) -> None:
    status, _, err = run(
        capsys, "send", tls_echo.target, "--cafile", "/nonexistent/ca.pem", "--data", "x"
    )
    assert status == 2
    assert "/nonexistent/ca.pem" in err
    assert tls_echo.connections == 0


@pytest.mark.timeout(10)
def test_serve_tls_with_a_mode_that_cannot_is_bad_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = run(capsys, "serve", "blackhole", "--tls")
    assert status == 2
    assert "blackhole" in err and "--tls" in err


@pytest.mark.timeout(20)
def test_send_many_over_tls(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tls_echo: LoopbackServer
) -> None:
    path = tmp_path / "targets.txt"
    path.write_text(f"{tls_echo.target}\n" * 3)
    status, out, err = run(capsys, "send-many", str(path), "--data", "x", "--tls")
    assert status == 1  # the system's CAs do not know the test CA
    reports = [json.loads(line) for line in out.splitlines()]
    assert [r["status"] for r in reports] == ["error"] * 3
    assert all(r["error"].startswith("SSLCertVerificationError") for r in reports)
    status, out, err = run(capsys, "send-many", str(path), "--data", "x", "--insecure")
    assert status == 0, err
    assert "trio-sockets send-many: warning: --insecure" in err
    assert all(json.loads(line)["tls_version"] for line in out.splitlines())
