"""The benchmark jobs on the tiny dataset: records, plots and the missing-data skip."""
import json
import math
import os

import pytest

import recbole_basrec  # noqa: F401

pytest.importorskip("matplotlib", reason='the benchmark jobs plot their records: pip install "recbole-basrec[bench]"')
from benchmarks import common
from benchmarks.__main__ import main
from benchmarks.accuracy import METRICS, run_accuracy
from benchmarks.speed import run_speed
from recbole_basrec.quick_start.compare import best_validation

SMALL = {
    "hidden_size": 16,
    "inner_size": 32,
    "n_layers": 1,
    "n_heads": 1,
    "embedding_size": 16,
    "eval_batch_size": 64,
    "strict_keys": False,
}


def _png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_speed_job_on_tiny(tiny_data_path, tmp_path):
    out = tmp_path / "out"
    record = run_speed(
        models=["SASRec"], modes=["sequence", "prefix"], dataset="tiny", data_path=tiny_data_path,
        batch_size=16, max_len=10, n_pairs=1, n_whole_level=1, warmup=1, steps=2, similarity_repeats=1,
        out_dir=str(out), overrides=SMALL, log=lambda *_: None,
    )
    assert os.path.isfile(record["json_path"]) and _png(record["png_path"])
    with open(record["json_path"]) as f:
        saved = json.load(f)
    for key in ("environment", "settings", "results", "similarity_build"):
        assert key in saved
    assert "reference" not in saved  # only what the job measured
    env = saved["environment"]
    for key in ("date", "command", "torch", "recbole", "torch_threads", "cpu_model"):
        assert key in env
    assert [r["train_mode"] for r in saved["results"]] == ["sequence", "prefix"]
    for r in saved["results"]:
        assert r["step_ms"]["plain_median"] > 0 and r["step_ms"]["basrec_median"] > 0
        assert r["ratio"] > 0 and r["ratio_floor"] == 3 and r["ratio_target"] == pytest.approx(3.15)
        assert r["epoch"]["plain_s"] > 0 and r["epoch"]["basrec_s"] > 0
        assert "plain" in r["memory"] and "basrec" in r["memory"]
        memory = r["memory"]["basrec"]  # Linux: peak of the current RSS while the steps ran
        assert memory["rss_peak_mib"] >= memory["rss_baseline_mib"] > 0
        assert memory["rss_peak_over_baseline_mib"] == pytest.approx(
            memory["rss_peak_mib"] - memory["rss_baseline_mib"], abs=1e-4)  # the record keeps 5 decimals
    assert saved["results"][0]["epoch"]["kind"].startswith("measured")
    assert saved["results"][1]["epoch"]["kind"].startswith("estimate")
    assert saved["similarity_build"]["median_s"] > 0


def test_accuracy_job_on_tiny(tiny_data_path, tmp_path):
    budget = {"stage1_epochs": 1, "stage1_eval_step": 1, "stage1_stopping_step": 2,
              "stage2_epochs": 1, "stage2_eval_step": 1, "stage2_stopping_step": 2}
    overrides = dict(SMALL, MAX_ITEM_LIST_LENGTH=10, train_batch_size=32)
    record = run_accuracy(
        model="SASRec", dataset="tiny", budget=budget, seed=0, data_path=tiny_data_path,
        out_dir=str(tmp_path / "out"), checkpoint_dir=str(tmp_path / "saved"), overrides=overrides,
        log=lambda *_: None,
    )
    assert os.path.isfile(record["json_path"]) and _png(record["png_path"])
    with open(record["json_path"]) as f:
        saved = json.load(f)
    assert saved["budget"] == "custom" and saved["seed"] == 0
    assert saved["hyper_parameters"]["hidden_dropout_prob"] == 0.2
    for phase in ("stage1", "plain", "basrec"):
        run = saved[phase]
        assert set(METRICS) <= set(run["valid"]) and set(METRICS) <= set(run["test"])
        assert len(run["curve"]) == 1 and "ndcg@10" in run["curve"][0]
        assert run["wall_s"]["train_and_valid"] > 0
        assert [row["epoch"] for row in run["train_losses"]] == [1]
        assert all(v > 0 and math.isfinite(v) for row in run["train_losses"] for k, v in row.items() if k != "epoch")
    assert set(saved["basrec"]["train_losses"][0]) == {"epoch", "rec", "ssa", "csa"}
    assert set(saved["plain"]["train_losses"][0]) == {"epoch", "loss"}
    assert saved["plain"]["basrec"] is False and saved["basrec"]["basrec"] is True
    assert saved["hyper_parameters"]["exact_valid_score"] is True
    assert all(saved[phase]["exact_valid_score"] is True for phase in ("stage1", "plain", "basrec"))
    assert set(saved["gain_basrec_over_plain"]["test"]) == set(METRICS)


def test_the_tested_epoch_is_the_latest_of_equal_best_scores():
    # RecBole's early stopping keeps the later of two equal scores (rounded scores tie often)
    curve = [{"ndcg@20": s} for s in (0.0320, 0.0328, 0.0325, 0.0328, 0.0321)]
    assert best_validation(curve, "ndcg@20") == 3
    assert best_validation(curve[:3], "ndcg@20") == 1
    assert best_validation([], "ndcg@20") is None


def test_published_stage2_of_fmlprec_borrows_sasrecs_schedule_for_the_dataset():
    from benchmarks.accuracy import borrowed_stage2_schedule

    # SASRec-Beauty.yaml: 200 epochs, validated from epoch 101 on NDCG@20, patience 20 validations
    assert borrowed_stage2_schedule("FMLPRec", "Beauty") == {
        "epochs": 200, "valid_start_epoch": 101, "stopping_step": 19, "valid_metric": "NDCG@20"}
    assert borrowed_stage2_schedule("FMLPRec", "Yelp")["epochs"] == 100  # SASRec-Yelp.yaml's own
    assert borrowed_stage2_schedule("SASRec", "Beauty") == {}  # its own preset applies
    assert borrowed_stage2_schedule("GRU4Rec", "Beauty") == {}
    assert borrowed_stage2_schedule("FMLPRec", "tiny") == {}  # nothing published for the dataset


def test_missing_dataset_is_skipped(tmp_path, capsys):
    missing = str(tmp_path / "nowhere" / "Beauty.txt")
    for job in ("speed", "accuracy"):
        assert main([job, "--data_file", missing, "--out", str(tmp_path / "out")]) == 0
        out = capsys.readouterr().out
        assert "skipped" in out and "not found" in out
    assert not os.path.exists(tmp_path / "out")


def test_cli_missing_dataset_exits_zero(tmp_path):
    import subprocess
    import sys

    missing = str(tmp_path / "Beauty.txt")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "speed", "--data_file", missing],
        capture_output=True, text=True, timeout=120, cwd=common.REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "skipped" in proc.stdout


def test_ctrl_c_ends_a_job_with_exit_130_and_one_line_naming_what_it_saved(tmp_path, monkeypatch, capsys):
    from benchmarks import tta

    def interrupted(**kwargs):
        common.saving(f"{tmp_path}/tta-tiny.json (every finished variant; the same command runs the rest)")
        raise KeyboardInterrupt

    monkeypatch.setattr(tta, "run_tta", interrupted)
    assert main(["tta", "--dataset", "tiny", "--data_path", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err == f"interrupted: saved {tmp_path}/tta-tiny.json (every finished variant; the same command runs the rest)\n"
    assert common.SAVED is None  # a later job in the same process starts with nothing saved


def test_accuracy_job_resumes_an_interrupted_phase_where_it_stopped(tiny_data_path, tmp_path, monkeypatch):
    from recbole_basrec.quick_start.quick_start import Interrupted
    from recbole_basrec.trainer import BASRecTrainer

    budget = {"stage1_epochs": 2, "stage1_eval_step": 1, "stage1_stopping_step": 5,
              "stage2_epochs": 4, "stage2_eval_step": 1, "stage2_stopping_step": 5}
    overrides = dict(SMALL, MAX_ITEM_LIST_LENGTH=10, train_batch_size=32, valid_start_epoch=1)

    def run(name, log=lambda *_: None):
        return run_accuracy(model="GRU4Rec", dataset="tiny", budget=budget, seed=0, data_path=tiny_data_path,
                            out_dir=str(tmp_path / name), checkpoint_dir=str(tmp_path / name / "saved"),
                            overrides=overrides, log=log)

    whole = run("whole")
    lines = []
    original = BASRecTrainer._save_last

    def interrupt(self, epoch, **kwargs):
        original(self, epoch, **kwargs)
        if f"{os.sep}basrec-0{os.sep}" in self.last_checkpoint_file and epoch == 1:
            raise KeyboardInterrupt  # right after epoch 2's state was saved

    monkeypatch.setattr(BASRecTrainer, "_save_last", interrupt)
    with pytest.raises(Interrupted, match="run the same command again to continue"):
        run("resumed")
    monkeypatch.setattr(BASRecTrainer, "_save_last", original)
    # resumed from a moved folder (a committed copy restored elsewhere): files inside name the old place
    (tmp_path / "interrupted").mkdir()
    (tmp_path / "resumed").rename(tmp_path / "interrupted" / "resumed")
    resumed = run("interrupted/resumed", log=lines.append)
    assert "[compare] stage1: finished earlier, kept" in " ".join(lines)
    assert any("[basrec-0] resumed after epoch 2" in line for line in lines)
    assert sum(line.startswith("[basrec-0] stage 2 epoch") for line in lines) == 2  # epochs 3 and 4 only
    for phase in ("stage1", "basrec", "plain"):
        assert resumed[phase]["test"] == whole[phase]["test"]
        assert resumed[phase]["epochs_run"] == whole[phase]["epochs_run"]
        # epochs 1-2 of the BASRec arm came from resume.pth (records are stored to 5 digits)
        for got, want in zip(resumed[phase]["train_losses"], whole[phase]["train_losses"], strict=True):
            assert got == pytest.approx(want, abs=1e-5)
    # the first validated epoch is 2 (valid_start_epoch 1): epoch 1 has no curve point
    assert [p["epoch"] for p in whole["basrec"]["curve"]] == [2, 3, 4]


def test_accuracy_arms_run_by_separate_processes_give_the_whole_runs_record(tiny_data_path, tmp_path):
    budget = {"stage1_epochs": 2, "stage1_eval_step": 1, "stage1_stopping_step": 5,
              "stage2_epochs": 2, "stage2_eval_step": 1, "stage2_stopping_step": 5}
    overrides = dict(SMALL, MAX_ITEM_LIST_LENGTH=10, train_batch_size=32)

    def run(name, arms):
        return run_accuracy(model="SASRec", dataset="tiny", budget=budget, seed=0, data_path=tiny_data_path,
                            out_dir=str(tmp_path / name), checkpoint_dir=str(tmp_path / name / "saved"),
                            overrides=overrides, arms=arms, log=lambda *_: None)

    whole = run("whole", ("basrec", "plain"))
    assert run("split", ["plain"]) is None  # stage 1, then the plain arm; BASRec's is still missing
    assert not os.path.exists(tmp_path / "split" / "accuracy-sasrec-tiny-custom.json")
    with open(tmp_path / "split" / "saved" / "phases.json") as f:
        assert sorted(json.load(f)) == ["plain-0", "stage1"]
    split = run("split", ["basrec"])  # the last arm to finish writes the record
    again = run("split", ("basrec", "plain"))  # everything finished: only the record is rebuilt
    for phase in ("stage1", "plain", "basrec"):
        assert split[phase]["test"] == whole[phase]["test"] == again[phase]["test"]
    assert split["gain_basrec_over_plain"] == whole["gain_basrec_over_plain"]
    assert split["data"] == whole["data"] == again["data"]
    with pytest.raises(ValueError, match="choose among"):
        run("bad", ["stage1"])


def test_tta_job_records_each_variant_and_keeps_earlier_ones(tiny_data_path, tmp_path):
    import torch

    from benchmarks.tta import BASE, run_tta
    from recbole_basrec.quick_start import build

    model = build("SASRec", "tiny", config_dict=common.quiet_config(
        {"data_path": tiny_data_path, "seed": 0, "basrec": False})).model
    checkpoint = tmp_path / "trained.pth"
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    out = tmp_path / "out"
    common_args = dict(dataset="tiny", checkpoint=str(checkpoint), data_path=tiny_data_path, seed=0, out_dir=str(out))
    run_tta(["SASRec"], variants=["none"], **common_args)
    record = run_tta(["SASRec"], variants=["tmask-authors", "tnoise"], **common_args)
    with open(out / "tta-tiny.json") as f:
        saved = json.load(f)
    assert saved == json.loads(json.dumps(common.rounded(record), default=str))
    runs = {run["variant"]: run for run in saved["runs"]}
    assert list(runs) == ["none", "tmask-authors", "tnoise"]
    assert runs["tmask-authors"]["settings"]["tta_views"] == 10
    assert runs["tmask-authors"]["settings"]["tta_keep_original"] is False
    assert runs["tnoise"]["settings"] == {**BASE, "tta": "tnoise"}  # each variant over the same base
    assert runs["none"]["test"] != runs["tmask-authors"]["test"]
    assert all(set(METRICS) <= set(run["test"]) and run["test_eval_s"] > 0 for run in saved["runs"])


def test_models_job_runs_both_arms_from_one_stage1_and_resumes(tiny_data_path, tmp_path, monkeypatch):
    from benchmarks import models as models_job

    monkeypatch.setattr(common, "REPO_ROOT", str(tmp_path))  # saved/ under tmp
    overrides = dict(SMALL, MAX_ITEM_LIST_LENGTH=10, train_batch_size=32)
    out = str(tmp_path / "out")
    record = models_job.run_models(["NARM", "STAMP"], dataset="tiny", stage1_epochs=2, stage2_epochs=1, seed=0,
                                   data_path=tiny_data_path, out_dir=out, tag="t", overrides=overrides,
                                   log=lambda *_: None)
    assert [m["backbone"] for m in record["models"]] == ["NARM", "STAMP"]
    for entry in record["models"]:
        assert entry["model"] == f"BASRec{entry['backbone']}"
        assert entry["stage1"]["epochs_run"] == 2
        for arm in ("plain", "basrec"):
            assert entry[arm]["epochs_run"] == 1 and set(METRICS) <= set(entry[arm]["test"])
            assert entry[arm]["s_per_epoch_incl_valid"] > 0
        gain = entry["gain_test"]["ndcg@10"]
        plain, basrec = entry["plain"]["test"]["ndcg@10"], entry["basrec"]["test"]["ndcg@10"]
        assert gain == pytest.approx((basrec - plain) / plain)
    assert _png(os.path.join(out, "models-tiny-t.png"))
    lines = []
    again = models_job.run_models(["NARM", "STAMP"], dataset="tiny", stage1_epochs=2, stage2_epochs=1, seed=0,
                                  data_path=tiny_data_path, out_dir=out, tag="t", overrides=overrides,
                                  log=lines.append)
    assert again["models"] == json.load(open(os.path.join(out, "models-tiny-t.json")))["models"]
    assert sum("already in" in line for line in lines) == 2

    from benchmarks import accuracy

    json_path = os.path.join(out, "models-tiny-t.json")
    real_run = accuracy.run_accuracy

    def run_while_another_process_writes(**kwargs):  # a second process, other --models, same JSON
        other = json.load(open(json_path))
        other["models"].append({**other["models"][0], "backbone": "OTHER"})
        common.write_json(other, json_path)
        return real_run(**kwargs)

    monkeypatch.setattr(accuracy, "run_accuracy", run_while_another_process_writes)
    merged = models_job.run_models(["FOSSIL"], dataset="tiny", stage1_epochs=2, stage2_epochs=1, seed=0,
                                   data_path=tiny_data_path, out_dir=out, tag="t", overrides=overrides,
                                   log=lambda *_: None)
    assert sorted(m["backbone"] for m in merged["models"]) == ["FOSSIL", "NARM", "OTHER", "STAMP"]
    assert [m["backbone"] for m in json.load(open(json_path))["models"]] == [m["backbone"] for m in merged["models"]]
    with pytest.raises(ValueError, match="stage1_epochs"):
        models_job.run_models(["NARM"], dataset="tiny", stage1_epochs=0, data_path=tiny_data_path, out_dir=out)


def test_stage2_settings_reach_both_arms_and_a_resume_under_other_settings_is_refused(tiny_data_path, tmp_path,
                                                                                      capsys):
    budget = {"stage1_epochs": 1, "stage1_eval_step": 1, "stage1_stopping_step": 2,
              "stage2_epochs": 1, "stage2_eval_step": 1, "stage2_stopping_step": 2}
    overrides = dict(SMALL, MAX_ITEM_LIST_LENGTH=10, train_batch_size=32)

    def run(stage2_config, arms=("basrec", "plain")):
        return run_accuracy(model="SASRec", dataset="tiny", budget=budget, seed=0, data_path=tiny_data_path,
                            out_dir=str(tmp_path / "out"), checkpoint_dir=str(tmp_path / "saved"),
                            overrides=overrides, arms=arms, stage2_config=stage2_config, log=lambda *_: None)

    with pytest.raises(common.BadRequest, match=r"\['hiden_dropout_prob'\] are not config keys"):
        run({"hiden_dropout_prob": 0.1})
    record = run({"hidden_dropout_prob": 0.05, "n_pairs": 2})
    assert record["stage2_config"] == {"hidden_dropout_prob": 0.05, "n_pairs": 2}
    assert record["hyper_parameters"]["hidden_dropout_prob"] == 0.05 and record["hyper_parameters"]["n_pairs"] == 2
    with open(tmp_path / "saved" / "phases.json") as f:
        phases = json.load(f)
    # stage 1 keeps the settings it has without them (the budget's dropout, n_pairs' default)
    assert record["stage1_config"]["hidden_dropout_prob"] == 0.2 and record["stage1_config"]["n_pairs"] == 1
    with pytest.raises(ValueError, match="with other settings: give this one another folder"):
        run({"hidden_dropout_prob": 0.1}, arms=["plain"])
    # other stage-2 settings from the same stage 1: a new folder seeded with a copy of stage 1 only
    (tmp_path / "saved" / "stage1").rename(tmp_path / "stage1-moved")
    seeded = tmp_path / "seeded"
    seeded.mkdir()
    (tmp_path / "stage1-moved").rename(seeded / "stage1")
    with open(seeded / "phases.json", "w") as f:
        json.dump({"stage1": phases["stage1"]}, f)
    other = run_accuracy(model="SASRec", dataset="tiny", budget=budget, seed=0, data_path=tiny_data_path,
                         out_dir=str(tmp_path / "out2"), checkpoint_dir=str(seeded), overrides=overrides,
                         stage2_config={"hidden_dropout_prob": 0.1}, log=lambda *_: None)
    assert other["stage1"]["test"] == record["stage1"]["test"]  # not retrained: the copied phase
    assert other["hyper_parameters"]["hidden_dropout_prob"] == 0.1
    with pytest.raises(SystemExit) as stop:
        main(["accuracy", "--stage2", "hidden_dropout_prob"])
    assert stop.value.code == 2 and "KEY=VALUE" in capsys.readouterr().err


def test_resume_state_without_the_stage1_checkpoint_needs_no_copy_of_a_reference_and_refuses_our_own(tiny_data_path,
                                                                                              tmp_path):
    # committed resume state leaves out the copy of the authors' checkpoint that stage 1 keeps
    budget = {"stage1_epochs": 1, "stage1_eval_step": 1, "stage1_stopping_step": 2,
              "stage2_epochs": 1, "stage2_eval_step": 1, "stage2_stopping_step": 2}
    overrides = dict(SMALL, MAX_ITEM_LIST_LENGTH=10, train_batch_size=32)

    def run(name, arms, lines=None, **kwargs):
        saved = tmp_path / name / "saved"
        return saved, run_accuracy(model="SASRec", dataset="tiny", budget=budget, seed=0, data_path=tiny_data_path,
                                   out_dir=str(tmp_path / name), checkpoint_dir=str(saved), overrides=overrides,
                                   arms=arms, log=(lines.append if lines is not None else lambda *_: None), **kwargs)

    def drop_stage1_checkpoint(saved):
        with open(saved / "phases.json") as f:
            (saved / json.load(f)["stage1"]["checkpoint"]).unlink()

    own, _ = run("own", ["plain"])
    with open(own / "phases.json") as f:
        reference = str(own / json.load(f)["stage1"]["checkpoint"])
    ref, _ = run("ref", ["plain"], from_reference=reference)
    drop_stage1_checkpoint(ref)  # the arms start from the reference itself, not from stage 1's copy of it
    lines = []
    _, record = run("ref", ["basrec"], lines, from_reference=reference)
    assert any("[compare] stage1: finished earlier, kept" in line for line in lines)
    assert record is not None and record["stage1"]["epochs_run"] == 0
    assert set(record["basrec"]["test"]) >= set(METRICS) and set(record["plain"]["test"]) >= set(METRICS)

    drop_stage1_checkpoint(own)
    with pytest.raises(ValueError, match="checkpoint .* is missing: restore that file"):
        run("own", ["basrec"])
    _, again = run("own", ["plain"])  # nothing left to train: the lost checkpoint is not needed
    assert again is None  # the BASRec arm is still unfinished


def test_scale_job_resume_keeps_recorded_points_and_measures_only_the_others(tmp_path, monkeypatch):
    import subprocess

    from benchmarks import scale

    def point(users, interactions, items, load):
        return {"users": users, "interactions": interactions, "items": items, "requested": [users, interactions, items],
                "load_s": load, "similarity_s": 1.0, "epoch_s": 2.0, "eval_s": 3.0, "peak_rss_mib": 100.0 * load}

    settings = {"steps": 10, "warmup": 2, "eval_batches": 5, "threads": 1, "seed": 0}
    common.write_json({"job": "scale", "settings": settings, "points": [point(10, 100, 10, 1.0)]},
                      str(tmp_path / "scale-cpu.json"))
    ran = []

    def fake_run(argv, **kwargs):
        ran.append(argv[argv.index("--users") + 1])
        return subprocess.CompletedProcess(argv, 0, "RESULT " + json.dumps(point(20, 200, 20, 2.0)), "")

    monkeypatch.setattr(scale.subprocess, "run", fake_run)
    record = scale.run_scale([(10, 100, 10), (20, 200, 20)], out_dir=str(tmp_path), resume=True, log=lambda *_: None)
    assert ran == ["20"]
    assert [p["load_s"] for p in record["points"]] == [1.0, 2.0]
    assert record["slopes"]["load_s"] == pytest.approx(1.0)
    assert record["slopes_fixed_items"] is None  # no two points share a catalogue size


NEWLY_SERVED = ["BERT4Rec", "SRGNN", "GCSAN", "CORE", "HGN", "NPE", "SASRecF", "FDSA", "GRU4RecF"]


def test_models_job_sets_only_keys_each_model_reads():
    from benchmarks.models import WIDTH, model_settings

    assert model_settings("SRGNN") == {"embedding_size": WIDTH, "loss_type": "BCE"}
    assert model_settings("SASRec") == {"hidden_size": WIDTH, "loss_type": "BCE"}
    assert model_settings("NARM") == {"embedding_size": WIDTH, "hidden_size": WIDTH, "loss_type": "BCE"}
    assert model_settings("CORE", "BCE")["loss_type"] == "CE"  # CORE trains with CE only
    assert model_settings("BERT4Rec", "BCE")["loss_type"] == "CE"  # its masked-item objective: CE or BPR
    assert model_settings("BERT4Rec", "BPR")["loss_type"] == "BPR"
    features = model_settings("FDSA")
    assert features["selected_features"] == ["class"] and features["load_col"]["item"] == ["item_id", "class"]
    assert model_settings("SRGNN", overrides={"embedding_size": 32})["embedding_size"] == 32


@pytest.mark.parametrize("model", NEWLY_SERVED)
def test_models_job_settings_pass_the_strict_key_check(model):
    from benchmarks.models import SETTINGS, model_settings
    from recbole_basrec.quick_start import build_config

    config = build_config(model, "ml-100k", config_dict={**SETTINGS, **model_settings(model), "state": "ERROR"})
    assert config["strict_keys"] is True and config["model"] == f"BASRec{model}"


def test_models_job_cli_passes_set_and_loss_on(monkeypatch, capsys):
    from benchmarks import models as models_job

    calls = []
    monkeypatch.setattr(models_job, "run_models", lambda **kwargs: calls.append(kwargs))
    assert main(["models", "--models", "SRGNN", "CORE", "--dataset", "ml-100k", "--set", "n_pairs=2",
                 "hidden_dropout_prob=0.1", "selected_features=[class]"]) == 0
    assert calls[0]["overrides"] == {"n_pairs": 2, "hidden_dropout_prob": 0.1, "selected_features": ["class"]}
    assert calls[0]["models"] == ["SRGNN", "CORE"] and calls[0]["loss_type"] == "BCE"
    for words, fragment in ((["n_pairs"], "--set takes KEY=VALUE pairs"), (["n_pairs=1", "n_pairs=2"], "twice"),
                            (["beta=[1"], "is not a YAML value")):
        with pytest.raises(SystemExit) as stop:
            main(["models", "--set", *words])
        err = capsys.readouterr().err.strip().splitlines()
        assert stop.value.code == 2 and fragment in err[-1]


def test_models_job_refuses_feature_models_without_item_features_and_mixed_resumes(tiny_data_path, tmp_path,
                                                                                      capsys):
    from benchmarks.models import run_models

    out = str(tmp_path / "out")
    with pytest.raises(SystemExit) as stop:
        main(["models", "--models", "NARM", "FDSA", "--dataset", "tiny", "--data_path", tiny_data_path, "--out", out])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err
    assert err == ("error: FDSA reads item features ['class'], which tiny lacks (it has no .item file); use "
                   "--dataset ml-100k, or --set selected_features=[<field>]")
    os.makedirs(out)
    common.write_json({"models": [{"backbone": "NARM"}], "settings": {"n_pairs": 1}, "seed": 0, "loss_type": "BCE"},
                      os.path.join(out, "models-tiny-t.json"))
    with pytest.raises(common.BadRequest, match="holds models run with settings .* give this run another --tag"):
        run_models(["STAMP"], dataset="tiny", data_path=tiny_data_path, out_dir=out, tag="t", seed=0,
                   log=lambda *_: None)


def test_a_builtin_dataset_resolves_again_from_the_folder_it_resolved_to(tmp_path):
    # The models job hands the accuracy job the folder resolve_dataset returned; for ml-100k without a
    # local copy that folder is empty and RecBole reads its bundled copy.
    name, folder = common.resolve_dataset("ml-100k")
    assert common.resolve_dataset(name, data_path=folder) == ("ml-100k", folder)
    assert common.resolve_dataset("ml-100k", data_path=str(tmp_path)) == ("ml-100k", str(tmp_path))
    with pytest.raises(common.DatasetMissing):
        common.resolve_dataset("Beauty", data_path=str(tmp_path))


def test_a_folder_of_another_comparison_is_refused_by_the_job_in_one_line(tiny_data_path, tmp_path, capsys):
    args = ["accuracy", "--dataset", "tiny", "--data_path", tiny_data_path, "--checkpoint_dir", str(tmp_path),
            "--out", str(tmp_path / "out")]
    (tmp_path / "settings.json").write_text('{"digest": "0", "model": "BASRecGRU4Rec", "dataset": "tiny"}')
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path} holds a comparison of BASRecGRU4Rec on tiny with other settings")
    assert len(err.splitlines()) == 1
