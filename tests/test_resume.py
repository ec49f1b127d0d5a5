"""Resume that cannot surprise: what --epochs does, finished runs, leftovers, stock RecBole loading."""
import os

import pytest
import torch

import recbole_basrec  # noqa: F401
from recbole_basrec.quick_start import build, run_recbole_basrec
from recbole_basrec.trainer import BASRecTrainer
from recbole_basrec.trainer.checkpoint import remove_stale_temporaries


def _last(result):
    return result["saved_model_file"].replace(".pth", "-last.pth")


def _settings(tiny_config_dict, folder, **overrides):
    return {**tiny_config_dict, "checkpoint_dir": os.path.join(tiny_config_dict["checkpoint_dir"], folder), **overrides}


def test_a_longer_epochs_extends_a_finished_run_to_what_an_uninterrupted_run_gives(tiny_config_dict):
    whole = run_recbole_basrec("SASRec", "tiny", config_dict=_settings(tiny_config_dict, "whole", epochs=3))
    short = run_recbole_basrec("SASRec", "tiny", config_dict=_settings(tiny_config_dict, "short", epochs=2))
    extended = run_recbole_basrec(config_dict={"epochs": 3}, resume_file=_last(short))
    assert extended["valid_history"] == whole["valid_history"]
    assert extended["test_result"] == whole["test_result"]


def test_a_finished_run_resumed_trains_nothing_and_says_so(tiny_config_dict, monkeypatch):
    done = run_recbole_basrec("SASRec", "tiny", config_dict=_settings(tiny_config_dict, "done", epochs=2))
    pipeline = build(resume_file=_last(done))
    assert pipeline.trainer.resume_line().startswith("resumed from stage 2, epoch 1: this run already finished")
    calls = []
    monkeypatch.setattr(BASRecTrainer, "_train_epoch", lambda *a, **k: calls.append(a))
    again = run_recbole_basrec(resume_file=_last(done))
    assert calls == [] and again["test_result"] == done["test_result"]


def test_a_shorter_epochs_ends_the_run_where_it_is(tiny_config_dict, monkeypatch):
    original = BASRecTrainer._save_last

    def stop_after_first(self, epoch, **kwargs):
        original(self, epoch, **kwargs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(BASRecTrainer, "_save_last", stop_after_first)
    from recbole_basrec.quick_start.quick_start import Interrupted

    with pytest.raises(Interrupted) as stop:
        run_recbole_basrec("SASRec", "tiny", config_dict=_settings(tiny_config_dict, "cut", epochs=4))
    monkeypatch.setattr(BASRecTrainer, "_save_last", original)
    last = str(stop.value).split("--resume=")[1]
    pipeline = build(config_dict={"epochs": 2}, resume_file=last)
    assert pipeline.trainer.resume_line().endswith(
        f"this run ends at epoch 1 with these epochs; testing its best model {pipeline.trainer.saved_model_file}")
    resumed = build(config_dict={"epochs": 4}, resume_file=last).trainer
    assert resumed.resume_line() == "resumed from stage 2, epoch 1: training epochs 2 to 3"
    fewer = build(config_dict={"epochs": 1}, resume_file=last).trainer
    assert fewer.resume_line().startswith("resumed from stage 2, epoch 1: epochs=1 is fewer than this stage already "
                                          "trained, so nothing is trained; testing its best model")


def test_temporaries_of_killed_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = tmp_path / "run.pth.tmp-99999999"
    live = tmp_path / f"run.pth.tmp-{os.getppid()}"
    other = tmp_path / "notes.tmp-x"
    for path in (dead, live, other):
        path.write_bytes(b"")
    assert remove_stale_temporaries(tmp_path) == [str(dead)]
    assert not dead.exists() and live.exists() and other.exists()


def test_stock_recbole_load_data_and_model_reads_our_checkpoint(tiny_config_dict):
    from recbole.quick_start import load_data_and_model

    result = run_recbole_basrec("SASRec", "tiny", config_dict=_settings(tiny_config_dict, "stock", epochs=1))
    config, model, dataset, train, valid, test = load_data_and_model(result["saved_model_file"])
    assert config["model"] == "BASRecSASRec" and config["seed"] == tiny_config_dict["seed"]
    assert config["hidden_size"] == tiny_config_dict["hidden_size"] and len(test) > 0
    saved = torch.load(result["saved_model_file"], weights_only=True)["state_dict"]
    assert all(torch.equal(value, saved[name]) for name, value in model.state_dict().items())


#: The keys of a ``-last.pth`` file, in order, as every version so far wrote them (one process).
LAST_KEYS = ["config", "epoch", "cur_step", "best_valid_score", "best_valid_result", "best_model_file", "stage",
             "stage_start", "epochs", "state_dict", "optimizer", "valid_history", "rng", "epoch_losses", "finished",
             "generator"]
BEST_KEYS = ["config", "epoch", "cur_step", "best_valid_score", "stage", "state_dict", "optimizer"]


def test_checkpoint_files_keep_their_format_and_read_back_unchanged(tiny_config_dict):
    import io

    from recbole_basrec.trainer.checkpoint import ModelState, ResumeState

    result = run_recbole_basrec("SASRec", "tiny", config_dict=_settings(tiny_config_dict, "format", epochs=2))
    last = torch.load(_last(result), weights_only=True)
    best = torch.load(result["saved_model_file"], weights_only=True)
    assert list(last) == LAST_KEYS and list(best) == BEST_KEYS
    assert last["finished"] is True and last["epoch_losses"][0][0] == 0 and isinstance(last["epoch_losses"][0][1], list)
    state = ResumeState.from_dict(last)
    assert state.epoch_losses[0] == tuple(last["epoch_losses"][0][1]) and state.stage == 2
    again = state.to_dict()
    assert list(again) == LAST_KEYS
    for key, value in last.items():
        if key in ("state_dict", "optimizer"):
            continue
        assert (torch.equal(again[key], value) if isinstance(value, torch.Tensor) else again[key] == value), key
    written = io.BytesIO()
    torch.save(ModelState(**best).to_dict(), written)
    with open(result["saved_model_file"], "rb") as f:
        assert written.getvalue() == f.read()  # the same bytes as the run wrote


def test_a_checkpoint_without_training_state_is_refused_in_one_line(tiny_config_dict, tmp_path):
    pipeline = build("SASRec", "tiny", config_dict=_settings(tiny_config_dict, "bare"))
    bare = tmp_path / "weights.pth"
    torch.save(pipeline.model.state_dict(), bare)
    with pytest.raises(ValueError, match=r"holds no training state \(epoch, cur_step, best_valid_score, state_dict, "
                                         r"optimizer missing\)"):
        pipeline.trainer.resume_checkpoint(bare)
