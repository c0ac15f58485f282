"""The twin check of ``.ci/twins.py``: it passes explained differences and fails the rest."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

CHECKER = Path(__file__).resolve().parent.parent / ".ci" / "twins.py"


@pytest.fixture(scope="module")
def twins() -> ModuleType:
    spec = importlib.util.spec_from_file_location("twins", CHECKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HEAD = '"""A port."""\n\nimport x\n\n__all__ = ["f"]\n\n\n'


def test_identical_twins_pass(twins: ModuleType) -> None:
    body = "async def f():\n    return 1\n"
    assert twins.check(HEAD + body, HEAD + body) == []


def test_a_known_substitution_passes(twins: ModuleType) -> None:
    trio = HEAD + "async def f():\n    event = trio.Event()\n"
    asyncio = HEAD + "async def f():\n    event = asyncio.Event()\n"
    assert twins.check(trio, asyncio) == []


def test_an_unexplained_difference_fails(twins: ModuleType) -> None:
    trio = HEAD + "async def f():\n    await trio.lowlevel.checkpoint()\n    return 1\n"
    asyncio = HEAD + "async def f():\n    return 2\n"
    problems = twins.check(trio, asyncio)
    assert len(problems) == 1
    assert "return 2" in problems[0]


def test_a_reason_comment_in_the_hunk_or_just_above_it_passes(twins: ModuleType) -> None:
    trio = HEAD + "async def f():\n    return 1\n"
    inline = HEAD + "async def f():\n    return 2  # asyncio: two, for a reason\n"
    above = HEAD + "async def f():\n    # asyncio: two, for a reason\n    return 2\n"
    assert twins.check(trio, inline) == []
    assert twins.check(trio, above) == []


def test_the_docstring_and_imports_may_differ(twins: ModuleType) -> None:
    trio = '"""Trio."""\n\nimport trio\n\n__all__ = ["f"]\n'
    asyncio = '"""asyncio."""\n\nimport asyncio\nimport socket\n\n__all__ = ["f"]\n'
    assert twins.check(trio, asyncio) == []


def test_the_real_ports_pass(twins: ModuleType) -> None:
    trio = twins.TRIO.read_text(encoding="utf-8")
    asyncio = twins.ASYNCIO.read_text(encoding="utf-8")
    assert twins.check(trio, asyncio) == []
