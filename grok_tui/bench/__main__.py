"""`python -m grok_tui.bench` (the flags and what each runs: command.py)."""

import sys

from grok_tui.bench.command import main

if __name__ == "__main__":
    sys.exit(main())
