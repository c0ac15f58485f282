"""trio_sockets.asyncio against raw asyncio (``loop.sock_*``): a thin wrapper.

Kept so that the old command still works; ``trio-sockets bench`` does the measuring
(each run in a fresh process, models interleaved in rounds, the sink's bytes checked).
This is ``trio-sockets bench concurrent --models trio_sockets.asyncio,...,asyncio-raw``
(with uvloop when it is installed); extra arguments (``--rounds 3``, ``--json``...) are
passed on.
"""

from __future__ import annotations

import importlib.util
import sys

from trio_sockets import bench

MODELS = ["trio_sockets.asyncio", "asyncio-raw", "asyncio-streams"]
if importlib.util.find_spec("uvloop") is not None:
    MODELS.insert(1, "trio_sockets.asyncio+uvloop")

if __name__ == "__main__":
    sys.exit(bench.main(["concurrent", f"--models={','.join(MODELS)}", *sys.argv[1:]]))
