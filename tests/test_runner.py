"""The command-line runner: RecBole-style overrides, and one-line errors instead of tracebacks."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "run_recbole_basrec.py"), *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model=Casr"], "error: Unknown model 'Casr'. Valid models: a RecBole sequential model name"),
        (["--dataset=nowhere"], "error: Dataset 'nowhere' not found"),
        (["--rate_min=0.8", "--rate_max=0.3"], "error: rate_min (0.8) > rate_max (0.3); swap them."),
        (["--beta=0"], "error: beta must be a number > 0, got 0."),
    ],
)
def test_bad_input_gives_one_line_error_and_exit_2(args, message, tmp_path):
    result = run(*args, f"--data_path={tmp_path}", "--dataset=nowhere" if "--dataset" not in args[0] else args[0])
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("basrec", ["True", "False"])
def test_runner_trains_and_prints_test_metrics(basrec, tiny_data_path, tmp_path):
    result = run(
        "--model=GRU4Rec",
        "--dataset=tiny",
        f"--data_path={tiny_data_path}",
        f"--checkpoint_dir={tmp_path}",
        "--epochs=2",
        f"--basrec={basrec}",
        "--MAX_ITEM_LIST_LENGTH=10",
        "--state=ERROR",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test      : {'hit@5': 0." in result.stdout and "ndcg@20" in result.stdout
    assert "np.float64" not in result.stdout  # plain numbers for the reader
