import shutil
import subprocess
import sys
from pathlib import Path


def test_the_layers_keep_their_contracts():
    """import-linter's contracts (pyproject.toml): the core never imports textual or rich, and the screen reaches
    the core only through a Source and the control commands."""
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    proc = subprocess.run(
        [lint, "--config", "pyproject.toml"], capture_output=True, text=True, cwd=Path(__file__).parent.parent
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 kept, 0 broken" in proc.stdout
    assert "The training core knows nothing of the screen KEPT" in proc.stdout
    assert "The screen reaches the core only through a Source and the control commands KEPT" in proc.stdout
