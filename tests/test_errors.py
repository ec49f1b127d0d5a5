"""Every bad input of docs/errors.md: exit code 2 and the one stderr line the table shows."""
import os
import pickle
import re
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from run_recbole_basrec import cli  # noqa: E402


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


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_data_path_module):
    tmp = tmp_path_factory.mktemp("bad")
    data = str(tmp / "data")
    header = "user_id:token\titem_id:token\ttimestamp:float\n"
    _write(f"{data}/nohdr/nohdr.inter", "user_id\titem_id\ttimestamp\n1\t2\t3\n")
    _write(f"{data}/two/two.inter", header + "".join(f"{u}\t{u}\t1\n{u}\t{u + 1}\t2\n" for u in range(1, 20)))
    _write(f"{data}/dates/dates.inter",
           header + "".join(f"{u}\t{i}\t2024-01-0{i}\n" for u in range(1, 20) for i in range(1, 5)))
    bad_yaml = _write(str(tmp / "bad.yaml"), "epochs: [1\n")
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
    tiny = tiny_data_path_module
    small = ["--epochs=1", "--hidden_size=16", "--inner_size=32", "--embedding_size=16", "--n_layers=1",
             "--n_heads=1", "--MAX_ITEM_LIST_LENGTH=10", "--seed=0", "--checkpoint_dir=" + str(tmp)]
    on_tiny = ["--dataset=tiny", f"--data_path={tiny}"] + small
    return {
        "unknown-model": ["--model=Nope"] + on_tiny,
        "refused-model": ["--model=BERT4Rec"] + on_tiny,
        "generic-sequence-mode": ["--model=NARM", "--train_mode=sequence"] + on_tiny,
        "unknown-tta": ["--tta=tdrop"] + on_tiny,
        "missing-dataset": ["--dataset=nowhere", f"--data_path={data}"] + small,
        "malformed-header": ["--dataset=nohdr", f"--data_path={data}"] + small,
        "two-interactions": ["--dataset=two", f"--data_path={data}"] + small,
        "text-timestamps": ["--dataset=dates", f"--data_path={data}"] + small,
        "yaml-syntax": [f"--config_files={bad_yaml}"] + on_tiny,
        "missing-config-file": [f"--config_files={tmp}/nope.yaml"] + on_tiny,
        "bad-argument": ["epochs=2"] + on_tiny,
        "beta-zero": ["--beta=0"] + on_tiny,
        "swapped-rates": ["--rate_min=0.8", "--rate_max=0.3"] + on_tiny,
        "rate-above-one": ["--rate_max=1.5"] + on_tiny,
        "negative-n-pairs": ["--n_pairs=-1"] + on_tiny,
        "unknown-train-mode": ["--train_mode=foo"] + on_tiny,
        "unknown-loss-type": ["--loss_type=foo"] + on_tiny,
        "unknown-align": ["--align=left"] + on_tiny,
        "unknown-ssa-weighting": ["--ssa_weighting=mean"] + on_tiny,
        "mask-not-bool": ["--eval_mask_history=yes"] + on_tiny,
        "exact-score-not-bool": ["--exact_valid_score=1.5"] + on_tiny,
        "length-below-two": on_tiny + ["--MAX_ITEM_LIST_LENGTH=1"],
        "missing-checkpoint": ["--pretrained_path=/no/such.pth"] + on_tiny,
        "not-a-checkpoint": [f"--pretrained_path={notes}"] + on_tiny,
        "malicious-checkpoint": [f"--pretrained_path={malicious}"] + on_tiny,
        "recbole-checkpoint": [f"--pretrained_path={recbole_style}"] + on_tiny,
        "wrong-backbone-checkpoint": ["--model=GRU4Rec", f"--pretrained_path={authors}"] + on_tiny,
        "other-dataset-checkpoint": [f"--pretrained_path={other}"] + on_tiny,
    }


@pytest.fixture(scope="module")
def tiny_data_path_module(tmp_path_factory):
    from conftest import write_tiny_dataset

    root = tmp_path_factory.mktemp("tiny")
    write_tiny_dataset(str(root))
    return str(root)


def test_the_table_lists_every_case(inputs):
    assert set(TABLE) == set(inputs)


@pytest.mark.parametrize("case", sorted(TABLE))
def test_bad_input_gets_the_tables_one_line(case, inputs, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["run_recbole_basrec.py"])  # RecBole's Config also reads argv
    assert cli(inputs[case]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    pattern = ".*".join(re.escape(part) for part in TABLE[case].split("…"))
    assert re.fullmatch(pattern, err[0]), (err[0], TABLE[case])


@pytest.mark.parametrize("case", ["beta-zero", "two-interactions", "not-a-checkpoint", "yaml-syntax"])
def test_the_console_shows_only_that_line(case, inputs):
    """In a real process (RecBole's own logging and warnings included), stderr is one line."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "run_recbole_basrec.py"), *inputs[case]],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr
    pattern = ".*".join(re.escape(part) for part in TABLE[case].split("…"))
    assert re.fullmatch(pattern, proc.stderr.strip())
