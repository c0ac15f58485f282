"""The benchmark's sink process: a loopback sink and a blackhole, away from the models.

``trio-sockets bench`` starts ``python -m trio_sockets.bench._sink HOST [--more-ports N]
[--tls-cafile PATH]``. It prints one JSON line, ``{"port": ..., "blackhole_port": ...,
"more_ports": [...], "tls_port": ...}`` (more sinks for scale; a TLS sink, whose CA it
writes to PATH, for tls), then answers one command per line on stdin:

- ``wait N SECONDS``: wait until the sink has received at least ``N`` bytes in all (or
  the seconds passed), every sink counted, then print ``{"bytes_received": ...,
  "cpu_s": ...}``; ``cpu_s`` is this process's CPU time so far, so that the parent can
  tell whether the sink kept up.

End of input stops it. Its own process, so that the sink never competes with a model for
the GIL or for an event loop, only for the machine's cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time

from ..testing.servers import LoopbackServer, blackhole_listener, tls_server_context

# Connections the kernel may queue for the sink to accept (capped by net.core.somaxconn).
# LoopbackServer listens with 1024; a model that runs ahead of the sink by more than that
# has its SYNs dropped and stalls for the 1 s retransmission, so that the sink would set
# the pace. Deep enough for every connection of a default run.
BACKLOG = 8192


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trio_sockets.bench._sink")
    parser.add_argument("host", nargs="?", default="127.0.0.1")
    parser.add_argument("--more-ports", type=int, default=0, help="more sinks, for scale")
    parser.add_argument("--tls-cafile", help="a TLS sink too; write its CA's PEM here")
    args = parser.parse_args(argv)
    holes = blackhole_listener(args.host)
    with contextlib.ExitStack() as stack:
        for sock in holes:
            stack.callback(sock.close)
        servers = [LoopbackServer("sink", args.host, backlog=BACKLOG)]
        servers += [
            LoopbackServer("sink", args.host, backlog=BACKLOG) for _ in range(args.more_ports)
        ]
        tls_port = 0
        if args.tls_cafile:
            import trustme

            ca = trustme.CA()
            ca.cert_pem.write_to_path(args.tls_cafile)
            context = tls_server_context(ca, args.host)
            servers.append(LoopbackServer("sink", args.host, backlog=BACKLOG, tls=context))
            tls_port = servers[-1].port
        for server in servers:
            stack.enter_context(server)
        info = {
            "port": servers[0].port,
            "blackhole_port": holes[0].getsockname()[1],
            "more_ports": [server.port for server in servers[1 : 1 + args.more_ports]],
            "tls_port": tls_port,
            "cpu_s": time.process_time(),  # start-up, not to be counted against a model
        }
        print(json.dumps(info), flush=True)
        for line in sys.stdin:
            command, *words = line.split()
            if command != "wait":
                print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)
                continue
            count, timeout = int(words[0]), float(words[1])
            deadline = time.monotonic() + timeout
            while (received := sum(s.bytes_received for s in servers)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                # Wait on the server that has not got its share yet (one is enough to
                # learn of progress; the loop sums them again).
                servers[0].wait_bytes(servers[0].bytes_received + 1, min(left, 0.05))
            answer = {"bytes_received": received, "cpu_s": time.process_time()}
            print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
