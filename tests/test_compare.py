"""The two-stage default schedule, ``recbole-basrec compare`` (fairness, table, resume) and the
progress lines inside long epochs."""
import json
import os

import pytest
import torch
from helpers import build_tiny

import recbole_basrec  # noqa: F401
from recbole_basrec.console import Heartbeat
from recbole_basrec.quick_start import compare
from recbole_basrec.trainer import BASRecTrainer
from recbole_basrec.trainer import trainer as trainer_module


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("basrec", [True, False])
def test_stage2_starts_from_stage1s_best_weights_under_stage1s_patience(tiny_config_dict, basrec):
    run = build_tiny({**tiny_config_dict, "basrec": basrec, "stage1_epochs": 3, "stage1_stopping_step": 7,
                      "stopping_step": 2, "epochs": 2})
    trainer, starts, patience = run.trainer, {}, {}
    train_epoch = trainer._train_epoch

    def spy(train_data, epoch_idx, *args, **kwargs):
        starts[epoch_idx] = _state(trainer.model)
        patience[epoch_idx] = (trainer.stage, trainer.stopping_step)
        return train_epoch(train_data, epoch_idx, *args, **kwargs)

    trainer._train_epoch = spy
    trainer.fit(run.train_data, run.valid_data, saved=True)
    assert [(h["stage"], h["epoch"]) for h in trainer.valid_history] == [(1, 0), (1, 1), (1, 2), (2, 3), (2, 4)]
    assert patience == {0: (1, 7), 1: (1, 7), 2: (1, 7), 3: (2, 2), 4: (2, 2)}
    best = torch.load(trainer.saved_model_file.replace(".pth", "-stage1.pth"), weights_only=True)
    assert all(torch.equal(starts[3][k], best["state_dict"][k]) for k in best["state_dict"])
    stage1_scores = [h["ndcg@10"] for h in trainer.valid_history if h["stage"] == 1]
    assert best["epoch"] == max(range(3), key=lambda i: (stage1_scores[i], i))  # the best, not the last
    assert run.model.augment is True and run.model.basrec is basrec


def test_the_runner_names_each_stage_and_why_it_runs(tiny_data_path, tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = ["--dataset=tiny", f"--data_path={tiny_data_path}", f"--checkpoint_dir={tmp_path}", "--epochs=1",
            "--stage1_epochs=1", "--MAX_ITEM_LIST_LENGTH=10", "--hidden_size=16", "--inner_size=32", "--n_layers=1",
            "--n_heads=1"]
    proc = subprocess.run([sys.executable, os.path.join(root, "run_recbole_basrec.py"), *args],
                          capture_output=True, text=True, timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout + proc.stderr
    assert "Stage 1: plain SASRec for up to 1 epochs" in text and "two-stage training" in text
    assert "Stage 2: BASRec, from stage 1's best weights" in text


def test_default_settings_train_a_stage1():
    from recbole_basrec.config import default_config_dict

    defaults = default_config_dict("BASRecSASRec", "some-dataset")
    assert defaults["stage1_epochs"] > 0 and defaults["stage1_stopping_step"] >= 1


def test_heartbeat_lines_every_period_with_an_estimate():
    now = [0.0]
    lines = []
    beat = Heartbeat(lines.append, "epoch 3 training", 10, every=30.0, clock=lambda: now[0])
    for step in range(10):
        now[0] += 12.0
        beat.tick()
    # 12 s a batch: a line after batches 3 (36 s), 6 (72 s) and 8 (96 s)
    assert lines == [
        "epoch 3 training: batch 3/10, 36 s so far, about 84 s left (estimated from the pace so far)",
        "epoch 3 training: batch 6/10, 72 s so far, about 48 s left (estimated from the pace so far)",
        "epoch 3 training: batch 9/10, 108 s so far, about 12 s left (estimated from the pace so far)",
    ]


def test_heartbeat_pulses_inside_one_long_batch():
    now = [0.0]
    lines = []
    beat = Heartbeat(lines.append, "test", 2, every=30.0, clock=lambda: now[0])
    for _ in range(5):  # five views of the first batch, 20 s each
        now[0] += 20.0
        beat.pulse()
    assert lines == ["test: batch 1/2 in progress, 40 s so far", "test: batch 1/2 in progress, 80 s so far"]


def test_tta_views_pulse_the_test_heartbeat(tiny_config_dict, monkeypatch):
    monkeypatch.setattr(trainer_module, "HEARTBEAT_S", 0.0)
    run = build_tiny({**tiny_config_dict, "epochs": 1, "tta": "tmask", "tta_views": 3})
    lines = []
    run.trainer.progress_sink = lines.append
    run.trainer.evaluate(run.test_data, load_best_model=False)
    assert any(line.startswith("test: batch 1/") and line.endswith("s so far") and "in progress" in line
               for line in lines), lines


def test_long_epochs_and_evaluations_print_progress_lines(tiny_config_dict, monkeypatch):
    monkeypatch.setattr(trainer_module, "HEARTBEAT_S", 0.0)
    run = build_tiny({**tiny_config_dict, "epochs": 1})
    lines = []
    run.trainer.progress_sink = lines.append
    run.trainer.fit(run.train_data, run.valid_data, saved=False)
    batches = len(run.train_data)
    training = [line for line in lines if line.startswith("epoch 0 training: batch")]
    assert [line.split(",")[0] for line in training] == [f"epoch 0 training: batch {i}/{batches}"
                                                         for i in range(1, batches + 1)]
    assert any(line.startswith("validation: batch 1/") for line in lines)
    assert "about" in lines[-1] and "at this pace if no early stop" in lines[-1]


# ------------------------------------------------------------------------------ the table
def _record(values):
    """A hand-made record: values[arm][seed] = (valid ndcg@10, test ndcg@10)."""
    runs = {}
    for arm, per_seed in values.items():
        for seed, (valid, test) in per_seed.items():
            runs[f"{arm}-{seed}"] = {"valid": {"ndcg@10": valid}, "test": {"ndcg@10": test}}
    return {"seeds": [1, 2, 3], "runs": runs}


def test_summary_means_spreads_gains_and_wins_on_a_hand_made_record():
    record = _record({"plain": {1: (0.10, 0.08), 2: (0.12, 0.10), 3: (0.14, 0.09)},
                      "basrec": {1: (0.11, 0.09), 2: (0.13, 0.09), 3: (0.15, 0.12)}})
    summary = compare.summarize(record)
    test = summary["test"]["ndcg@10"]
    assert test["plain"][0] == pytest.approx(0.09) and test["plain"][1] == pytest.approx(0.01)
    assert test["basrec"][0] == pytest.approx(0.10) and test["basrec"][1] == pytest.approx(0.0173205, abs=1e-6)
    assert test["gain"]["basrec"] == pytest.approx(0.10 / 0.09 - 1)
    assert summary["valid"]["ndcg@10"]["gain"]["basrec"] == pytest.approx(0.13 / 0.12 - 1)
    assert summary["wins"]["basrec"]["ndcg@10"] == 2
    table = compare.format_table(summary).splitlines()
    assert table[0].split("|")[-1].strip() == "wins/3"
    assert [c.strip() for c in table[2].split("|")] == [
        "ndcg@10", ".1200 ± .0200", ".1300 ± .0200", "+8.3%", ".0900 ± .0100", ".1000 ± .0173", "+11.1%", "2"]


def test_summary_leaves_out_unfinished_seeds_and_a_zero_base_has_no_gain():
    record = _record({"plain": {1: (0.0, 0.0), 2: (0.1, 0.1)}, "basrec": {1: (0.1, 0.1)}})
    summary = compare.summarize(record)
    assert summary["seeds"] == [1]
    assert summary["test"]["ndcg@10"]["gain"]["basrec"] is None
    # One seed has no sample standard deviation: None, not 0.0; the table says n/a in a number's width.
    assert summary["test"]["ndcg@10"]["basrec"] == (0.1, None)
    assert summary["test"]["ndcg@10"]["plain"][1] == pytest.approx(0.0707107, abs=1e-6)  # seeds 1 and 2
    table = compare.format_table(summary).splitlines()
    cells = [c.strip() for c in table[2].split("|")]
    assert cells == ["ndcg@10", ".0500 ± .0707", ".1000 ±   n/a", "n/a", ".0500 ± .0707", ".1000 ±   n/a", "n/a", "1"]
    assert len({len(line) for line in table}) == 1  # aligned


def test_several_methods_get_a_row_each_with_gains_over_plain_on_their_own_seeds():
    record = _record({"plain": {1: (0.10, 0.08), 2: (0.12, 0.10), 3: (0.14, 0.09)},
                      "basrec": {1: (0.11, 0.09), 2: (0.13, 0.09), 3: (0.15, 0.12)},
                      "cmr": {1: (0.09, 0.07), 2: (0.12, 0.11)}})
    record["methods"] = ["basrec", "cmr"]
    summary = compare.summarize(record)
    assert summary["seeds_by_arm"] == {"plain": [1, 2, 3], "basrec": [1, 2, 3], "cmr": [1, 2]}
    test = summary["test"]["ndcg@10"]
    assert test["cmr"] == (pytest.approx(0.09), pytest.approx(0.0282843, abs=1e-6))
    # cmr's gain is over plain's mean on cmr's seeds (0.09 over 0.09), not over all three
    assert test["gain"]["cmr"] == pytest.approx(0.0, abs=1e-12)
    assert summary["valid"]["ndcg@10"]["gain"]["cmr"] == pytest.approx(0.105 / 0.11 - 1)
    assert summary["wins"]["cmr"]["ndcg@10"] == 1 and summary["wins"]["basrec"]["ndcg@10"] == 2
    rows = [[c.strip() for c in line.split("|")] for line in compare.format_table(summary).splitlines()]
    assert rows[0] == ["method", "seeds", "valid ndcg@10", "test ndcg@10", "gain valid", "gain test", "wins"]
    assert rows[2] == ["plain", "3", ".1200 ± .0200", ".0900 ± .0100", "", "", ""]
    assert rows[3] == ["BASRec", "3", ".1300 ± .0200", ".1000 ± .0173", "+8.3%", "+11.1%", "2/3"]
    assert rows[4] == ["CMR", "2", ".1050 ± .0212", ".0900 ± .0283", "-4.5%", "+0.0%", "1/2"]


def test_changed_settings_name_the_layer_that_set_each():
    layers = [("defaults.yaml", "default", {"epochs": 200, "beta": 0.4, "dropout": 0.5}),
              ("preset.yaml", "preset", {"beta": 0.3}),
              ("dataset.yaml", "dataset", {"epochs": 8}),
              ("mine.yaml", "file", {"beta": 0.3, "n_pairs": 2}),
              ("command line / config_dict", "given", {"epochs": 20})]
    changes = compare.changed_settings(layers)
    assert changes == [
        {"key": "epochs", "value": 20, "set_by": "command line / config_dict", "under": "defaults.yaml",
         "under_value": 200},
        {"key": "n_pairs", "value": 2, "set_by": "mine.yaml", "under": None, "under_value": None},
    ]
    lines = compare.describe_changes(changes, "preset.yaml")
    assert lines[0] == "preset: preset.yaml"
    assert lines[1] == "  epochs=20 set by command line / config_dict, over 200 from defaults.yaml"


# ------------------------------------------------------------------------------ the comparison
def _unseeded(settings):
    return {k: v for k, v in settings.items() if k != "seed"}  # compare sets the seed of every phase


def test_compare_arms_start_from_stage1_and_see_the_same_batches(tiny_config_dict, tmp_path, monkeypatch):
    seen = {}  # phase folder -> (weights at its first epoch, user ids of every batch)
    train_epoch = BASRecTrainer._train_epoch

    def spy(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        phase = os.path.basename(self.config["checkpoint_dir"])
        weights, batches = seen.setdefault(phase, (_state(self.model), []))
        compute = loss_func or self.model.calculate_loss

        def recording(interaction):
            batches.append(interaction[self.config["USER_ID_FIELD"]].tolist())
            return compute(interaction)

        return train_epoch(self, train_data, epoch_idx, recording, show_progress)

    monkeypatch.setattr(BASRecTrainer, "_train_epoch", spy)
    lines = []
    settings = {**_unseeded(tiny_config_dict), "stage1_epochs": 2, "epochs": 2, "checkpoint_dir": str(tmp_path)}
    record = compare.run_compare("SASRec", "tiny", seeds=[5, 6], config_dict=settings, say=lines.append)
    run_dir = os.path.dirname(record["json_path"])
    stage1 = torch.load(os.path.join(run_dir, record["stage1"]["checkpoint"]), weights_only=True)["state_dict"]
    for seed in (5, 6):
        plain_w, plain_b = seen[f"plain-{seed}"]
        basrec_w, basrec_b = seen[f"basrec-{seed}"]
        assert all(torch.equal(plain_w[k], stage1[k]) and torch.equal(basrec_w[k], stage1[k]) for k in stage1)
        assert plain_b == basrec_b and len(plain_b) > 0
    assert seen["plain-5"][1] != seen["plain-6"][1]  # another seed, another order
    assert record["runs"]["basrec-5"]["basrec"] and not record["runs"]["plain-5"]["basrec"]
    assert set(record["runs"]) == {"plain-5", "basrec-5", "plain-6", "basrec-6"}
    saved = json.loads(open(record["json_path"]).read())
    assert saved["summary"]["seeds"] == [5, 6] and saved["history_masked"] is True
    assert saved["table"] == compare.format_table(compare.summarize(saved))
    assert any(line.startswith("metric ") and "wins/2" in line for line in lines)
    assert {"python", "torch", "recbole", "cpu_model"} <= set(saved["environment"])

    # run again: every phase is kept, nothing trains, the same record comes back
    seen.clear()
    again = compare.run_compare("SASRec", "tiny", seeds=[5, 6], config_dict=settings, say=lines.append)
    assert seen == {} and again["summary"] == record["summary"]
    assert sum("finished earlier, kept" in line for line in lines) == 5


def test_compare_from_a_given_checkpoint_and_refusals(tiny_config_dict, tmp_path):
    from recbole_basrec.quick_start import run_recbole_basrec

    first = run_recbole_basrec("SASRec", "tiny", config_dict={**tiny_config_dict, "basrec": False,
                                                                 "stage1_epochs": 0, "epochs": 1})
    settings = {**_unseeded(tiny_config_dict), "epochs": 1, "pretrained_path": first["saved_model_file"],
                "checkpoint_dir": str(tmp_path)}
    lines = []
    record = compare.run_compare("SASRec", "tiny", seeds=[1], config_dict=settings, say=lines.append)
    assert record["stage1"]["epochs_run"] == 0 and record["stage1"]["valid"] == first["best_valid_result"]
    # One seed: no sample standard deviation, null in the JSON and n/a in the printed table.
    with open(record["json_path"], encoding="utf-8") as f:
        saved = json.load(f)
    assert all(saved["summary"][split][m][arm][1] is None for split in ("valid", "test")
               for m in saved["summary"]["metrics"] for arm in ("plain", "basrec"))
    printed = "\n".join(lines)
    assert "±   n/a" in printed and "± .0000" not in printed and "(n/a: one seed has none)" in printed
    with pytest.raises(compare.CompareError, match="drop --seed"):
        compare.run_compare("SASRec", "tiny", seeds=[1], config_dict={**settings, "seed": 3})
    with pytest.raises(compare.CompareError, match="distinct seeds"):
        compare.run_compare("SASRec", "tiny", seeds=[1, 1], config_dict=settings)


def test_a_second_comparison_in_the_same_folder_is_refused(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    with compare._RunLock(str(folder)):
        (folder / ".lock").write_text("1")  # pid 1 is always alive
        with pytest.raises(compare.CompareError, match=r"another process \(1\) is running"):
            with compare._RunLock(str(folder)):
                pass
    (folder / ".lock").write_text("999999999")  # a process that is gone: its lock is taken over
    with compare._RunLock(str(folder)):
        assert (folder / ".lock").read_text() == str(os.getpid())
    assert not (folder / ".lock").exists()


def test_keep_last_interactions_keeps_each_users_most_recent_items(tiny_config_dict, tiny_data_path, caplog):
    from helpers import read_raw_sequences

    from recbole_basrec.utils import create_dataset

    run = build_tiny({**tiny_config_dict, "keep_last_interactions": 5})
    raw = read_raw_sequences(tiny_data_path)
    dataset = create_dataset(run.config)  # loaded and filtered, before build() makes samples of it
    users = dataset.id2token(dataset.uid_field, dataset.inter_feat[dataset.uid_field].to_numpy())
    items = dataset.id2token(dataset.iid_field, dataset.inter_feat[dataset.iid_field].to_numpy())
    kept = {}
    for user, item in zip(users, items):
        kept.setdefault(str(user), []).append(str(item))
    assert kept == {user: seq[-5:] for user, seq in raw.items()}
    total = sum(len(s) for s in raw.values())
    assert f"dropping {total - 5 * len(raw)} of {total}" in caplog.text


@pytest.mark.slow
def test_compare_under_two_processes_writes_one_record_and_prints_one_table(tiny_data_path, tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = ["compare", "--nproc=2", "--port=29541", "--dataset=tiny", f"--data_path={tiny_data_path}",
            f"--checkpoint_dir={tmp_path}", "--seeds", "1", "2", "--stage1_epochs=1", "--epochs=1",
            "--MAX_ITEM_LIST_LENGTH=10", "--hidden_size=16", "--inner_size=32", "--n_layers=1", "--n_heads=1",
            "--train_batch_size=32", f"--out={tmp_path / 'record.json'}"]
    proc = subprocess.run([sys.executable, os.path.join(root, "run_recbole_basrec.py"), *args],
                          capture_output=True, text=True, timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "training on 2 processes with the gloo backend" in proc.stdout
    assert sum(line.startswith("metric ") for line in proc.stdout.splitlines()) == 1  # rank 0 speaks for both
    record = json.loads((tmp_path / "record.json").read_text())
    assert set(record["runs"]) == {"plain-1", "basrec-1", "plain-2", "basrec-2"}
    assert record["summary"]["seeds"] == [1, 2]


def test_ctrl_c_names_what_was_kept_and_the_same_command_continues(tiny_config_dict, tmp_path, monkeypatch):
    from recbole_basrec.quick_start.quick_start import Interrupted

    settings = {**_unseeded(tiny_config_dict), "stage1_epochs": 1, "epochs": 2, "checkpoint_dir": str(tmp_path)}
    whole = compare.run_compare("SASRec", "tiny", seeds=[3], config_dict={**settings, "checkpoint_dir": str(
        tmp_path / "whole")}, say=lambda line: None)
    save_last = BASRecTrainer._save_last

    def stop_in_basrec(self, epoch, **kwargs):
        save_last(self, epoch, **kwargs)
        if os.path.basename(self.config["checkpoint_dir"]) == "basrec-3":
            raise KeyboardInterrupt  # Ctrl-C right after the BASRec arm's first epoch was saved

    monkeypatch.setattr(BASRecTrainer, "_save_last", stop_in_basrec)
    with pytest.raises(Interrupted, match=r"basrec-3's last epoch in .*resume\.pth; run the same command again"):
        compare.run_compare("SASRec", "tiny", seeds=[3], config_dict=settings, say=lambda line: None)
    monkeypatch.setattr(BASRecTrainer, "_save_last", save_last)
    lines = []
    resumed = compare.run_compare("SASRec", "tiny", seeds=[3], config_dict=settings, say=lines.append)
    assert any(line.startswith("[basrec-3] resumed after epoch 1") for line in lines)
    assert resumed["summary"] == whole["summary"]  # as if never interrupted


@pytest.mark.parametrize("backbone", ["GRU4Rec", "NARM"])  # a hand-written adapter and the generic path
def test_compare_serves_other_backbones_and_reads_the_users_yaml(backbone, tiny_config_dict, tmp_path):
    user_file = tmp_path / "mine.yaml"
    user_file.write_text("n_pairs: 2\n")
    settings = {**_unseeded(tiny_config_dict), "stage1_epochs": 1, "epochs": 1, "checkpoint_dir": str(tmp_path)}
    record = compare.run_compare(backbone, "tiny", seeds=[0], config_file_list=[str(user_file)],
                                 config_dict=settings, say=lambda line: None)
    assert record["model"] == backbone and record["runs"]["basrec-0"]["model"] == f"BASRec{backbone}"
    assert record["settings"]["n_pairs"] == 2
    assert {"key": "n_pairs", "value": 2, "set_by": f"config file {user_file}"}.items() <= next(
        c for c in record["changed_settings"] if c["key"] == "n_pairs").items()
    assert set(record["summary"]["test"]) >= {"ndcg@10", "hit@10"}


@pytest.mark.parametrize("args, message", [
    (["compare", "--seeds"], "error: argument --seeds: expected at least one argument (see recbole-basrec compare --help)"),
    (["compare", "--seeds", "1", "x"], "error: argument --seeds: invalid int value: 'x' (see recbole-basrec compare --help)"),
    (["compare", "--seeds", "1", "1"], "error: --seeds 1 1: give one or more distinct seeds"),
    (["compare", "--seed=3"], "error: compare sets seed itself (every arm, every seed of --seeds); drop --seed"),
    (["compare", "--basrec=False"], "error: compare sets basrec itself (every arm, every seed of --seeds); drop "
                                    "--basrec and name the methods with --methods"),
    (["compare", "--augmentation=cmr"], "error: compare sets augmentation itself (every arm, every seed of "
                                        "--seeds); drop --augmentation and name the methods with --methods"),
    (["compare", "--methods", "cmr", "--n_pairs=2"], "error: n_pairs has no effect in any arm of this comparison: it "
                                                     "belongs to augmentation basrec, and this run trains augmentation "
                                                     "none/cmr; drop it or choose one of those"),
    (["compare", "--methods=basrec,cmr"], "error: --methods basrec,cmr: separate the methods with spaces, e.g. "
                                          "--methods basrec cmr (see recbole-basrec compare --help)"),
    (["compare", "--resume=x-last.pth"], "error: compare has no --resume: run the same compare command again and it "
                                         "continues where it stopped (see recbole-basrec compare --help)"),
    (["compare", "--seeds", "1", "--seeds", "2"], "error: --seeds is given twice ([1] and [2]); give it once (see "
                                                  "recbole-basrec compare --help)"),
    (["compare", "--out=/"], "error: --out / is a directory; give the JSON file to write, e.g. /compare.json"),
    (["compare", "--methods", "cmr", "none"], "error: --methods cmr none: none is not a method; give distinct methods among basrec, ran, "
                                              "ran_s, slide_window, cmr, cmrsi, cl4srec (plain training is always "
                                              "compared)"),
    (["--nproc=abc"], "error: argument --nproc: invalid int value: 'abc' (see recbole-basrec --help)"),
])
def test_bad_compare_and_launch_options_stop_with_one_line(args, message, capsys):
    from recbole_basrec.cli import cli

    assert cli(args) == 2
    captured = capsys.readouterr()
    assert captured.err == message + "\n" and captured.out == ""
