"""`python -m grok_tui.bench`: what the monitor costs the training loop, and what each pane costs.

Why: the monitor shares the machine with the training loop. A loop in a thread of
the UI process runs at 0.45-0.55 of its bare speed, because every millisecond of
Python spent rendering holds the GIL (docs/design.md, "The GIL: why a run trains in
a process of its own"); so the loop runs in a child process and the UI draws the
newest frame, each pane at its own pace (grok_tui/ui/pacing.py). The goals: training
with the monitor open runs at >= 0.97 of `grok-tui --headless`; the UI takes at most
a quarter of a core; at 120x40 it writes at most 50 KB/s to the terminal while
training and under 1 KB/s paused or finished. This prints the figures to check them:

1. Training steps/s, in one run, on the same experiment and device:
   - headless (headless.py): the trainer built exactly as `grok-tui --headless`
     builds it (new_run(cfg, run_dir).build(), then trainer.run(callback)), in
     this process;
   - monitor (tmux WxH) (terminal.py): the real app in a real terminal (a
     detached tmux session of each size in --sizes), under `script`, which keeps
     every byte the app writes to its terminal; quit with `q` as a user would;
   - monitor (run_test) (run_test.py): the same app under Textual's headless
     driver, in this process, which is what CI-like machines without a terminal
     run (it composes every frame but skips writing the escape sequences out).
   Each rate comes from the run directory's metrics rows over the same window
   of training time, [WARMUP_S, WARMUP_S + seconds] (rates.py), so start-up
   (imports, the child process, the first evaluations) is left out of every mode
   alike. Over the same window the CPU time of each process is read from /proc
   (cpu.py): with the loop in its own process, the question is whether the UI
   leaves it a core.
2. Bytes per second written to the terminal (what an SSH link must carry), at
   each size: over the same training window; then paused (space), and in a
   second, short run once it has finished, over IDLE_WINDOW_S after
   IDLE_SETTLE_S (terminal.py). Colour is 24-bit (COLORTERM=truecolor), the
   dearest kind.
3. Milliseconds from a key's command leaving a client to a frame that shows it
   applied, over a run's channel (latency.py).
4. Milliseconds per frame of each pane (panes.py): a realistic snapshot stream
   (the experiment trained for ~2,000 steps) is fed, one new snapshot per frame,
   to the app under run_test; each pane's `show()` is timed together with the
   rendering it triggers (the panes' widgets cache their render until new data
   arrives, so the work is forced the way Textual's compositor would do it).
   This runs in a fresh process, so that its heap (and so the cost of Python's
   garbage collector, shown on a row of its own) is the app's, not this one's.
   Each pane's time at the rate it is drawn (grok_tui/ui/pacing.py) sums to the
   share of one core the panes take; the tmux rows measure the whole UI process.

command.py reads the flags and picks the benchmark: this one (monitor.py, printed
by report.py), `--sweep` (sweep.py), `--system` (system.py) or `--loop` (loop.py:
what `grok_tui.monitor` costs a training loop of your own).

It is a benchmark, not a test: it prints figures and exits 0 (2 on a bad flag).
Heavy imports (torch, textual) stay inside functions: the pane profiler's process
is started with "spawn", which imports its module afresh, and its heap should be
the app's alone.
"""
