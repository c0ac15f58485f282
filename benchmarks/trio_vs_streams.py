"""trio_sockets.trio against trio streams and raw trio.socket: a thin wrapper.

Kept so that the old command still works; ``trio-sockets bench`` does the measuring
(each run in a fresh process, models interleaved in rounds, the sink's bytes checked).
This is ``trio-sockets bench concurrent --models trio_sockets.trio,trio-streams,trio.socket``;
extra arguments (``--rounds 3``, ``--json``...) are passed on.
"""

from __future__ import annotations

import sys

from trio_sockets import bench

MODELS = "trio_sockets.trio,trio-streams,trio.socket"

if __name__ == "__main__":
    sys.exit(bench.main(["concurrent", f"--models={MODELS}", *sys.argv[1:]]))
