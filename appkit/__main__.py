"""``python -m appkit`` runs the ``appkit`` command."""

import sys

from appkit.cli import main

sys.exit(main())
