"""benchmarks/recurrent.py runs as a user runs it (--quick, into a folder of our choosing) and
writes the timings of every candidate and of the fresh-process embedding backward, with the
machine. Timings are not checked: they depend on the machine and its load."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.worktree import REPO_ROOT


def test_recurrent_benchmark_writes_every_candidate_with_the_machine(tmp_path):
    done = subprocess.run([sys.executable, "benchmarks/recurrent.py", "--quick", "--out", str(tmp_path)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "/ nn.GRU" in done.stdout and "first call s" in done.stdout
    result = json.loads((tmp_path / "recurrent.json").read_text())
    assert result["suite"] == "recurrent" and result["quick"] is True
    assert {"machine", "cpu_model", "date"} <= set(result["machine"])
    assert set(result["training_step"]) == {"nn.GRU", "nn.LSTM", "nn.GRU, dropout 0.2 + recurrent 0.2",
                                            "GRUCell unrolled", "LSTMCell unrolled"}
    assert all(t["median_ms"] > 0 for t in result["training_step"].values())
    assert len(result["embedding_first_backward_s"]) == len(result["embedding_second_backward_s"]) == 1


def test_recurrent_benchmark_refuses_to_commit_quick_numbers():
    done = subprocess.run([sys.executable, "benchmarks/recurrent.py", "--quick", "--update-results"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "would commit smoke-test numbers" in done.stderr
