"""Inputs that used to run another experiment than typed, or end in a traceback: the command
line's empty and search-only options, compare's seeds, the Python API's argument types, data
that changed under a resumed run or a comparison, and Ctrl-C during the final test."""
import os
import shutil

import numpy as np
import pytest

from recbole_basrec.cli import cli


@pytest.mark.parametrize("args, message", [
    (["--dataset="], "error: --dataset= has no value: write --dataset=ml-100k, or drop --dataset for the default, "
                     "ml-100k (see recbole-basrec --help)"),
    (["--resume="], "error: --resume= has no value: write --resume=saved/<run>-last.pth, or drop --resume for a new "
                    "run (see recbole-basrec --help)"),
    (["--search="], "error: --search= has no value: write --search=SASRec, or drop --search for a run without a "
                    "search (see recbole-basrec --help)"),
    (["--config_files="], "error: --config_files= has no value: write --config_files=my.yaml, or drop --config_files "
                          "for no files (see recbole-basrec --help)"),
    (["--output=best.yaml", "--ray_address=auto"], "error: --output and --ray_address have no effect without "
                                                   "--search: add --search=SPACE (e.g. --search=SASRec) to run a Ray "
                                                   "Tune search, or drop them."),
    (["--max_concurrent=2"], "error: --max_concurrent has no effect without --search: add --search=SPACE (e.g. "
                             "--search=SASRec) to run a Ray Tune search, or drop it."),
    (["compare", "--model="], "error: --model= has no value: write --model=SASRec, or drop --model for the default, "
                              "SASRec (see recbole-basrec compare --help)"),
])
def test_empty_and_search_only_options_stop_before_anything_runs(args, message, capsys):
    assert cli(args) == 2
    captured = capsys.readouterr()
    assert captured.err == message + "\n" and captured.out == ""


def test_an_unwritable_search_output_stops_before_the_search(tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    assert cli(["--search=SASRec", "--num_samples=1", f"--output={tmp_path}/a-file/best.yaml"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --output {tmp_path}/a-file/best.yaml cannot be written ({tmp_path}/a-file is a file, " \
                  "not a folder); choose a file " \
                  "in a folder you can write\n"


def _run(config, **overrides):
    from recbole_basrec.quick_start import run_recbole_basrec

    return run_recbole_basrec("SASRec", "tiny", config_dict={**config, "epochs": 1, **overrides})


def test_python_api_takes_numpy_values_one_file_path_and_model_classes(tiny_config_dict, tmp_path):
    from recbole.model.sequential_recommender import GRU4Rec

    from recbole_basrec.utils import get_model
    from recbole_basrec.quick_start import build

    yaml_file = tmp_path / "e2.yaml"
    yaml_file.write_text("beta: 0.3\n")
    values = {**tiny_config_dict, "epochs": np.int64(1), "learning_rate": np.float64(0.002), "topk": np.array([5, 10])}
    pipe = build("SASRec", "tiny", str(yaml_file), values, trainer=False)
    assert (pipe.config["epochs"], pipe.config["learning_rate"], pipe.config["beta"]) == (1, 0.002, 0.3)
    assert type(pipe.config["epochs"]) is int and pipe.config["topk"] == [5, 10]
    ours = build(get_model("BASRecSASRec"), "tiny", config_dict=tiny_config_dict, trainer=False)
    assert ours.config["model"] == "BASRecSASRec"
    gru = {k: v for k, v in tiny_config_dict.items() if k not in ("inner_size", "n_heads")}
    assert build(GRU4Rec, "tiny", config_dict=gru, trainer=False).config["model"] == "BASRecGRU4Rec"


@pytest.mark.parametrize("kwargs, message", [
    ({"config_dict": ["epochs", 1]}, "config_dict must be a dict of settings (e.g. {'epochs': 10}), got a list: "
                                     "['epochs', 1]."),
    ({"config_file_list": 3}, "config_file_list must be a list of YAML file paths, got 3."),
    ({"model": 3}, "model must be a model name (e.g. 'SASRec') or a RecBole model class, got 3."),
    ({"model": dict}, "model must be a model name (e.g. 'SASRec') or a RecBole model class, got <class 'dict'>."),
    ({"config_dict": {5: 1}}, "config_dict keys must be setting names (strings), got 5."),
    ({"callback_fn": 5}, "callback_fn must be a function of (epoch_idx, valid_score), got 5."),
    ({"model": None, "config_dict": {"epochs": 1}}, "no model given: pass model (e.g. model='SASRec', "
                                                    "dataset='ml-100k'), or set them in config_dict or a config file."),
])
def test_python_api_refuses_other_types_in_one_line(kwargs, message):
    from recbole_basrec.quick_start import run_recbole_basrec

    with pytest.raises(ValueError) as error:
        run_recbole_basrec(**{"model": "SASRec", "dataset": "tiny", **kwargs})
    assert str(error.value) == message


@pytest.mark.parametrize("seeds", ["12", "2020", [1.5], [True], 5, None, {1: 2}])
def test_compare_takes_only_a_list_of_integer_seeds(seeds, tmp_path, monkeypatch):
    """int() would run seeds [1, 2] for '12', seed 1 for 1.5 and True: refused before anything runs."""
    from recbole_basrec.quick_start import compare

    monkeypatch.setattr(compare, "run_phase", lambda *a, **k: pytest.fail("a phase ran"))
    with pytest.raises(ValueError) as error:
        compare.run_compare("SASRec", "tiny", seeds=seeds, config_dict={"checkpoint_dir": str(tmp_path)})
    assert str(error.value) == (f"seeds={seeds!r}: give a list of integers in [0, 4294967296) (numpy's seed "
                                "range), e.g. seeds=[2020, 2021, 2022]")


def test_ctrl_c_during_the_final_test_names_the_best_model(tiny_data_path, tmp_path, monkeypatch, capsys):
    from recbole_basrec.trainer import BASRecTrainer

    evaluate = BASRecTrainer.evaluate

    def interrupted_test(self, eval_data, load_best_model=True, *args, **kwargs):
        if load_best_model:  # the final test; validation passes False
            raise KeyboardInterrupt
        return evaluate(self, eval_data, load_best_model, *args, **kwargs)

    monkeypatch.setattr(BASRecTrainer, "evaluate", interrupted_test)
    code = cli(["--dataset=tiny", f"--data_path={tiny_data_path}", "--stage1_epochs=0", "--epochs=1",
                "--hidden_size=16", "--inner_size=32", "--n_layers=1", "--n_heads=1", "--MAX_ITEM_LIST_LENGTH=10",
                f"--checkpoint_dir={tmp_path}", "--state=ERROR", "--show_progress=False"])
    assert code == 130
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    best = [os.path.join(tmp_path, f) for f in os.listdir(tmp_path) if f.endswith(".pth") and "-last" not in f]
    assert err == [f"interrupted during the final test, after training: best model: {best[0]}; test it with the "
                   f"run's options and --pretrained_path={best[0]} --epochs=0 (in place of its --epochs)"]


def test_a_resume_checks_the_data_and_an_old_checkpoint_without_digest_still_resumes(tiny_config_dict, tmp_path):
    import torch

    from recbole_basrec.quick_start import run_recbole_basrec
    from helpers import write_tiny_dataset

    first = _run(tiny_config_dict)
    last = first["saved_model_file"].replace(".pth", "-last.pth")
    checkpoint = torch.load(last, weights_only=True)
    assert len(checkpoint["config"]["data_digest"]) == 64  # sha256 of the atomic files read
    moved = str(tmp_path / "moved")
    shutil.copytree(tiny_config_dict["data_path"], moved)  # the same files elsewhere: resumes
    assert run_recbole_basrec(config_dict={"data_path": moved, "epochs": 2}, resume_file=last)["test_result"]
    other = str(tmp_path / "other")
    write_tiny_dataset(other, seed=1)
    with pytest.raises(ValueError, match=r"was trained on other data than the atomic files in .*other/tiny hold now"):
        run_recbole_basrec(config_dict={"data_path": other, "epochs": 3}, resume_file=last)
    del checkpoint["config"]["data_digest"]  # a checkpoint written before digests were recorded
    old = str(tmp_path / "old-last.pth")
    torch.save(checkpoint, old)
    assert run_recbole_basrec(config_dict={"data_path": other, "epochs": 2}, resume_file=old)["test_result"]


def test_compare_runs_changed_data_in_a_fresh_folder(tiny_config_dict, tmp_path):
    from recbole_basrec.quick_start import compare

    data = str(tmp_path / "data")
    shutil.copytree(tiny_config_dict["data_path"], data)
    settings = {**{k: v for k, v in tiny_config_dict.items() if k != "seed"}, "data_path": data, "epochs": 1,
                "stage1_epochs": 0, "checkpoint_dir": str(tmp_path / "cmp")}
    lines = []
    first = compare.run_compare("SASRec", "tiny", seeds=[1], config_dict=settings, say=lines.append)
    again = compare.run_compare("SASRec", "tiny", seeds=[1], config_dict=settings, say=lines.append)
    assert os.path.dirname(again["json_path"]) == os.path.dirname(first["json_path"])  # same data: reused
    assert any("finished earlier, kept" in line for line in lines)
    inter = os.path.join(data, "tiny", "tiny.inter")
    with open(inter, "a", encoding="utf-8") as f:
        f.write("1\t5\t100\n")  # one more interaction
    lines.clear()
    changed = compare.run_compare("SASRec", "tiny", seeds=[1], config_dict=settings, say=lines.append)
    assert os.path.dirname(changed["json_path"]) != os.path.dirname(first["json_path"])
    assert not any("finished earlier" in line for line in lines)
