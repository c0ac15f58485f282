"""``python -m trio_sockets``: the same as the ``trio-sockets`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
