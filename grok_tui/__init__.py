"""grok-tui: watch and steer grokking live in the terminal."""

__version__ = "0.1.0"
