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
    dataset = [] if any(a.startswith("--dataset") for a in args) else ["--dataset=nowhere"]
    result = run(*args, f"--data_path={tmp_path}", *dataset)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("basrec", ["True", "False"])
def test_runner_trains_and_prints_test_metrics(basrec, tiny_data_path, tmp_path):
    result = run(
        "--model=GRU4Rec",
        "--dataset=tiny",
        f"--data_path={tiny_data_path}",
        f"--checkpoint_dir={tmp_path}",
        "--stage1_epochs=1",
        "--epochs=2",
        f"--basrec={basrec}",
        "--MAX_ITEM_LIST_LENGTH=10",
        "--state=ERROR",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test      : {'hit@5': 0." in result.stdout and "ndcg@20" in result.stdout
    assert "np.float64" not in result.stdout  # plain numbers for the reader


def test_the_console_shows_one_line_per_epoch_and_the_log_file_the_rest(tiny_data_path, tmp_path):
    result = run("--dataset=tiny", f"--data_path={tiny_data_path}", f"--checkpoint_dir={tmp_path / 'saved'}",
                 "--stage1_epochs=1", "--epochs=2", "--MAX_ITEM_LIST_LENGTH=10", "--hidden_size=16",
                 "--inner_size=32", "--n_layers=1", "--n_heads=1", "--use_gpu=False", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    console = (result.stderr + result.stdout).splitlines()
    epochs = [line.split("INFO  ")[-1].split(":")[0] for line in console if "min left" in line]
    assert epochs == ["stage 1 epoch 0/0", "stage 2 epoch 1/2", "stage 2 epoch 2/2"]  # RecBole's epoch indices
    stages = [line.split("INFO  ")[-1].split(":")[0] for line in console if "INFO  Stage " in line]
    assert stages == ["Stage 1", "Stage 2"]  # each stage says as it starts what it runs and why
    assert len(console) == len(stages) + len(epochs) + 3  # then the best validation, the test result, the best model
    assert console[-1].startswith("best model: ") and console[-1].endswith(".pth")
    [log_file] = (tmp_path / "log" / "BASRecSASRec").iterdir()
    log = log_file.read_text()
    assert "General Hyper Parameters" in log and "epoch 1 training" in log  # RecBole's own lines, kept there
    assert "stage 2 epoch 2/2" in log


def test_show_config_puts_the_configuration_dump_on_the_console(tiny_data_path, tmp_path):
    result = run("--dataset=tiny", f"--data_path={tiny_data_path}", f"--checkpoint_dir={tmp_path}", "--epochs=1",
                 "--stage1_epochs=0", "--MAX_ITEM_LIST_LENGTH=10", "--use_gpu=False", "--show_config=True", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "General Hyper Parameters" in result.stderr
    assert "epoch 0 training" not in result.stderr  # RecBole's per-epoch lines stay in the log file


def test_the_converter_runs_without_torch_or_recbole(tmp_path):
    source = tmp_path / "Toy.txt"
    source.write_text("1 1 2 3\n2 2 3 4 5\n")
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "recbole_basrec.data.convert", str(source),
                             str(tmp_path)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line]
    assert "recbole_basrec" in imported  # the package root was imported (the converter runs as __main__)
    assert not [name for name in imported if name.split(".")[0] in ("torch", "recbole")]
    assert (tmp_path / "Toy" / "Toy.inter").read_text().splitlines()[1] == "1\t1\t0"


def test_a_config_files_model_and_dataset_are_the_runs(tiny_data_path, tmp_path):
    """As RecBole reads ``model:`` and ``dataset:`` from config files; the command line still wins."""
    from recbole_basrec.cli import parse_args

    settings = tmp_path / "m.yaml"
    settings.write_text(f"model: GRU4Rec\ndataset: tiny\ndata_path: {tiny_data_path}\n")
    args, _ = parse_args([f"--config_files={settings}"])
    assert (args.model, args.dataset) == ("GRU4Rec", "tiny")
    args, _ = parse_args([f"--config_files={settings}", "--model=NARM"])
    assert (args.model, args.dataset) == ("NARM", "tiny")
    assert (parse_args([])[0].model, parse_args([])[0].dataset) == ("SASRec", "ml-100k")


def test_sigterm_stops_a_run_as_ctrl_c_does_and_names_what_was_saved(tiny_data_path, tmp_path):
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "run_recbole_basrec.py"), "--dataset=tiny", f"--data_path={tiny_data_path}",
         f"--checkpoint_dir={tmp_path}", "--stage1_epochs=0", "--epochs=300", "--stopping_step=300",
         "--MAX_ITEM_LIST_LENGTH=10", "--hidden_size=16", "--inner_size=32", "--n_layers=1", "--n_heads=1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob("*-last.pth")) and time.monotonic() < deadline:  # an epoch has finished
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "--resume=" in err and "Traceback" not in err
