"""Run the command line as `python -m <package> COMMAND`."""

import sys

from .cli import main

sys.exit(main())
