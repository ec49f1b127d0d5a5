"""Two-stage schedule and weights-only checkpoints of BASRecTrainer."""
import argparse
import subprocess
import sys

import pytest
import torch
from helpers import build_tiny

import recbole_basrec  # noqa: F401
from recbole_basrec.quick_start import load_data_and_model, run_recbole_basrec
from recbole_basrec.trainer import BASRecTrainer


def _setup(config_dict, backbone="SASRec"):
    run = build_tiny(config_dict, backbone)
    return run.config, run.model, run.trainer, (run.train_data, run.valid_data, run.test_data)


def test_stage1_then_stage2_with_the_best_stage1_weights(tiny_config_dict):
    config, model, trainer, (train, valid, test) = _setup({**tiny_config_dict, "stage1_epochs": 2, "epochs": 2})
    assert isinstance(trainer, BASRecTrainer)
    seen = []
    trainer.fit(train, valid, saved=True, callback_fn=lambda epoch, score: seen.append((epoch, model.augment)))
    assert [(h["stage"], h["epoch"]) for h in trainer.valid_history] == [(1, 0), (1, 1), (2, 2), (2, 3)]
    assert seen == [(0, False), (1, False), (2, True), (3, True)]  # BASRec only in stage 2
    stage1 = torch.load(trainer.saved_model_file.replace(".pth", "-stage1.pth"), weights_only=True)
    assert stage1["stage"] == 1
    final = torch.load(trainer.saved_model_file, weights_only=True)
    assert final["stage"] == 2 and final["epoch"] in (2, 3)


@pytest.mark.parametrize("basrec,stage1_epochs,prefixes", [
    (True, 1, ["stage 1 epoch 0/0", "stage 2 epoch 1/1"]),  # RecBole's epoch indices, counted on across stages
    (True, 0, ["epoch 0/0"]),  # no stage 1: no stages named
    (False, 1, ["stage 1 epoch 0/0", "stage 2 epoch 1/1"]),  # plain training: the same two stages
])
def test_one_console_line_per_epoch_names_the_stage(tiny_config_dict, basrec, stage1_epochs, prefixes):
    config, model, trainer, (train, valid, test) = _setup(
        {**tiny_config_dict, "basrec": basrec, "stage1_epochs": stage1_epochs, "epochs": 1})
    lines = []
    trainer.progress_sink = lines.append
    trainer.fit(train, valid, saved=False)
    announced = [line.split(":")[0] for line in lines if line.startswith("Stage ")]  # each stage as it starts
    assert announced == (["Stage 1", "Stage 2"] if stage1_epochs else [])
    lines = [line for line in lines if not line.startswith("Stage ")]
    assert [line.split(":")[0] for line in lines] == prefixes
    assert all("valid ndcg@10" in line and "min left" in line for line in lines)


def test_progress_line_shows_ndcg10_beside_another_valid_metric(tiny_config_dict):
    config, model, trainer, (train, valid, test) = _setup(
        {**tiny_config_dict, "valid_metric": "NDCG@20", "stage1_epochs": 0, "epochs": 2})
    lines = []
    trainer.progress_sink = lines.append
    trainer.fit(train, valid, saved=False)
    assert len(lines) == 2
    for line, seen in zip(lines, trainer.valid_history):
        assert f"valid ndcg@20 {seen['ndcg@20']:.4f} (best " in line
        assert f"), ndcg@10 {seen['ndcg@10']:.4f}, elapsed" in line


def test_pretrained_path_skips_stage1_and_starts_from_those_weights(tiny_config_dict, tmp_path):
    first = run_recbole_basrec("SASRec", "tiny", config_dict={**tiny_config_dict, "basrec": False, "epochs": 1})
    # stage1_epochs left at its default (300): pretrained_path replaces stage 1 (giving both is refused)
    settings = {k: v for k, v in tiny_config_dict.items() if k != "stage1_epochs"}
    config, model, trainer, (train, valid, test) = _setup({**settings, "pretrained_path": first["saved_model_file"],
                                                           "epochs": 0})
    assert config["stage1_epochs"] == 300
    best_score, best_result = trainer.fit(train, valid, saved=False)
    saved = torch.load(first["saved_model_file"], weights_only=True)["state_dict"]
    assert all(torch.equal(model.state_dict()[k], saved[k]) for k in saved)
    # epochs=0: no training, the loaded weights are validated once (and are what testing sees)
    assert [(h["stage"], h["epoch"]) for h in trainer.valid_history] == [(2, -1)]
    assert best_result == trainer.evaluate(valid, load_best_model=False)
    assert first["best_valid_result"] == best_result


def test_checkpoints_are_weights_only_and_resume_works(tiny_config_dict):
    result = run_recbole_basrec("GRU4Rec", "tiny", config_dict={**tiny_config_dict, "epochs": 2})
    checkpoint = torch.load(result["saved_model_file"], weights_only=True)
    assert checkpoint["config"]["model"] == "BASRecGRU4Rec"
    assert isinstance(checkpoint["config"]["beta"], float)
    config, model, trainer, (train, valid, test) = _setup({**tiny_config_dict, "epochs": 3}, "GRU4Rec")
    trainer.resume_checkpoint(result["saved_model_file"])
    assert trainer.start_epoch == checkpoint["epoch"] + 1
    trainer.fit(train, valid, saved=True)
    assert trainer.evaluate(test, load_best_model=True)["ndcg@10"] >= 0
    # and the checkpoint rebuilds config, data and model
    config, model, *_ = load_data_and_model(result["saved_model_file"], config_dict=tiny_config_dict)
    assert config["model"] == "BASRecGRU4Rec"


def test_pickled_checkpoints_are_refused_with_a_clear_message(tiny_config_dict, tmp_path):
    path = tmp_path / "recbole-style.pth"
    torch.save({"state_dict": {}, "config": argparse.Namespace(model="SASRec")}, path)  # like RecBole's pickled Config
    config, model, trainer, (train, valid, test) = _setup(tiny_config_dict)
    with pytest.raises(ValueError, match="cannot be loaded with weights_only=True"):
        trainer.evaluate(test, model_file=str(path))


def test_default_run_learns_on_the_tiny_dataset(tiny_config_dict):
    from recbole_basrec.quick_start import build

    untrained = build("SASRec", "tiny", config_dict=tiny_config_dict)
    before = untrained.trainer.evaluate(untrained.test_data, load_best_model=False)
    trained = run_recbole_basrec("SASRec", "tiny", config_dict={**tiny_config_dict, "epochs": 12})
    assert trained["test_result"]["ndcg@10"] > before["ndcg@10"] + 0.1


def test_nan_loss_names_the_last_good_checkpoint(tiny_config_dict, monkeypatch):
    config, model, trainer, (train, valid, test) = _setup({**tiny_config_dict, "epochs": 3})
    original = type(model).calculate_loss
    monkeypatch.setattr(
        type(model), "calculate_loss",
        lambda self, batch: original(self, batch) if trainer._epoch < 1 else torch.tensor(float("nan")),
    )
    with pytest.raises(ValueError, match="Training loss is nan at epoch 2, so training stopped; the last good "
                                         "checkpoint is .*pth. Lower learning_rate"):
        trainer.fit(train, valid, saved=True)
    best = torch.load(trainer.saved_model_file, weights_only=True)
    assert best["epoch"] == 0 and all(torch.isfinite(v).all() for v in best["state_dict"].values())


@pytest.mark.parametrize("stop_epoch", [0, 2])  # inside stage 1, inside stage 2
def test_interrupted_run_resumes_to_the_same_result(tiny_config_dict, monkeypatch, stop_epoch):
    from recbole_basrec.quick_start.quick_start import Interrupted

    settings = {**tiny_config_dict, "epochs": 4, "stage1_epochs": 2}
    whole = run_recbole_basrec("GRU4Rec", "tiny", config_dict=dict(settings, checkpoint_dir=tiny_config_dict["checkpoint_dir"] + "-a"))
    original = BASRecTrainer._save_last

    def stop_after(self, epoch, **kwargs):
        original(self, epoch, **kwargs)
        if epoch == stop_epoch:  # the epoch is saved, then Ctrl-C
            raise KeyboardInterrupt

    monkeypatch.setattr(BASRecTrainer, "_save_last", stop_after)
    with pytest.raises(Interrupted, match=r"interrupted: best checkpoint so far: .*\.pth; continue with --resume=.*-last\.pth") as stop:
        run_recbole_basrec("GRU4Rec", "tiny", config_dict=dict(settings, checkpoint_dir=tiny_config_dict["checkpoint_dir"] + "-b"))
    monkeypatch.setattr(BASRecTrainer, "_save_last", original)
    last = str(stop.value).split("--resume=")[1]
    resumed = run_recbole_basrec("GRU4Rec", "tiny", config_dict=dict(settings, checkpoint_dir=tiny_config_dict["checkpoint_dir"] + "-b"),
                                 resume_file=last)
    assert resumed["best_valid_result"] == whole["best_valid_result"]
    assert resumed["test_result"] == whole["test_result"]


_KILL_AFTER_EPOCH = """
import os, signal, sys
sys.path.insert(0, {root!r})
from recbole_basrec.trainer import BASRecTrainer
original = BASRecTrainer._save_last
def save_then_die(self, epoch, **kwargs):
    original(self, epoch, **kwargs)
    if epoch == {epoch}:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no exception handler runs
BASRecTrainer._save_last = save_then_die
import run_recbole_basrec
sys.exit(run_recbole_basrec.cli(sys.argv[1:]))
"""


@pytest.mark.slow
def test_run_killed_with_sigkill_resumes_to_the_uninterrupted_result(tiny_data_path, tmp_path):
    import glob
    import os
    import signal
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = ["--model=SASRec", "--dataset=tiny", f"--data_path={tiny_data_path}", "--epochs=5", "--stage1_epochs=2",
            "--hidden_size=16", "--inner_size=32", "--n_layers=1", "--n_heads=1", "--MAX_ITEM_LIST_LENGTH=10",
            "--seed=0", "--use_gpu=False", "--train_batch_size=32"]

    def run(script_args, checkpoint_dir, code=None):
        command = [sys.executable, "-c", code] if code else [sys.executable, os.path.join(root, "run_recbole_basrec.py")]
        return subprocess.run(command + args + [f"--checkpoint_dir={checkpoint_dir}"] + script_args,
                              capture_output=True, text=True, timeout=600, cwd=root)

    def test_line(proc):
        assert proc.returncode == 0, proc.stderr[-2000:]
        return [line for line in proc.stdout.splitlines() if line.startswith("test")][-1]

    whole = test_line(run([], tmp_path / "whole"))
    killed = run([], tmp_path / "killed", code=_KILL_AFTER_EPOCH.format(root=root, epoch=3))  # inside stage 2
    assert killed.returncode == -signal.SIGKILL
    # Stage 1 and stage 2 each keep a -last.pth; the newest is where the run stopped.
    last = max(glob.glob(str(tmp_path / "killed" / "*-last.pth")), key=os.path.getmtime)
    resumed = run([f"--resume={last}"], tmp_path / "killed")
    assert test_line(resumed) == whole


class _ScriptedMetric:
    """Stands in for RecBole's metrics: NDCG@10 takes the given values in turn, rounded as
    RecBole rounds them (``decimal_place``)."""

    def __init__(self, values):
        self.values, self.decimal_place = iter(values), 4

    def calculate_metric(self, data):
        return {"ndcg@10": round(next(self.values), self.decimal_place)}


@pytest.mark.parametrize("exact,best_epoch,epochs_run,best_score", [
    (True, 0, 3, 0.03281),   # the authors': .03279 is below .03281, two non-improving validations stop it
    (False, 1, 4, 0.0328),   # RecBole's: both round to .0328, the later counts as the best
])
def test_early_stopping_compares_unrounded_scores_unless_asked_not_to(tiny_config_dict, exact, best_epoch,
                                                                      epochs_run, best_score):
    config, model, trainer, (train, valid, test) = _setup(
        {**tiny_config_dict, "exact_valid_score": exact, "epochs": 8, "stopping_step": 1})
    trainer.evaluator.metrics = ["ndcg"]
    trainer.evaluator.metric_class = {"ndcg": _ScriptedMetric([0.03281, 0.03279, 0.0327, 0.0327, 0.0326])}
    best_valid_score, best_valid_result = trainer.fit(train, valid, saved=True)
    assert [h["epoch"] for h in trainer.valid_history] == list(range(epochs_run))
    assert best_valid_score == best_score
    assert best_valid_result == {"ndcg@10": 0.0328}  # shown rounded either way
    assert trainer.valid_history[1]["ndcg@10"] == (0.03279 if exact else 0.0328)
    assert torch.load(trainer.saved_model_file, weights_only=True)["epoch"] == best_epoch
    assert trainer.evaluator.metric_class["ndcg"].decimal_place == 4  # restored after validating


def test_keep_freed_memory_stops_large_tensors_faulting_in_again():
    # in a fresh process: the setting is process-wide and the baseline must be glibc's default
    code = (
        "import resource, torch\n"
        "from recbole_basrec.trainer.memory import keep_freed_memory\n"
        "def refaults():\n"
        "    torch.ones(4 << 20)\n"  # 16 MiB, allocated and freed
        "    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "    torch.ones(4 << 20)\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before\n"
        "default = refaults()\n"
        "print(keep_freed_memory(), default, refaults())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    changed, default, kept = proc.stdout.split()[-3:]
    if changed != "True":
        pytest.skip("not glibc: keep_freed_memory changes nothing here")
    assert int(default) > 2000  # 4096 pages of 4 KiB faulted in again
    assert int(kept) < 200


def test_the_log_line_and_tensorboard_name_each_loss_term_as_its_mean_per_batch(tiny_setup):
    _, _, model, trainer, (train, _, _) = tiny_setup("SASRec", epochs=1, eval_step=0)
    tags = {}

    class Board:
        def add_scalar(self, tag, value, step):
            tags[tag] = value

        def add_hparams(self, *args, **kwargs):
            pass

    trainer.tensorboard = Board()
    trainer.fit(train, None, saved=False)
    rec, ssa, csa = trainer.epoch_losses[0]
    assert tags == {"Loss/Train/rec": rec, "Loss/Train/ssa": ssa, "Loss/Train/csa": csa}
    import re

    line = re.sub(r"\x1b\[[0-9;]*m", "", trainer._generate_train_loss_output(0, 0.0, 1.0, None))  # colours off
    assert f"mean loss per batch: {rec + ssa + csa:.4f} (rec: {rec:.4f}, ssa: {ssa:.4f}, csa: {csa:.4f})" in line


def test_a_run_returns_plain_numbers_and_the_runner_names_its_best_model(tiny_config_dict, capsys):
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from run_recbole_basrec import cli
    from recbole_basrec.quick_start import run_recbole_basrec

    result = run_recbole_basrec("SASRec", "tiny", config_dict={**tiny_config_dict, "epochs": 1})
    assert type(result["best_valid_score"]) is float
    assert all(type(v) is float for part in ("best_valid_result", "test_result") for v in result[part].values())
    args = [f"--{k}={v}" for k, v in tiny_config_dict.items() if k not in ("epochs",)] + ["--epochs=1"]
    assert cli(["--dataset=tiny", *args]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("best model: ") and os.path.isfile(last[len("best model: "):])


@pytest.mark.parametrize("settings,stages", [
    ({"stage1_epochs": 2, "epochs": 3}, [(1, 2, False, "-stage1.pth"), (2, 3, True, ".pth")]),
    ({"stage1_epochs": 0, "epochs": 3}, [(2, 3, True, ".pth")]),
    ({"stage1_epochs": 2, "epochs": 3, "basrec": False}, [(1, 2, False, "-stage1.pth"), (2, 3, True, ".pth")]),
])
def test_the_schedule_lists_the_stages_fit_runs(tiny_config_dict, settings, stages):
    config, model, trainer, (train, valid, test) = _setup({**tiny_config_dict, **settings})
    schedule = trainer.schedule()
    run_file = trainer.saved_model_file
    assert [(s.number, s.epochs, s.augment, s.best_file[len(run_file) - 4:]) for s in schedule] == stages
    assert [s.hands_on_best for s in schedule] == [True] * (len(stages) - 1) + [False]
    lines = []
    trainer.progress_sink = lines.append
    trainer.fit(train, valid, saved=True)
    assert [line for line in lines if line.startswith(("Stage ", "stage 2 starts"))] == [
        s.line for s in schedule if s.line]
    assert [h["stage"] for h in trainer.valid_history] == [s.number for s in schedule for _ in range(s.epochs)]
    assert trainer.saved_model_file == run_file


def test_a_stock_model_has_no_stages_and_the_trainer_asks_for_the_declared_interface(tiny_config_dict):
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import NARM

    from recbole_basrec.config import properties_dir
    from recbole_basrec.model.basrec import StagedModel

    settings = {**tiny_config_dict, "eval_mask_history": False, "epochs": 1, "train_neg_sample_args": None}
    config = Config(model=NARM, dataset="tiny", config_file_list=[f"{properties_dir()}/overall.yaml"],
                    config_dict=settings)
    train, valid, test = data_preparation(config, create_dataset(config))
    model = NARM(config, train.dataset)
    model.augment = True  # an attribute of that name does not make a model staged: the interface does
    trainer = BASRecTrainer(config, model)
    assert not trainer.staged and not isinstance(model, StagedModel)
    assert [(s.number, s.augment) for s in trainer.schedule()] == [(0, None)]
    basrec = build_tiny(tiny_config_dict, "NARM")
    assert basrec.trainer.staged and isinstance(basrec.model, StagedModel)


def test_a_config_without_our_trainer_keys_is_refused_in_one_line(tiny_config_dict):
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import NARM

    from recbole_basrec.config import properties_dir

    settings = {**tiny_config_dict, "train_neg_sample_args": None}
    config = Config(model=NARM, dataset="tiny", config_file_list=[f"{properties_dir()}/overall.yaml"],
                    config_dict=settings)
    train, _, _ = data_preparation(config, create_dataset(config))
    for key in ("eval_mask_history", "valid_start_epoch"):  # as a stock RecBole config lacks them
        del config.final_config_dict[key]
    with pytest.raises(ValueError, match=r"^BASRecTrainer needs eval_mask_history, valid_start_epoch in the "
                                         r"configuration: build it with recbole_basrec's defaults"):
        BASRecTrainer(config, NARM(config, train.dataset))


def test_train_step_is_one_optimizer_step_of_an_epoch(tiny_config_dict):
    first, second = build_tiny(tiny_config_dict, "SASRec"), build_tiny(tiny_config_dict, "SASRec")
    batch = next(iter(first.train_data))
    weights = {k: v.clone() for k, v in first.model.state_dict().items()}
    first.model.eval()  # train_step trains in training mode whatever the model was left in
    torch.manual_seed(3)
    loss = first.trainer.train_step(batch)
    # the same step by hand: the summed loss terms, backward, the trainer's optimizer
    second.model.train()
    second.trainer.optimizer.zero_grad()
    torch.manual_seed(3)
    expected = sum(second.model.calculate_loss(batch))
    expected.backward()
    second.trainer.optimizer.step()
    assert first.model.training and not loss.requires_grad
    assert torch.allclose(loss, expected.detach())
    after = first.model.state_dict()
    assert any(not torch.equal(after[k], weights[k]) for k in weights)
    assert all(torch.allclose(after[k], v) for k, v in second.model.state_dict().items())


def test_score_batch_scores_as_evaluation_does(tiny_config_dict):
    run = build_tiny(tiny_config_dict, "SASRec")
    trainer, test = run.trainer, run.test_data
    batch = next(iter(test))
    with pytest.raises(RuntimeError, match="inside `with trainer.scoring"):
        trainer.score_batch(batch)
    with trainer.scoring(test):
        scores = trainer.score_batch(batch)
        assert not run.model.training
    interaction = batch[0]
    with torch.no_grad():
        plain = run.model.full_sort_predict(interaction)
    assert scores.shape == plain.shape == (len(interaction), run.dataset.item_num)
    masked = torch.isinf(scores)
    assert masked[:, 0].all() and masked.sum() > len(interaction)  # the padding item and each user's history
    assert torch.equal(scores[~masked], plain[~masked])
    # every user's history at -inf, nothing else: the evaluation's protocol
    from recbole_basrec.data.dataset import HISTORY_LENGTH_FIELD

    full_ptr, full_items = test.dataset.eval_history
    users = interaction[run.config["USER_ID_FIELD"]].numpy()
    for row, (user, length) in enumerate(zip(users, interaction[HISTORY_LENGTH_FIELD].numpy())):
        history = set(full_items[full_ptr[user]: full_ptr[user] + length].tolist())
        assert set(torch.nonzero(masked[row]).flatten().tolist()) == history | {0}
