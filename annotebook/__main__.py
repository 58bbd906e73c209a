"""``python -m annotebook``: the command line (`annotebook.cli`); ``--version`` answers without importing pandas."""

import sys

from .cli import main

sys.exit(main())
