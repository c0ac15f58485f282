"""``python -m trio_sockets.bench``: the ``trio-sockets bench`` command on its own."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
