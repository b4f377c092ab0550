"""Screens from a fixed snapshot stream, compared with stored SVGs (pytest-textual-snapshot).

Textual is pinned exactly in pyproject.toml: its rendering changes between
versions. Update the stored screens with `pytest --snapshot-update` after
reviewing the report.
"""

import pytest

from grok_tui.sources.manual import ManualSource
from grok_tui.ui.app import MonitorApp
from tests.conftest import wait_for
from tests.fakes import synthetic_run


async def drawn(pilot):
    app = pilot.app
    await wait_for(pilot, lambda: app.home.snapshot is not None)
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_monitor_screen(snap_compare, size):
    rows, snapshot = synthetic_run()
    assert snap_compare(MonitorApp.for_run(ManualSource(rows, snapshot)), terminal_size=size, run_before=drawn)


def test_monitor_screen_sorted_log_x_light(snap_compare):
    rows, snapshot = synthetic_run()
    app = MonitorApp.for_run(ManualSource(rows, snapshot), theme="light")
    assert snap_compare(app, terminal_size=(120, 40), press=["f", "g"], run_before=drawn)
