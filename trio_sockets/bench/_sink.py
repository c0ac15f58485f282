"""The benchmark's sink process: a loopback sink and a blackhole, away from the models.

``trio-sockets bench`` starts ``python -m trio_sockets.bench._sink HOST``. It prints one
JSON line, ``{"port": ..., "blackhole_port": ...}``, then answers one command per line
on stdin:

- ``wait N SECONDS``: wait until the sink has received at least ``N`` bytes in all (or
  the seconds passed), then print ``{"bytes_received": ..., "cpu_s": ...}``; ``cpu_s``
  is this process's CPU time so far, so that the parent can tell whether the sink kept up.

End of input stops it. Its own process, so that the sink never competes with a model for
the GIL or for an event loop, only for the machine's cores.
"""

from __future__ import annotations

import json
import sys
import time

from ..testing.servers import LoopbackServer, blackhole_listener

# Connections the kernel may queue for the sink to accept (capped by net.core.somaxconn).
# LoopbackServer listens with 1024; a model that runs ahead of the sink by more than that
# has its SYNs dropped and stalls for the 1 s retransmission, so that the sink would set
# the pace. Deep enough for every connection of a default run.
BACKLOG = 8192


def main() -> int:
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    holes = blackhole_listener(host)
    with LoopbackServer("sink", host, backlog=BACKLOG) as server:
        try:
            port = holes[0].getsockname()[1]
            print(json.dumps({"port": server.port, "blackhole_port": port}), flush=True)
            for line in sys.stdin:
                command, *words = line.split()
                if command != "wait":
                    print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)
                    continue
                server.wait_bytes(int(words[0]), float(words[1]))
                answer = {"bytes_received": server.bytes_received, "cpu_s": time.process_time()}
                print(json.dumps(answer), flush=True)
        finally:
            for sock in holes:
                sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
