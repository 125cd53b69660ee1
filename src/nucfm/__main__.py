"""``python -m nucfm``: the same as the ``nucfm`` command."""

import sys

from nucfm.cli import main

sys.exit(main())
