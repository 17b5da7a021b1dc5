"House rules a newcomer can run: `ruff check` with the rules in pyproject.toml passes."
import shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).parent.parent

def test_the_code_passes_ruff():
    ruff = shutil.which('ruff', path=str(Path(sys.executable).parent)) or shutil.which('ruff')
    if ruff is None: pytest.fail("ruff is not installed: it is in the dev extra (pip install -e '.[dev]')")
    r = subprocess.run([ruff, 'check', '--output-format', 'concise', '.'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
