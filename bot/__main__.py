"""`python -m bot` runs the `prepbot` command line."""

import sys

from bot.cli import main

sys.exit(main())
