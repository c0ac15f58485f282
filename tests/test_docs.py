"""The documentation keeps its promises: README.md and docs/ are short, linked and runnable.

Every ```python block in README.md and docs/*.md runs as written, as a script in a fresh
interpreter with a time limit, offline on loopback (a block that needs a server starts
one itself). A ```python test block is a pytest module and runs under pytest. A fragment
that cannot run on its own is marked ```python no-run; it must still compile, and such
fragments stay rare.
"""

from __future__ import annotations

import ast
import ipaddress
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
README_MAX_BYTES = 10 * 1000
MAX_NO_RUN = 3  # fragments that do not run: keep them rare
BLOCK_TIMEOUT = 60.0  # seconds for one block, in its own interpreter

# Addresses reserved for documentation (RFC 5737, RFC 3849): safe in examples that only
# give them to a fake network, since nothing routes them.
DOCUMENTATION_NETS = [
    ipaddress.ip_network(net)
    for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    info: str  # the fence's info string, e.g. "python" or "python no-run"
    code: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def flags(self) -> list[str]:
        return self.info.split()[1:]


_FENCE = re.compile(r"^```(\S*[^\n]*)\n(.*?)^```\s*$", re.S | re.M)


def _blocks(page: Path) -> list[Block]:
    text = page.read_text()
    return [
        Block(page, text.count("\n", 0, m.start()) + 1, m.group(1).strip(), m.group(2))
        for m in _FENCE.finditer(text)
    ]


ALL_BLOCKS = [block for page in PAGES for block in _blocks(page)]
PYTHON = [b for b in ALL_BLOCKS if b.info.split()[:1] == ["python"]]
RUNNABLE = [b for b in PYTHON if "no-run" not in b.flags]


def test_the_pages_exist() -> None:
    names = {page.name for page in PAGES}
    for name in (
        "README.md",
        "cli.md",
        "library.md",
        "two-models.md",
        "testing.md",
        "benchmark.md",
        "platforms.md",
    ):
        assert name in names, name


def test_readme_is_a_front_door() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move the long parts to docs/"


def test_python_blocks_are_tagged_known_ways() -> None:
    for block in PYTHON:
        assert set(block.flags) <= {"no-run", "test"}, block.id
    no_run = [b.id for b in PYTHON if "no-run" in b.flags]
    assert len(no_run) <= MAX_NO_RUN, no_run
    # Every page that teaches code has something that runs.
    assert RUNNABLE


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.id)
def test_python_block_compiles(block: Block) -> None:
    compile(block.code, block.id, "exec")


def _string_constants(code: str) -> list[str]:
    return [
        node.value
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def _host_and_port(text: str) -> tuple[str, int | None]:
    match = re.fullmatch(r"\[([^\]]+)\]:(\d+)", text) or re.fullmatch(r"([^:\s]+):(\d+)", text)
    if match:
        return match.group(1), int(match.group(2))
    return text, None


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.id)
def test_python_block_touches_only_loopback(block: Block) -> None:
    """No example may reach a real address off loopback, or a privileged port."""
    for text in _string_constants(block.code):
        host, port = _host_and_port(text)
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            # A name: only localhost, or a reserved name that no resolver answers.
            if port is not None:
                assert host == "localhost" or host.endswith((".test", ".example")), (
                    block.id,
                    text,
                )
            continue
        documentation = any(address in net for net in DOCUMENTATION_NETS)
        assert address.is_loopback or documentation, (block.id, text)
        if documentation:
            assert "FakeNetwork" in block.code, (block.id, text)
        if address.is_loopback and port is not None:
            assert port == 0 or port >= 1024, (block.id, text)


def _run(block: Block, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / ("test_block.py" if "test" in block.flags else "block.py")
    script.write_text(block.code)
    if "test" in block.flags:
        # looptime's pytest plugin expects pytest-asyncio (see pyproject.toml's addopts).
        plugins = ["-p", "no:cacheprovider", "-p", "no:looptime_plugin"]
        command = [sys.executable, "-m", "pytest", "-q", *plugins, str(script)]
    else:
        command = [sys.executable, str(script)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=BLOCK_TIMEOUT, cwd=tmp_path
    )


@pytest.mark.timeout(BLOCK_TIMEOUT + 10)
@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.id)
def test_python_block_runs(block: Block, tmp_path: Path) -> None:
    done = _run(block, tmp_path)
    assert done.returncode == 0, f"{block.id}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, f"{block.id}\n{done.stderr}"


def test_links_between_pages_resolve() -> None:
    for page in PAGES:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            assert path.exists(), f"{page.relative_to(ROOT)} links to missing {target}"


def test_readme_links_every_page_of_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in DOCS.glob("*.md"):
        assert f"docs/{page.name}" in readme, page.name


def test_docs_speak_of_the_project_alone() -> None:
    """No page cites documents that are not in the repository, or internal goals."""
    outside = "SPEC" + ".md"
    for page in PAGES:
        text = page.read_text()
        assert outside not in text, page.name
        assert not re.search(r"\bgoals?\b", text, re.I), page.name
        assert not re.search(r"\bthe issue\b", text, re.I), page.name


def test_the_repository_cites_no_outside_document() -> None:
    outside = "SPEC" + ".md"
    for path in [
        *ROOT.glob("trio_sockets/**/*.py"),
        *ROOT.glob("tests/*.py"),
        *ROOT.glob("examples/*.py"),
        ROOT / "CHANGELOG.md",
    ]:
        assert outside not in path.read_text(), path.relative_to(ROOT)


def _command_lines() -> list[tuple[str, list[str]]]:
    """Every ``$ trio-sockets ...`` line of a console block, as (where, argv)."""
    found = []
    for block in ALL_BLOCKS:
        if block.info != "console":
            continue
        for offset, line in enumerate(block.code.splitlines(), start=1):
            if not line.startswith("$ "):
                continue
            shell = line[len("$ ") :].split(" #", 1)[0]  # the comment off
            for part in re.split(r"\|\|?|;|&&?", shell):  # pipes and lists
                command = re.split(r"\s\d?>", part.strip(), maxsplit=1)[0]  # redirections
                if command.startswith("trio-sockets "):
                    found.append((f"{block.id}+{offset}", shlex.split(command)[1:]))
    return found


COMMAND_LINES = _command_lines()


@pytest.mark.parametrize(("where", "argv"), COMMAND_LINES, ids=[w for w, _ in COMMAND_LINES])
def test_console_commands_take_the_documented_options(where: str, argv: list[str]) -> None:
    """The command lines shown in the docs are ones the command accepts as written."""
    from trio_sockets.cli import build_parser

    parser = build_parser(argv)
    try:
        parser.parse_args(argv)
    except SystemExit as exc:  # argparse's way to refuse a command line
        pytest.fail(f"{where}: trio-sockets {shlex.join(argv)} is refused (exit {exc.code})")
