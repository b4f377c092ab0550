"""The monitor's view of a script that `grok-tui run` started: an AttachedRun that also knows the script.

Before the script calls `grok_tui.monitor(...)` there is no channel to attach to: the source says what it
waits for, and `q` then ends the script's process itself (there is no run to ask yet). Once the run serves,
it is any attached run: frames in, keys out, `q` a Stop that the script sees as `m.should_stop`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grok_tui import process
from grok_tui.sources.attached import AttachedRun
from grok_tui.train.channel import ChannelError, Client, is_served
from grok_tui.train.launch import reach
from grok_tui.train.messages import Frame, Hello, Message, Unreadable

# How long the source waits before saying, once, what it waits for.
SAY_WAITING_S = 2.0


class ScriptRun(AttachedRun):
    def __init__(self, run_dir: Path, process: Any, script: str):
        super().__init__(run_dir, process)
        self.script = script
        self.stop_asked = False  # q: the command line ends a script that ignores it
        self._framed = False

    def stop(self) -> None:
        self.stop_asked = True
        if self._client is None and self.process is not None and self.process.poll() is None:
            self.process.terminate()  # no run serves yet: nothing to ask, the launcher stops on SIGTERM
            return
        super().stop()

    def _connect(self, cancelled: Callable[[], bool]) -> Client | None:
        began, said = time.monotonic(), False
        while not is_served(self.run_dir) and not cancelled():
            if self.process.poll() is not None:
                words = process.last_words(self.run_dir)
                raise ChannelError(
                    words
                    or f"{self.script} ended (exit status {self.process.returncode}) without calling "
                    "grok_tui.monitor(model, optimizer); see README, Your own training loop"
                )
            if not said and time.monotonic() - began > SAY_WAITING_S:
                said = True
                self.mailbox.notice(
                    f"waiting for {self.script} to call grok_tui.monitor(model, optimizer) "
                    f"(its output: {self.run_dir / process.OUTPUT}); q ends it"
                )
            time.sleep(0.05)
        if cancelled():
            return None
        return reach(self.run_dir)

    def _take(self, message: Message | Unreadable) -> bool:
        if isinstance(message, Hello) and message.snapshot is None and not message.rows:
            # Said only if no frame follows soon: a loop that logs at once needs no word about it.
            timer = threading.Timer(SAY_WAITING_S, self._say_no_log)
            timer.daemon = True
            timer.start()
        elif isinstance(message, Frame):
            self._framed = True
        return super()._take(message)

    def _say_no_log(self) -> None:
        if not self._framed and self.ended is None:
            self.mailbox.notice(f"{self.script} is running: waiting for its first m.log(step, ...)")


__all__ = ["ScriptRun"]
