import shutil
import subprocess
import sys
from pathlib import Path


def test_training_core_imports_no_ui():
    """import-linter's contract (pyproject.toml): the core never imports textual or rich."""
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    proc = subprocess.run(
        [lint, "--config", "pyproject.toml"], capture_output=True, text=True, cwd=Path(__file__).parent.parent
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout
