"""The package's layering, checked from the source with ``ast``: imports go one way only.

    core (_errors, _targets, _checks, _addresses, _reports, _reply, _defaults, _sockets, _hints)
      <- ports (trio_port; asyncio_port, which also has _asyncio_tools and _asyncio_tls)
        <- testing/  <- demo/, bench/  <- cli/ (which nothing imports but __main__)

The core is sans-I/O (as h11 is): no ``await``, no ``async def``, no ``async for/with``.
The checker is tested on made-up modules too, so that it is known to fail when it should.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "trio_sockets"
CORE = frozenset(
    {
        "_errors",
        "_targets",
        "_checks",
        "_addresses",
        "_reports",
        "_reply",
        "_defaults",
        "_sockets",
        "_hints",
    }
)

# What each layer may import from the package (besides itself).
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    "asyncio_tools": frozenset({"core"}),
    "trio_port": frozenset({"core"}),
    "asyncio_port": frozenset({"core", "asyncio_tools"}),
    "root": frozenset({"core", "trio_port"}),  # `import trio_sockets` is the Trio port
    "testing": frozenset({"core", "trio_port", "asyncio_port", "root"}),
    "demo": frozenset({"core", "trio_port", "asyncio_port", "root", "testing"}),
    "bench": frozenset({"core", "trio_port", "asyncio_port", "root", "testing"}),
    "cli": frozenset(
        {"core", "asyncio_tools", "trio_port", "asyncio_port", "root", "testing", "demo", "bench"}
    ),
    "main": frozenset({"cli"}),  # python -m trio_sockets: the only importer of cli
}


def module_names() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ["trio_sockets", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def layer(module: str) -> str:
    """The layer of a dotted module name inside the package."""
    parts = module.split(".")[1:]
    if not parts:
        return "root"
    head = parts[0]
    if head in CORE:
        return "core"
    if head in ("_asyncio_tools", "_asyncio_tls"):
        return "asyncio_tools"
    if head == "__main__":
        return "main"
    if head in {"trio_port", "asyncio_port", "testing", "demo", "bench", "cli"}:
        return head
    raise AssertionError(f"{module} belongs to no layer: add it to tests/test_layout.py")


def imported_modules(module: str, source: str, known: set[str]) -> set[str]:
    """The package modules that ``source`` (the text of ``module``) imports, anywhere in it."""
    is_package = False
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "trio_sockets")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                is_package = module + ".__init__" in known or module == "trio_sockets"
                drop = node.level - 1 if is_package else node.level
                base = base[: len(base) - drop]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            if origin.split(".")[0] != "trio_sockets":
                continue
            # `from . import demo` imports the module trio_sockets.demo, not the package.
            submodules = {f"{origin}.{a.name}" for a in node.names} & known
            found.update(submodules or {origin})
    return found


def violations(module: str, source: str, known: set[str]) -> list[str]:
    """Every import or ``await`` in ``source`` that breaks the layering."""
    mine = layer(module)
    problems = []
    for target in sorted(imported_modules(module, source, known)):
        theirs = layer(target)
        if theirs != mine and theirs not in ALLOWED[mine]:
            problems.append(f"{module} ({mine}) imports {target} ({theirs})")
    if mine == "core":
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.Await, ast.AsyncFunctionDef, ast.AsyncFor, ast.AsyncWith)):
                problems.append(f"{module} (core) has {type(node).__name__} at line {node.lineno}")
    return problems


def known_names() -> set[str]:
    names = set(module_names())
    # Packages are known by their own name and, for relative imports, as X.__init__.
    return names | {f"{n}.__init__" for n, p in module_names().items() if p.name == "__init__.py"}


def test_the_package_is_layered() -> None:
    known = known_names()
    problems = [
        problem
        for module, path in module_names().items()
        for problem in violations(module, path.read_text(encoding="utf-8"), known)
    ]
    assert problems == []


def test_every_core_module_is_there() -> None:
    present = {n.split(".")[1] for n in module_names() if n.count(".") == 1}
    assert CORE - {"_defaults"} <= present
    assert "_core" not in present and "servers" not in present


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "trio_sockets._errors",
            "from .trio_port import Connection",
            "imports trio_sockets.trio_port",
        ),
        (
            "trio_sockets._reports",
            "from . import asyncio_port",
            "imports trio_sockets.asyncio_port",
        ),
        ("trio_sockets._checks", "import trio_sockets.testing", "imports trio_sockets.testing"),
        ("trio_sockets._reply", "async def f() -> None: ...", "has AsyncFunctionDef"),
        ("trio_sockets._targets", "def f(x): return (await x)", "has Await"),
        (
            "trio_sockets.trio_port",
            "from .testing import FakeNetwork",
            "imports trio_sockets.testing",
        ),
        ("trio_sockets.trio_port", "from ._asyncio_tools import move_on_after", "_asyncio_tools"),
        ("trio_sockets.testing.servers", "from ..demo import run", "imports trio_sockets.demo"),
        ("trio_sockets.bench._models", "from ..cli import main", "imports trio_sockets.cli"),
        ("trio_sockets.demo._kit", "from .. import bench", "imports trio_sockets.bench"),
        ("trio_sockets", "from .cli import main", "imports trio_sockets.cli"),
    ],
)
def test_the_checker_catches(module: str, source: str, expected: str) -> None:
    problems = violations(module, source, known_names())
    assert any(expected in p for p in problems), problems


def test_the_checker_allows_the_layers() -> None:
    known = known_names()
    assert violations("trio_sockets.asyncio_port", "from ._asyncio_tools import x", known) == []
    assert violations("trio_sockets.demo._kit", "from ..testing.servers import x", known) == []
    assert violations("trio_sockets.cli", "from ..bench import x\nfrom .. import demo", known) == []
    assert violations("trio_sockets.__main__", "from .cli import main", known) == []
