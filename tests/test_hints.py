"""The install hints: an index install names the package, a checkout names its directory."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

from trio_sockets import _hints
from trio_sockets._hints import install_hint, local_source


class _Distribution:
    """What the hints read of a distribution: its ``direct_url.json``, if any."""

    def __init__(self, direct_url: dict[str, object] | None) -> None:
        self.direct_url = direct_url

    def read_text(self, filename: str) -> str | None:
        assert filename == "direct_url.json"
        return None if self.direct_url is None else json.dumps(self.direct_url)


def _installed(monkeypatch: pytest.MonkeyPatch, direct_url: dict[str, object] | None) -> None:
    def distribution(name: str) -> _Distribution:
        assert name == "trio-sockets"
        return _Distribution(direct_url)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)


def test_an_index_install_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    _installed(monkeypatch, None)  # pip writes no direct_url.json for an index install
    assert install_hint("plot") == "pip install 'trio-sockets[plot]'"
    assert install_hint("uvloop") == "pip install 'trio-sockets[uvloop]'"


def test_an_editable_checkout_names_its_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _installed(monkeypatch, {"url": tmp_path.as_uri(), "dir_info": {"editable": True}})
    assert install_hint("plot") == f"pip install -e '{tmp_path}[plot]'"


def test_a_checkout_installed_as_a_copy_has_no_dash_e(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _installed(monkeypatch, {"url": tmp_path.as_uri(), "dir_info": {}})
    assert install_hint("tls") == f"pip install '{tmp_path}[tls]'"


def test_a_directory_with_a_space_and_a_quote_is_quoted_for_the_shell(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    checkout = tmp_path / "it's here"
    _installed(monkeypatch, {"url": checkout.as_uri(), "dir_info": {"editable": True}})
    assert install_hint("bench") == f"pip install -e '{tmp_path}/it'\"'\"'s here[bench]'"


@pytest.mark.parametrize(
    "direct_url",
    [
        {"url": "https://example.test/trio_sockets-1.0.tar.gz", "archive_info": {}},
        {"url": "git+https://example.test/trio_sockets", "vcs_info": {"vcs": "git"}},
        {"url": "https://example.test/checkout", "dir_info": {}},  # not a local directory
    ],
)
def test_other_direct_installs_name_the_package(
    monkeypatch: pytest.MonkeyPatch, direct_url: dict[str, object]
) -> None:
    _installed(monkeypatch, direct_url)
    assert install_hint("plot") == "pip install 'trio-sockets[plot]'"


def test_a_source_tree_never_installed_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def distribution(name: str) -> _Distribution:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    assert install_hint("plot") == "pip install 'trio-sockets[plot]'"


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"dir_info": 1, "url": "file:///x"}'])
def test_an_unreadable_record_is_no_local_source(text: str) -> None:
    assert local_source(text) is None


def test_this_installation_is_read_for_real() -> None:
    # From a checkout (pip install -e '.[dev]') the hint names its directory; from an
    # index install it names the package.
    source = local_source(_hints._direct_url())
    hint = install_hint("plot")
    if source is None:
        assert hint == "pip install 'trio-sockets[plot]'"
    else:
        assert Path(source[0]).is_dir()
        assert hint.startswith("pip install ") and hint.endswith("[plot]'")
        assert source[0] in hint
