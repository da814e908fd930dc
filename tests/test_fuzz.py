"""Graph-rewrite fuzzing (fuzz_graphs.py): random conv/dense chains give stock TF's
results on QCPU in FP32 and, within cosine 0.99, in dynamic INT8. CI draws 100
graphs (about 10 s); `pytest --long` draws 5000."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import clean_env

FUZZ = Path(__file__).parent / "fuzz_graphs.py"


def test_random_graphs_match_stock_tf(installed: Path, long_run: bool) -> None:
    examples, timeout = (5000, 4 * 3600) if long_run else (100, 600)
    result = subprocess.run([sys.executable, str(FUZZ), str(examples)], env=clean_env(),
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-6000:]
    assert "fusions" in result.stdout, result.stdout
