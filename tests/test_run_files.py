"""Where a run writes: its own checkpoint names, a resume into another folder, a full disk."""
import errno
import glob
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--dataset=tiny", "--MAX_ITEM_LIST_LENGTH=10", "--hidden_size=16", "--inner_size=32", "--n_layers=1",
         "--n_heads=1", "--stage1_epochs=0", "--state=ERROR"]


def _runner(args, **kwargs):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "run_recbole_basrec.py"), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _seed(path):
    return torch.load(path, weights_only=True)["config"]["seed"]


def test_two_runs_started_at_once_in_one_folder_keep_their_own_files(tiny_data_path, tmp_path):
    folder = tmp_path / "shared"
    runs = [_runner([*SMALL, f"--data_path={tiny_data_path}", f"--checkpoint_dir={folder}", "--epochs=2",
                     f"--seed={seed}"]) for seed in (1, 2)]
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err[-2000:]
    best = sorted(p for p in glob.glob(str(folder / "*.pth")) if not p.endswith("-last.pth"))
    last = sorted(glob.glob(str(folder / "*-last.pth")))
    assert len(best) == 2 and len(last) == 2  # nothing shared, nothing overwritten
    assert sorted(_seed(p) for p in best) == [1, 2] and sorted(_seed(p) for p in last) == [1, 2]


def test_resume_into_another_folder_writes_there_and_warns_of_no_gpu(tiny_config_dict, tmp_path):
    from recbole_basrec.quick_start import run_recbole_basrec

    first = run_recbole_basrec("SASRec", "tiny", config_dict={**tiny_config_dict, "epochs": 1})
    old_folder = os.path.dirname(first["saved_model_file"])
    last = first["saved_model_file"].replace(".pth", "-last.pth")
    before = {p: os.path.getmtime(p) for p in glob.glob(os.path.join(old_folder, "*.pth"))}
    new = tmp_path / "elsewhere"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "run_recbole_basrec.py"), f"--resume={last}",
                           f"--checkpoint_dir={new}", "--epochs=2"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "GPU requested" not in proc.stderr
    name = os.path.basename(first["saved_model_file"])
    assert {name, name.replace(".pth", "-last.pth")} <= set(os.listdir(new))
    assert torch.load(new / name.replace(".pth", "-last.pth"), weights_only=True)["epoch"] == 1
    assert {p: os.path.getmtime(p) for p in glob.glob(os.path.join(old_folder, "*.pth"))} == before


def test_a_full_disk_stops_in_one_line_keeps_the_last_checkpoints_and_resumes_elsewhere(
        tiny_config_dict, tmp_path, monkeypatch):
    from recbole_basrec.quick_start import run_recbole_basrec
    from recbole_basrec.trainer.checkpoint import DiskFull

    real_save = torch.save
    calls = {"n": 0}

    def save_until_full(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:  # epoch 0's best and -last are written; epoch 1's are not
            f.write(b"\0" * 1000)  # part of a file, as a full disk leaves it
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_full)
    folder = tmp_path / "small"
    with pytest.raises(DiskFull) as stop:
        run_recbole_basrec("SASRec", "tiny", config_dict={**tiny_config_dict, "epochs": 3,
                                                           "checkpoint_dir": str(folder)})
    message = str(stop.value)
    assert "\n" not in message and f"no space left in {folder}" in message and "MiB needed" in message
    assert "--checkpoint_dir=<a folder with space>" in message
    assert not glob.glob(str(folder / "*.tmp-*"))  # no partial file left
    monkeypatch.setattr(torch, "save", real_save)
    last = glob.glob(str(folder / "*-last.pth"))
    assert len(last) == 1 and torch.load(last[0], weights_only=True)["epoch"] == 0  # complete and loadable
    resumed = run_recbole_basrec(resume_file=last[0], config_dict={"checkpoint_dir": str(tmp_path / "roomy")})
    assert os.path.dirname(resumed["saved_model_file"]) == str(tmp_path / "roomy")
    assert resumed["test_result"]["ndcg@10"] >= 0


def test_resuming_a_finished_run_rewrites_none_of_its_files(tiny_config_dict, tmp_path):
    """RecBole's fit saves the current weights as the best model when no epoch is left: a finished
    run resumed must test its best model as it was, not its last epoch's weights."""
    from recbole_basrec.quick_start import run_recbole_basrec

    done = run_recbole_basrec("SASRec", "tiny", config_dict={**tiny_config_dict, "checkpoint_dir": str(tmp_path),
                                                             "epochs": 3})
    files = sorted(glob.glob(str(tmp_path / "*.pth")))
    before = {path: open(path, "rb").read() for path in files}
    again = run_recbole_basrec(resume_file=done["saved_model_file"].replace(".pth", "-last.pth"))
    assert sorted(glob.glob(str(tmp_path / "*.pth"))) == files
    assert {path: open(path, "rb").read() for path in files} == before
    assert again["test_result"] == done["test_result"]
