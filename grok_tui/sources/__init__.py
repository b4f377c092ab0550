"""What a monitor watches (base.py: the `Source` protocol), and each kind of source, one module each:

- attached.py: a run served by its own process, started here or elsewhere (steerable);
- watched.py: a run directory read as it grows, alone or compared with others (read-only);
- in_process.py: a run trained in the monitor's own process (tests, runs kept in memory);
- manual.py: frames put in by hand (tests, the benchmark).

The sweep monitor's source is the sweep directory's follower (sweep/store.py) with the
sweep's own process (sweep/launch.py).
"""

from grok_tui.sources.base import CannotRestart, Curves, Mode, Source

__all__ = ["CannotRestart", "Curves", "Mode", "Source"]
