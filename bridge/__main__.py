"""``python -m bridge`` runs the ``feedfed`` command."""

import sys

from bridge.cli import main

sys.exit(main())
