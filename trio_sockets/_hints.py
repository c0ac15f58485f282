"""How to install an optional extra, said the way that works for this installation.

Installed from an index, the hint is ``pip install 'trio-sockets[plot]'``. Installed
from a local directory (a checkout), that would fetch a different copy from the index,
so the hint names the directory instead: ``pip install -e '/path/to/checkout[plot]'``
when the install is editable, without ``-e`` when it is not. pip records where a
distribution came from in its ``direct_url.json`` (PEP 610); ``dir_info`` marks a local
directory.
"""

from __future__ import annotations

import importlib.metadata
import json
import shlex
import urllib.parse
import urllib.request
from typing import Final

__all__ = ["DISTRIBUTION", "install_hint", "local_source"]

DISTRIBUTION: Final = "trio-sockets"


def _direct_url() -> str | None:
    """The text of this distribution's ``direct_url.json``, or None if it has none."""
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None  # run from a source tree that was never installed
    return distribution.read_text("direct_url.json")


def local_source(direct_url: str | None) -> tuple[str, bool] | None:
    """The local directory a distribution was installed from, and whether editably.

    Args:
        direct_url: the text of the distribution's ``direct_url.json`` (PEP 610), or None.

    Returns:
        ``(directory, editable)``, or None when it was not installed from a local
        directory (from an index, an archive or a VCS URL), or the record is unreadable.
    """
    if direct_url is None:
        return None
    try:
        record = json.loads(direct_url)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("dir_info"), dict):
        return None
    url = urllib.parse.urlparse(str(record.get("url", "")))
    if url.scheme != "file":
        return None
    directory = urllib.request.url2pathname(url.path)
    return directory, record["dir_info"].get("editable") is True


def install_hint(extra: str) -> str:
    """The ``pip install`` command that adds ``extra`` to this installation.

    Args:
        extra: an optional-dependency group of the package, e.g. ``"plot"``.

    Returns:
        ``pip install 'trio-sockets[plot]'``, or for a checkout
        ``pip install -e '/path/to/checkout[plot]'`` (``-e`` only if it is editable).
    """
    source = local_source(_direct_url())
    if source is None:
        return f"pip install {shlex.quote(f'{DISTRIBUTION}[{extra}]')}"
    directory, editable = source
    return f"pip install {'-e ' if editable else ''}{shlex.quote(f'{directory}[{extra}]')}"
