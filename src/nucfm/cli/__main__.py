"""``python -m nucfm.cli`` (and ``torchrun -m nucfm.cli``): the ``nucfm`` command."""

import sys

from nucfm.cli import main

sys.exit(main())
