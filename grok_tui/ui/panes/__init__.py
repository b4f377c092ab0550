"""The monitor's panes."""
