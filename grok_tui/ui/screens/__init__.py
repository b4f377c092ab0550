"""Modal screens: help, value input."""
