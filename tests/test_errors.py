"""Every bad input of docs/errors.md: exit code 2 and the one stderr line the table shows,
with nothing printed before it."""
import os
import pickle
import re
import sys
import urllib.error

import pytest
import torch

from helpers import ROOT, write_tiny_dataset

sys.path.insert(0, ROOT)
from run_recbole_basrec import cli  # noqa: E402

COMMON = ["--MAX_ITEM_LIST_LENGTH=10", "--seed=0", "--train_batch_size=32", "--eval_batch_size=64"]
TINY_RUN = ["--hidden_size=16", "--inner_size=32", "--n_layers=1", "--n_heads=1"] + COMMON


def _table():
    rows = {}
    with open(os.path.join(ROOT, "docs", "errors.md"), encoding="utf-8") as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 3 and cells[2].startswith("`error:"):
                rows[cells[0]] = cells[2].strip("`")
    return rows


TABLE = _table()


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _write(path, text, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(text)
    return str(path)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_data):
    """One finished one-epoch run on the tiny dataset: its best and last checkpoints."""
    folder = str(tmp_path_factory.mktemp("run"))
    code = cli(["--dataset=tiny", f"--data_path={tiny_data}", "--stage1_epochs=0", "--epochs=1",
                f"--checkpoint_dir={folder}", *TINY_RUN])
    assert code == 0
    best = [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".pth") and "-last" not in f]
    return best[0], best[0].replace(".pth", "-last.pth")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("tiny"))
    write_tiny_dataset(root)
    return root


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_data, trained_run):
    tmp = tmp_path_factory.mktemp("bad")
    data = str(tmp / "data")
    header = "user_id:token\titem_id:token\ttimestamp:float\n"
    rows = "".join(f"{u}\t{i}\t{i}\n" for u in range(1, 20) for i in range(1, 6))
    _write(f"{data}/nohdr/nohdr.inter", "user_id\titem_id\ttimestamp\n1\t2\t3\n")
    _write(f"{data}/two/two.inter", header + "".join(f"{u}\t{u}\t1\n{u}\t{u + 1}\t2\n" for u in range(1, 20)))
    _write(f"{data}/dates/dates.inter",
           header + "".join(f"{u}\t{i}\t2024-01-0{i}\n" for u in range(1, 20) for i in range(1, 5)))
    _write(f"{data}/empty/empty.inter", "")
    _write(f"{data}/headeronly/headeronly.inter", header)
    _write(f"{data}/bom/bom.inter", ("\ufeff" + header + rows).encode("utf-8"), "wb")
    _write(f"{data}/binary/binary.inter", bytes(range(256)) * 8, "wb")
    _write(f"{data}/nantime/nantime.inter", header + rows + "1\t7\t\n")
    _write(f"{data}/ufloat/ufloat.inter", header.replace("user_id:token", "user_id:float") + rows)
    _write(f"{data}/hdr2/hdr2.inter", header + rows + header + rows)
    lines = rows.splitlines(keepends=True)
    _write(f"{data}/wide/wide.inter", header + "".join(lines[:5]) + "3\t4\t5\t6\n" + "".join(lines[5:]) + "\n7\t8\n")
    _write(f"{data}/nouser/nouser.inter", "member:token\titem_id:token\ttimestamp:float\n1\t2\t3\n")
    _write(f"{data}/inftime/inftime.inter", header + rows + "1\t7\tinf\n2\t7\t1e400\n")
    _write(f"{data}/tokentime/tokentime.inter", header.replace("timestamp:float", "timestamp:token") + rows)
    _write(f"{data}/dupcol/dupcol.inter", header.replace("item_id:token", "item_id:token\titem_id:token") + rows)
    os.makedirs(f"{data}/dirinter/dirinter.inter")
    write_tiny_dataset(str(tmp / "other"), seed=1)  # another tiny.inter under the same name
    bad_yaml = _write(str(tmp / "bad.yaml"), "epochs: [1\n")
    typo_yaml = _write(str(tmp / "typo.yaml"), "n_pair: 2\n")
    nan_yaml = _write(str(tmp / "nan.yaml"), "beta: .nan\n")
    inf_yaml = _write(str(tmp / "inf.yaml"), "beta: .inf\n")
    list_yaml = _write(str(tmp / "list.yaml"), "- epochs: 2\n- beta: 0.3\n")
    twice_yaml = _write(str(tmp / "twice.yaml"), "epochs: 2\nbeta: 0.3\nepochs: 3\n")
    binary_yaml = _write(str(tmp / "binary.yaml"), b"\xff\xfe\x00\x01", "wb")
    nproc_yaml = _write(str(tmp / "nproc.yaml"), "nproc: 2\n")
    notes = _write(str(tmp / "notes.txt"), "not a checkpoint\n")
    malicious = str(tmp / "malicious.pth")
    with open(malicious, "wb") as f:
        pickle.dump({"state_dict": _Payload()}, f)
    recbole_style = str(tmp / "recbole.pth")
    import argparse

    torch.save({"state_dict": {}, "config": argparse.Namespace(model="SASRec")}, recbole_style)
    authors = str(tmp / "authors-sasrec.pt")
    torch.save({"item_embeddings.weight": torch.zeros(32, 16),
                "item_encoder.layer.0.attention.query.weight": torch.zeros(16, 16)}, authors)
    other = str(tmp / "other.pth")
    torch.save({"state_dict": {"item_embedding.weight": torch.zeros(5, 16)}}, other)
    a_file = _write(str(tmp / "a-file"), "x")
    best, last = trained_run
    damaged = str(tmp / "damaged-last.pth")
    with open(last, "rb") as f, open(damaged, "wb") as out:
        out.write(f.read(20000))  # a checkpoint of ours, cut short

    def run(*extra, dataset="tiny", path=tiny_data, sizes=TINY_RUN):
        """``extra`` over a small one-epoch run: a key in ``extra`` replaces the base's."""
        given = {arg.partition("=")[0] for arg in extra}
        base = [f"--dataset={dataset}", f"--data_path={path}", "--stage1_epochs=0", "--epochs=1", *sizes,
                f"--checkpoint_dir={tmp}/saved"]
        return list(extra) + [arg for arg in base if arg.partition("=")[0] not in given]

    def on(name):
        return run(dataset=name, path=data)

    return {
        "unknown-model": run("--model=Nope", sizes=COMMON),
        "refused-model": run("--model=TransRec", sizes=COMMON),
        "generic-sequence-mode": run("--model=NARM", "--train_mode=sequence", sizes=COMMON),
        "unknown-tta": run("--tta=tdrop"),
        "missing-dataset": run(dataset="nowhere", path=data),
        "dataset-path": run(dataset="../data/tiny", path=data),
        "unknown-augmentation": run("--augmentation=mixup"),
        "basrec-false-with-method": run("--basrec=False", "--augmentation=cmr"),
        "bert4rec-method": run("--model=BERT4Rec", "--augmentation=cl4srec", sizes=COMMON),
        "zero-layers": run("--n_layers=0"),
        "zero-width": run("--hidden_size=0"),
        "dropout-above-one": run("--hidden_dropout_prob=1.5"),
        "heads-not-dividing": run("--n_heads=3"),
        "mask-ratio-zero": run("--model=BERT4Rec", "--mask_ratio=0.0", sizes=COMMON),
        "no-graph-step": run("--model=SRGNN", "--step=0", sizes=COMMON),
        "gru-no-layers": run("--model=GRU4Rec", "--num_layers=0", sizes=COMMON),
        "tta-key-without-tta": run("--tta_views=5"),
        "basrec-key-without-basrec": run("--basrec=False", "--n_pairs=5"),
        "method-key-of-another-method": run("--augmentation=cmr", "--cl_weight=0.2"),
        "negatives-with-ce": run("--loss_type=CE", "--train_neg_sample_args={'distribution': 'uniform', 'sample_num': 1}"),
        "gpu-id-not-a-number": run("--gpu_id=abc"),
        "window-beyond-memory": run("--MAX_ITEM_LIST_LENGTH=10000"),
        "unresolvable-ip": run("--nproc=2", "--ip=999.1.1.1"),
        "option-twice": run() + ["--dataset=other"],
        "launch-key-one-process": run("--port=5679"),
        "empty-ip": run("--nproc=2", "--ip="),
        "config-files-comma": run("--config_files=a.yaml,b.yaml"),
        "other-backbones-own-key": run("--mask_ratio=0.5"),
        "unknown-activation": run("--hidden_act=foo"),
        "negative-init": run("--initializer_range=-1"),
        "keep-last-two": run("--keep_last_interactions=2"),
        "topk-beyond-items": run("--topk=[5,10,50]"),
        "damaged-checkpoint": [f"--resume={damaged}"],
        "rate-without-views": run("--n_pairs=0", "--rate_min=0.3"),
        "no-augmentation-at-all": run("--n_pairs=0", "--n_whole_level=0"),
        "cl-rate-without-operator": run("--augmentation=cl4srec", "--cl_operators=['crop']", "--mask_rate=0.5"),
        "ce-block-without-ce": run("--ce_logits_mib=10"),
        "windows-in-prefix-mode": run("--train_mode=prefix", "--sequence_windows=all"),
        "source-with-random": run("--similarity_model=Random", "--similarity_source=train"),
        "stage1-epochs-with-pretrained": run(f"--pretrained_path={best}", "--stage1_epochs=5"),
        "aug-weight-zero": run("--augmentation=cmr", "--aug_weight=0"),
        "aug-weight-huge": run("--augmentation=cmr", "--aug_weight=1e30"),
        "lr-beyond-float32": run("--learning_rate=1e300"),
        "n-pairs-huge": run("--n_pairs=1000000"),
        "n-whole-level-huge": run("--n_whole_level=100000"),
        "aug-views-huge": run("--augmentation=cmr", "--aug_views=100000"),
        "cl-temperature-tiny": run("--augmentation=cl4srec", "--cl_temperature=1e-10"),
        "initializer-range-huge": run("--initializer_range=1e30"),
        "feature-key-of-other-backbones": run("--selected_features=['class']"),
        "worker-negative": run("--worker=-1"),
        "slide-window-longer-than-input": run("--augmentation=slide_window", "--slide_window_length=100"),
        "tta-mask-rate-zero": run("--tta=tmask", "--tta_mask_rate=0"),
        "tta-noise-zero": run("--tta=tnoise", "--tta_noise=[0,0]"),
        "nan-in-a-list": run("--tta_noise=[nan,1]"),
        "value-metric": run("--metrics=['AUC']"),
        "nproc-beyond-the-machine": run("--nproc=100000"),
        "cl4srec-batch-of-one": run("--augmentation=cl4srec", "--train_batch_size=1"),
        "stopping-without-validation": run("--eval_step=0", "--stopping_step=3"),
        "mask-rate-zero": run("--augmentation=cmr", "--mask_rate=0.0"),
        "crop-rate-one": run("--augmentation=cmr", "--crop_rate=1.0"),
        "narm-dropout-above-one": run("--model=NARM", "--train_mode=prefix", "--dropout_probs=[1.5,0.2]", sizes=COMMON),
        "launch-timeout-one-process": run("--launch_timeout=5"),
        "resume-epochs-zero": [f"--resume={last}", "--epochs=0"],
        "malformed-header": on("nohdr"),
        "no-user-column": on("nouser"),
        "row-widths": on("wide"),
        "float-user-ids": on("ufloat"),
        "header-repeated": on("hdr2"),
        "two-interactions": on("two"),
        "text-timestamps": on("dates"),
        "time-as-token": on("tokentime"),
        "filters-leave-nothing": run("--user_inter_num_interval=[100,inf)"),
        "empty-file": on("empty"),
        "header-only-file": on("headeronly"),
        "byte-order-mark": on("bom"),
        "binary-file": on("binary"),
        "missing-timestamp": on("nantime"),
        "yaml-syntax": run(f"--config_files={bad_yaml}"),
        "yaml-list": run(f"--config_files={list_yaml}"),
        "yaml-key-twice": run(f"--config_files={twice_yaml}"),
        "yaml-binary": run(f"--config_files={binary_yaml}"),
        "missing-config-file": run(f"--config_files={tmp}/nope.yaml"),
        "bad-argument": run("epochs=2"),
        "argument-twice": run() + ["--epochs=2"],
        "unquoted-list": run("--selected_features=[class]"),
        "unknown-key": run("--n_pair=2"),
        "unknown-key-in-yaml": run(f"--config_files={typo_yaml}"),
        "other-tools-key": run("--lr=1e9"),
        "key-in-wrong-case": run("--max_item_list_length=10"),
        "other-backbones-key": run("--model=GRU4Rec", "--n_heads=2", sizes=COMMON),
        "derived-key": run("--MODEL_TYPE=1"),
        "beta-zero": run("--beta=0"),
        "beta-negative": run("--beta=-1.5"),
        "beta-overflow": run("--beta=1e400"),
        "beta-nan-in-yaml": run(f"--config_files={nan_yaml}"),
        "beta-inf-in-yaml": run(f"--config_files={inf_yaml}"),
        "beta-text": run("--beta=wide"),
        "swapped-rates": run("--rate_min=0.8", "--rate_max=0.3"),
        "rate-above-one": run("--rate_max=1.5"),
        "rate-zero": run("--rate_min=0"),
        "negative-n-pairs": run("--n_pairs=-1"),
        "fractional-rounds": run("--n_whole_level=1.5"),
        "negative-weight": run("--aml_weight=-1"),
        "unknown-train-mode": run("--train_mode=foo"),
        "unknown-windows": run("--sequence_windows=first"),
        "unknown-loss-type": run("--loss_type=foo"),
        "unknown-align": run("--align=left"),
        "unknown-ssa-weighting": run("--ssa_weighting=mean"),
        "unknown-similarity": run("--similarity_model=Item2Vec"),
        "basrec-not-bool": run("--basrec=yes"),
        "reorder-not-bool": run("--reorder_keep_last=2"),
        "mask-not-bool": run("--eval_mask_history=yes"),
        "exact-score-not-bool": run("--exact_valid_score=1.5"),
        "tta-views-zero": run("--tta=tmask", "--tta_views=0"),
        "tta-noise-swapped": run("--tta_noise=[1.0,0.5]"),
        "tta-noise-overflow": run("--tta_noise=[0,1e400]"),
        "tta-noise-huge": run("--tta_noise=[0,1e30]"),
        "tta-noise-not-a-pair": run("--tta_noise=0.5"),
        "tta-mask-rate-one": run("--tta_mask_rate=1"),
        "length-below-two": run("--MAX_ITEM_LIST_LENGTH=1"),
        "length-text": run("--MAX_ITEM_LIST_LENGTH=abc"),
        "epochs-zero": run("--epochs=0"),
        "epochs-negative": run("--epochs=-1"),
        "epochs-text": run("--epochs=abc"),
        "epochs-fractional": run("--epochs=1.5"),
        "learning-rate-zero": run("--learning_rate=0"),
        "learning-rate-text": run("--learning_rate=abc"),
        "weight-decay-negative": run("--weight_decay=-0.1"),
        "batch-size-zero": run("--train_batch_size=0"),
        "eval-batch-fractional": run("--eval_batch_size=2.5"),
        "seed-text": run("--seed=abc"),
        "seed-negative": run("--seed=-3"),
        "stopping-step-negative": run("--stopping_step=-1"),
        "never-validates": run("--valid_start_epoch=5"),
        "stage1-never-validates": run("--stage1_epochs=2", "--valid_start_epoch=3", "--epochs=5"),
        "eval-step-beyond-epochs": run("--eval_step=3"),
        "valid-metric-unknown": run("--valid_metric=Bogus@10"),
        "valid-metric-cutoff": run("--valid_metric=NDCG@7"),
        "unknown-metric": run("--metrics=['Hit','Bogus']"),
        "topk-zero": run("--topk=[0,10]"),
        "checkpoint-dir-under-file": run(f"--checkpoint_dir={a_file}/saved"),
        "checkpoint-dir-unreachable": run("--checkpoint_dir=/proc/nope"),
        "wandb-missing": run("--log_wandb=True"),
        "batch-not-split-by-nproc": run("--nproc=3"),
        "nproc-in-config": run(f"--config_files={nproc_yaml}"),
        "missing-checkpoint": run("--pretrained_path=/no/such.pth"),
        "not-a-checkpoint": run(f"--pretrained_path={notes}"),
        "malicious-checkpoint": run(f"--pretrained_path={malicious}"),
        "recbole-checkpoint": run(f"--pretrained_path={recbole_style}"),
        "wrong-backbone-checkpoint": run("--model=GRU4Rec", f"--pretrained_path={authors}", sizes=COMMON),
        "other-dataset-checkpoint": run(f"--pretrained_path={other}"),
        "resume-best-checkpoint": [f"--resume={best}"],
        "resume-changed-setting": [f"--resume={last}", "--n_pairs=3", "--beta=0.5"],
        "resume-other-model": [f"--resume={last}", "--model=GRU4Rec"],
        "resume-missing": ["--resume=/no/such-last.pth"],
        "resume-a-folder": [f"--resume={tmp}"],
        "pretrained-a-folder": run(f"--pretrained_path={tmp}"),
        "config-a-folder": run(f"--config_files={tmp}"),
        "empty-value": run("--checkpoint_dir="),
        "unquoted-metrics": run("--metrics=[Foo]"),
        "resume-other-data": [f"--resume={last}", f"--data_path={tmp}/other"],
        "inter-infinite-time": on("inftime"),
        "column-twice": on("dupcol"),
        "inter-a-directory": on("dirinter"),
        "general-model": run("--model=BPR", sizes=COMMON),
        "empty-model": run("--model="),
        "search-key-without-search": run("--num_samples=2"),
        "search-output-a-folder": run("--search=SASRec", "--num_samples=1", f"--output={tmp}"),
        "compare-seed-too-big": ["compare", "--dataset=tiny", f"--data_path={tiny_data}", "--seeds", "1", "4294967296"],
        "compare-seed-negative": ["compare", "--dataset=tiny", f"--data_path={tiny_data}", "--seeds", "-1"],
        "compare-empty-out": ["compare", "--dataset=tiny", f"--data_path={tiny_data}", "--out="],
        "load-col-without-time": run("--load_col={'inter': ['user_id', 'item_id']}"),
        "id-field-is-the-time-field": run("--ITEM_ID_FIELD=timestamp"),
        "ray-address-unreachable": run("--search=SASRec", "--num_samples=1", "--ray_address=notahost.invalid:6379"),
        "lr-below-float32": run("--learning_rate=1e-300"),
        "eval-mode-labeled": run("--eval_args={'mode': 'labeled'}"),
        "worker-huge": run("--worker=1000"),
        "seeds-without-compare": ["--seeds", "1", "2"],
        "compare-not-first": ["--epochs=1", "compare"],
        "compare-search": ["compare", "--search=SASRec"],
    }


def test_the_table_lists_every_case_and_at_least_sixty(inputs):
    assert set(TABLE) == set(inputs)
    assert len(TABLE) >= 60


def _one_line(case, capsys):
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.strip()]
    assert captured.out.strip() == "", captured.out  # nothing of RecBole's before the error
    assert len(err) == 1, err
    pattern = ".*".join(re.escape(part) for part in TABLE[case].split("…"))
    assert re.fullmatch(pattern, err[0]), (err[0], TABLE[case])


@pytest.mark.parametrize("case", sorted(TABLE))
def test_bad_input_gets_the_tables_one_line(case, inputs, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["run_recbole_basrec.py"])
    if case == "wandb-missing":
        monkeypatch.setitem(sys.modules, "wandb", None)  # wandb absent, whatever this machine has
    capsys.readouterr()
    assert cli(inputs[case]) == 2
    _one_line(case, capsys)


def test_an_offline_download_names_the_url_and_the_folder(tmp_path, monkeypatch, capsys):
    import recbole.utils.url as url

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(url.ur, "urlopen", offline)
    monkeypatch.setattr(sys, "argv", ["run_recbole_basrec.py"])
    code = cli(["--dataset=ml-1m", f"--data_path={tmp_path}", "--epochs=1", f"--checkpoint_dir={tmp_path}/saved"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "downloading it from https://" in err[0] and "ml-1m.zip" in err[0], err
    assert f"into {tmp_path}/ml-1m" in err[0]


@pytest.mark.slow
@pytest.mark.parametrize("case", ["beta-zero", "two-interactions", "not-a-checkpoint", "beta-nan-in-yaml",
                                  "epochs-fractional", "valid-metric-unknown", "argument-twice"])
def test_the_console_shows_only_that_line(case, inputs):
    """In a real process (RecBole's own logging and warnings included), stderr is one line."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "run_recbole_basrec.py"), *inputs[case]],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert proc.returncode == 2
    assert proc.stdout.strip() == ""
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr
    pattern = ".*".join(re.escape(part) for part in TABLE[case].split("…"))
    assert re.fullmatch(pattern, proc.stderr.strip())
