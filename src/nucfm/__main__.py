"""``python -m nucfm``: the same as the ``nucfm`` command."""

import sys

from nucfm.cli import main

if __name__ == "__main__":
    sys.exit(main())
