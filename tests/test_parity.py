"""The two ports are twins: this fails the build when they drift apart.

Like httpcore's unasync check, but for hand-written twins: the same public names, the
same top-level definitions (public and private) in the same order, the same signatures
and the same docstrings. What may differ is listed here, with the reason.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from trio_sockets import asyncio_port, trio_port

PORTS = {"trio": trio_port, "asyncio": asyncio_port}

# Top-level definitions only one port has, and why.
PORT_ONLY: dict[str, set[str]] = {
    # trio: unwraps an exception group of Cancelled; asyncio's TaskGroup does it itself.
    "trio": {"_bare_cancelled", "_BrokenSendError", "_tls_failure", "_BROKEN_TYPES", "_broken"},
    # asyncio: a TaskGroup is stopped early by a private exception (or, from 3.15,
    # TaskGroup.cancel()): the race's winner with _Won, the fan-out with _FailFast and
    # _ConsumerLeft. Trio cancels the nursery's scope instead.
    "asyncio": {"_Won", "_FailFast", "_ConsumerLeft", "_stop"},
}
# Functions that are async in one port and plain in the other (the framework's call is
# async in Trio and a plain socket call in asyncio).
SYNC_IN_ASYNCIO = {"_bind_local"}


def _definitions(module: ModuleType) -> list[str]:
    """Names of the module's top-level functions, classes and assignments, in order."""
    tree = ast.parse(Path(inspect.getfile(module)).read_text(encoding="utf-8"))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names.extend(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return names


def _functions(module: ModuleType) -> dict[str, Any]:
    return {
        name: obj
        for name, obj in vars(module).items()
        if inspect.isfunction(obj) and obj.__module__ == module.__name__
    }


def _signature(func: Any) -> list[tuple[str, str, str, str]]:
    """Parameter names, kinds, defaults and annotations (strings, as written)."""
    sig = inspect.signature(func)
    params = [
        (p.name, p.kind.name, repr(p.default), str(p.annotation)) for p in sig.parameters.values()
    ]
    return [*params, ("return", "", "", str(sig.return_annotation))]


def test_same_public_names() -> None:
    assert trio_port.__all__ == asyncio_port.__all__
    for name in trio_port.__all__:
        assert hasattr(trio_port, name) and hasattr(asyncio_port, name), name


def test_shared_classes_are_the_same_objects() -> None:
    # Reports, targets and errors come from the shared core: one type for both ports.
    for name in trio_port.__all__:
        if name not in (
            "Connection",
            "connect_check_send",
            "open_connection",
            "send_to_many",
            "stream_to_many",
        ):
            assert getattr(trio_port, name) is getattr(asyncio_port, name), name


def test_misuse_errors_exist_in_both() -> None:
    for port in PORTS.values():
        assert issubclass(port.BusyError, Exception)
        assert issubclass(port.ClosedError, Exception)
        assert port.BusyError is not port.ClosedError


def test_same_definitions_in_the_same_order() -> None:
    trio_defs, asyncio_defs = _definitions(trio_port), _definitions(asyncio_port)
    assert set(trio_defs) - set(asyncio_defs) <= PORT_ONLY["trio"] | {"_IP_BIND_ADDRESS_NO_PORT"}
    only_asyncio = set(asyncio_defs) - set(trio_defs)
    assert only_asyncio <= PORT_ONLY["asyncio"] | {"_IP_BIND_ADDRESS_NO_PORT"}
    common = set(trio_defs) & set(asyncio_defs)
    assert [n for n in trio_defs if n in common] == [n for n in asyncio_defs if n in common]
    # The private helpers the diff lines up on are all there.
    for name in ("_now", "_resolve", "_open", "_start", "_attempt", "_bind_local", "_race"):
        assert name in common, name
    assert {"_workflow", "_read_reply"} <= common


def test_port_only_names_are_listed_and_real() -> None:
    for port_name, names in PORT_ONLY.items():
        for name in names:
            assert name in _definitions(PORTS[port_name]), (port_name, name)


@pytest.mark.parametrize("name", sorted(_functions(trio_port)))
def test_same_signature_and_kind(name: str) -> None:
    trio_func = _functions(trio_port)[name]
    if name in PORT_ONLY["trio"]:
        pytest.skip("trio-only helper")
    asyncio_func = _functions(asyncio_port)[name]
    assert _signature(trio_func) == _signature(asyncio_func)
    if name in SYNC_IN_ASYNCIO:
        assert inspect.iscoroutinefunction(trio_func)
        assert not inspect.iscoroutinefunction(asyncio_func)
    else:
        assert inspect.iscoroutinefunction(trio_func) == inspect.iscoroutinefunction(asyncio_func)


@pytest.mark.parametrize("name", sorted(_functions(trio_port)))
def test_same_function_docstring(name: str) -> None:
    if name in PORT_ONLY["trio"]:
        pytest.skip("trio-only helper")
    assert _functions(trio_port)[name].__doc__ == _functions(asyncio_port)[name].__doc__


def test_same_connection_class_docstring() -> None:
    assert trio_port.Connection.__doc__ == asyncio_port.Connection.__doc__


def _members(cls: type) -> dict[str, Any]:
    return {
        name: obj
        for name, obj in vars(cls).items()
        if inspect.isfunction(obj) or isinstance(obj, property)
    }


def test_connection_methods_in_the_same_order() -> None:
    assert list(_members(trio_port.Connection)) == list(_members(asyncio_port.Connection))


@pytest.mark.parametrize("name", sorted(_members(trio_port.Connection)))
def test_connection_method_twins(name: str) -> None:
    trio_method = _members(trio_port.Connection)[name]
    asyncio_method = _members(asyncio_port.Connection)[name]
    assert trio_method.__doc__ == asyncio_method.__doc__
    if inspect.isfunction(trio_method):
        assert _signature(trio_method) == _signature(asyncio_method)
        assert inspect.iscoroutinefunction(trio_method) == inspect.iscoroutinefunction(
            asyncio_method
        )


def test_section_banners_match() -> None:
    def banners(module: ModuleType) -> list[str]:
        lines = Path(inspect.getfile(module)).read_text(encoding="utf-8").splitlines()
        return [
            lines[i + 1]
            for i, line in enumerate(lines[:-1])
            if line.startswith("# ----") and not lines[i + 1].startswith("# ----")
        ]

    assert banners(trio_port) == banners(asyncio_port)
    assert len(banners(trio_port)) >= 4


def test_each_port_imports_only_its_framework() -> None:
    def imported(module: ModuleType) -> set[str]:
        tree = ast.parse(Path(inspect.getfile(module)).read_text(encoding="utf-8"))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        return names

    assert "trio" in imported(trio_port) and "asyncio" not in imported(trio_port)
    assert "asyncio" in imported(asyncio_port) and "trio" not in imported(asyncio_port)


def _copied_definitions(trio_source: str, asyncio_source: str) -> list[str]:
    """Synchronous top-level definitions that are the same, word for word, in both ports.

    Async functions may be twins word for word (the workflow reads the same on both ports,
    the framework being in what it awaits), and so may a plain function that uses a name
    each port defines its own way (a clock, a fan-out); any other plain function or
    constant needs no port.
    """

    def code(source: str) -> dict[str, ast.AST]:
        found: dict[str, ast.AST] = {}
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found[node.name] = node
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name) and target.id != "__all__":
                    found[target.id] = node
        return found

    trio_code, asyncio_code = code(trio_source), code(asyncio_source)
    same = {
        name
        for name, node in trio_code.items()
        if name in asyncio_code and ast.unparse(node) == ast.unparse(asyncio_code[name])
    }
    differing = (set(trio_code) | set(asyncio_code)) - same
    return sorted(
        name
        for name in same
        if not isinstance(trio_code[name], ast.AsyncFunctionDef)
        and not {n.id for n in ast.walk(trio_code[name]) if isinstance(n, ast.Name)} & differing
    )


def test_no_definition_is_copied_into_both_ports() -> None:
    # Framework-free helpers live once, in the core (_sockets and the rest), so that a fix
    # lands in both ports at once.
    sources = [Path(inspect.getfile(m)).read_text(encoding="utf-8") for m in PORTS.values()]
    assert _copied_definitions(*sources) == []


def test_a_copied_definition_is_found() -> None:
    helper = "LIMIT = 2\n\ndef _helper(fd: int) -> bool:\n    return fd > LIMIT\n"
    assert _copied_definitions(helper, helper) == ["LIMIT", "_helper"]
    # A twin that uses a name each port defines its own way is no copy.
    assert _copied_definitions(helper, helper.replace("2", "3")) == []
