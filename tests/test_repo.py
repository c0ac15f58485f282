"""The repository keeps its promises: README commands, CI, packaging."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import trio_sockets

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _shell_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, re.S)]


@pytest.mark.timeout(5)
def test_readme_gives_the_two_setup_commands() -> None:
    blocks = _shell_blocks(README)
    demo = [b for b in blocks if b.endswith("trio-sockets demo")]
    tests = [b for b in blocks if b.endswith("-m pytest")]
    assert demo and tests, blocks
    assert "pip install" in demo[0] and "pip install" in tests[0]


@pytest.mark.timeout(5)
def test_ci_runs_exactly_the_readme_test_command() -> None:
    (test_command,) = [b for b in _shell_blocks(README) if b.endswith("-m pytest")]
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"{test_command} || status=$?" in ci
    # pytest's exit code 5 (no tests collected) must fail the run.
    assert '"$status" -eq 5' in ci


@pytest.mark.timeout(5)
def test_version_and_dependencies_agree() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == trio_sockets.__version__
    assert any(dep.replace(" ", "").startswith("trio>=0.31") for dep in project["dependencies"])
    assert project["scripts"]["trio-sockets"] == "trio_sockets.cli:main"
    assert (ROOT / "trio_sockets" / "py.typed").exists()


@pytest.mark.timeout(5)
def test_changelog_mentions_the_current_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {trio_sockets.__version__}" in changelog
