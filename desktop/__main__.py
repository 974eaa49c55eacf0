"""`python -m desktop [MODEL]` opens the main window (same as `ncsn-desktop`)."""

import sys

from desktop.app import main

sys.exit(main())
