"""Every example in ``examples/`` runs standalone and prints what it promises.

Each scenario has a pair, ``NN_name_trio.py`` and ``NN_name_asyncio.py``; both run in a
subprocess with a time limit, must exit 0, and must print the same tell-tale line. The seed,
``00_selectors_seed.py``, is the ancestor of the pairs and stands alone.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# What each pair must print (a regular expression, searched in its standard output).
EXPECTED = {
    # IPv4 starts 0.25 s after IPv6 hangs: at least that, and well under the 0.5 s a
    # second step would take (a loaded machine can add tens of milliseconds).
    "01_happy_eyeballs": r"ok: connected to 127\.0\.0\.1 in 0\.(2[5-9]|[34]\d)\d s",
    "02_all_refused": r"all 3 attempts refused",
    "03_deadline": r"gave up after 0\.5 s: True\nconnect_check_send: timeout",
    "04_backpressure": r"sent 1048576 bytes .*\nthe server read 1048576 bytes",
    "05_reset": r"SendError after exactly \d+ bytes.*\nthe server read 65536 bytes",
    "06_fan_out": r"6 of 8 ok",
    "07_fail_fast": r"(.*: cancelled\n){3}.*: error\n(.*: cancelled\n){2}stopped after 0\.\d+ s",
    "08_cancel": r"cancelled from outside: True\nsockets left open: 0",
}


# Examples with no pair: what each must print.
SINGLES = {
    "00_selectors_seed": r"sent 1048576 bytes in \d+ send\(\) calls.*\n"
    r"the listener read 1048576 bytes",
}


def _pairs() -> list[str]:
    names = {p.stem for p in EXAMPLES.glob("[0-9][0-9]_*.py")} - set(SINGLES)
    return sorted({name.rsplit("_", 1)[0] for name in names})


def test_every_example_comes_in_a_pair_and_is_checked() -> None:
    pairs = _pairs()
    assert pairs == sorted(EXPECTED)
    for pair in pairs:
        assert (EXAMPLES / f"{pair}_trio.py").is_file(), pair
        assert (EXAMPLES / f"{pair}_asyncio.py").is_file(), pair
    for single in SINGLES:
        assert (EXAMPLES / f"{single}.py").is_file(), single


def _run(path: Path, expected: str) -> None:
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=30, cwd=EXAMPLES
    )
    assert done.returncode == 0, done.stderr
    assert re.search(expected, done.stdout), done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.timeout(40)
@pytest.mark.parametrize("port_name", ["trio", "asyncio"])
@pytest.mark.parametrize("pair", sorted(EXPECTED))
def test_example_runs(pair: str, port_name: str) -> None:
    _run(EXAMPLES / f"{pair}_{port_name}.py", EXPECTED[pair])


@pytest.mark.timeout(40)
@pytest.mark.parametrize("name", sorted(SINGLES))
def test_single_example_runs(name: str) -> None:
    _run(EXAMPLES / f"{name}.py", SINGLES[name])
