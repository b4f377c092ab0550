"""The Textual monitor: renders snapshots, sends commands; never trains."""
