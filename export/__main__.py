"""`python -m export`: the batch exporter (see export/cli.py)."""

import sys

from export.cli import main

sys.exit(main())
