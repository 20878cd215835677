"""``python -m geomem.cli``: the ``geomem`` program."""

import sys

from geomem.cli import main

sys.exit(main())
