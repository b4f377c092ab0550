"""A run served by its own process, watched and steered through its channel: the monitor of a run it
started (`grok-tui`), or of one started elsewhere (`grok-tui attach`).

The UI shares the GIL with anything in its process, and every millisecond it
spends rendering is taken from training (0.45-0.55 of the bare loop's speed
with the loop in a thread: docs/design.md, "The GIL: why a run trains in a
process of its own"). So a run trains in a process
of its own (runner.py), which serves its channel in the run directory, and the
monitor is a client of that channel like any other: a thread (the UI's worker)
relays frames, at most `FRAME_INTERVAL_S` apart, into a Mailbox, from which the
UI takes the latest frame when it next draws; keys go out as commands, applied
by the trainer between two steps; neither side ever waits on the other.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from grok_tui.config import RunConfig
from grok_tui.loop.record import NOT_FOR_A_SCRIPT, REFUSED_INFO, ScriptConfig
from grok_tui.process import last_words
from grok_tui.runlog import load_run_config
from grok_tui.sources.base import CannotRestart, Curves, Mode, next_seed
from grok_tui.train.channel import ChannelError, Client
from grok_tui.train.control import Command, Control
from grok_tui.train.frames import Mailbox
from grok_tui.train.launch import StartError, reach, wait_until_served
from grok_tui.train.launch import start as start_run
from grok_tui.train.messages import Bye, Frame, Hello, Message, Reply, Unreadable
from grok_tui.train.spec import RunSpec


class AttachedRun:
    """A Source that is a client of a run's channel (channel.Client): its frames into a Mailbox, keys out
    as commands.

    The monitor is this client whether it started the run a moment ago (`start`: the run's own
    process, which it watches start) or attaches to one started elsewhere. Leaving (cancelled) only
    detaches; the run goes on until a Stop command or its step budget.
    """

    can_detach = True
    others: Sequence[Curves] = ()  # shown alone
    label: str | None = None

    def __init__(
        self,
        run_dir: Path,
        process: Any = None,
        client: Client | None = None,
        cfg: RunConfig | ScriptConfig | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.process = process  # a subprocess.Popen while the run's own process is starting, or None
        self.mode = Mode.OWN if process is not None else Mode.ATTACHED
        self._reached = client  # a client already connected (`grok-tui attach` checks with the one it keeps)
        self.cfg = cfg if cfg is not None else load_run_config(self.run_dir)
        self.mailbox = Mailbox()
        self.control: Control | None = Control(_Commands(self))
        self.ended: str | None = None  # the run's goodbye: "finished", "stopped", "fault: ..."
        self.info: dict[str, Any] = {}
        self._client: Client | None = None

    @classmethod
    def start(cls, spec: RunSpec) -> AttachedRun:
        """Start the run of `spec` (its directory made by new_run or resume_run) in a process of its own."""
        assert spec.run_dir is not None
        return cls(spec.run_dir, start_run(spec), cfg=spec.cfg)

    @property
    def config(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def stop(self) -> None:
        assert self.control is not None
        self.control.stop()

    @property
    def refused(self) -> Mapping[str, str]:
        """A preset's run takes every command. A script's refuses a new seed and what its loop has no place
        for; its hello adds what this run's optimizer cannot take (weight decay where no group had one)."""
        if not isinstance(self.cfg, ScriptConfig):
            return {}
        told = self.info.get(REFUSED_INFO)
        said = (
            {str(k): str(v)[:500] for k, v in told.items() if isinstance(k, str) and isinstance(v, str)}
            if isinstance(told, dict)
            else {}
        )
        restart = self.restart_refusal
        assert restart is not None
        return {"restart": restart, **NOT_FOR_A_SCRIPT, **said}

    @property
    def restart_refusal(self) -> str | None:
        if isinstance(self.cfg, ScriptConfig):  # its seed, model and data are the script's, not ours to remake
            return (
                f"{self.cfg.experiment} is a script's run: its loop, seed and data are the script's own, so it "
                "cannot be restarted from here; run the script again (grok-tui run SCRIPT.py)"
            )
        return None

    def restarted(self) -> AttachedRun:
        cfg = self.cfg
        if (why := self.restart_refusal) is not None or not isinstance(cfg, RunConfig):
            raise CannotRestart(why or f"{self.run_dir} is not a preset's run")
        return AttachedRun.start(next_seed(RunSpec(cfg, self.run_dir)))

    def run(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        try:
            client = self._connect(cancelled)
        except ChannelError as e:
            self.mailbox.fail(str(e))
            return
        if client is None:
            return
        self._client = client
        try:
            while not cancelled():
                message = client.receive(0.1)
                if message is not None and not self._take(message):
                    return
        except (EOFError, OSError):
            self.mailbox.fail(self._gone())
        finally:
            client.close()

    def _connect(self, cancelled: Callable[[], bool]) -> Client | None:
        if self._reached is not None:
            return self._reached
        if self.process is not None:
            try:
                served = wait_until_served(self.run_dir, self.process, cancelled=cancelled)
            except StartError as e:
                raise ChannelError(str(e)) from None
            if cancelled():
                return None
            if not served:
                raise ChannelError(f"the run ended before it could be reached; grok-tui watch {self.run_dir} shows it")
        return reach(self.run_dir)

    def _take(self, message: Message | Unreadable) -> bool:
        """Act on one message from the run; False once it has said goodbye, or has sent what this client
        cannot read (said in one line: the monitor shows the run as ended)."""
        match message:
            case Hello(info, rows, snapshot):
                self.info = info
                if snapshot is not None:
                    self.mailbox.put(snapshot, rows)
                elif rows:
                    self.mailbox.put_rows(rows)
            case Frame(snapshot, rows):
                self.mailbox.put(snapshot, rows)
            case Reply(error=None):
                pass
            case Reply(error=str() as error):
                self.mailbox.notice(f"the run refused a command: {error}")
            case Bye(reason):
                self.ended = reason
                if reason != "finished":  # stopped from elsewhere (another terminal, grok-tui stop), or a fault
                    self.mailbox.notice(f"the run has ended: {reason}")
                return False
            case Unreadable(why):
                self.mailbox.fail(
                    f"the run sent a message this grok-tui cannot read ({why}); is the run's grok-tui the same "
                    f"version as this one? grok-tui watch {self.run_dir} reads its files"
                )
                return False
        return True

    def _gone(self) -> str:
        if self.process is not None and self.process.poll() is not None:
            return last_words(self.run_dir) or f"the run's process ended (exit status {self.process.returncode})"
        return "the run's process ended without saying goodbye (killed?); grok-tui ls tells its state"

    def send(self, command: Command) -> None:
        """Send a command (control.py checks it first); a run that has gone is said once, not raised."""
        client = self._client
        if client is None:
            self.mailbox.notice("not connected to the run yet")
            return
        try:
            client.send(command)
        except (OSError, ValueError):
            self.mailbox.notice("the run is not reachable: the command was not sent")


class _Commands:
    """The queue Control puts on: commands go to the run's channel."""

    def __init__(self, session: AttachedRun):
        self.session = session

    def put(self, command: Any) -> None:
        self.session.send(command)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        raise queue.Empty  # commands go out, never in


__all__ = ["AttachedRun"]
