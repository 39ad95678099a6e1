"""`python -m llmexec`: the command line (see adapters/cli.py)."""

import sys

from .adapters.cli import main

sys.exit(main())
