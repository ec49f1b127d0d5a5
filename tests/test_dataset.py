"""BASRec's training protocols on RecBole data: prefix (RecBole's) and sequence (the paper's)."""
import numpy as np
import pytest
from helpers import read_raw_sequences
from recbole.data import data_preparation
from recbole_basrec.utils import create_dataset

import recbole_basrec  # noqa: F401
from recbole_basrec.data.dataset import TARGET_LIST_FIELD, sequence_windows
from recbole_basrec.quick_start.quick_start import build_config


def test_windows_cover_every_training_target_exactly_once():
    user_ptr = np.array([0, 7, 7, 9, 10])  # users with 7, 0, 2 and 1 training items
    items = np.arange(1, 11)
    users, inputs, targets, lengths = sequence_windows(user_ptr, items, max_len=3)
    assert users.tolist() == [0, 0, 2]  # user 0: 6 targets -> 2 windows; user 3: none
    assert lengths.tolist() == [3, 3, 1]
    assert inputs.tolist() == [[4, 5, 6], [1, 2, 3], [8, 0, 0]]
    assert targets.tolist() == [[5, 6, 7], [2, 3, 4], [9, 0, 0]]


def test_last_window_only_keeps_the_last_max_len_targets():
    users, inputs, targets, lengths = sequence_windows(np.array([0, 7]), np.arange(1, 8), 3, last_only=True)
    assert inputs.tolist() == [[4, 5, 6]] and targets.tolist() == [[5, 6, 7]]


@pytest.fixture
def built(tiny_data_path, tmp_path):
    def build(**overrides):
        config = build_config(
            "SASRec",
            "tiny",
            config_dict={"data_path": tiny_data_path, "checkpoint_dir": str(tmp_path), "state": "ERROR", **overrides},
        )
        dataset = create_dataset(config)
        return config, dataset, data_preparation(config, dataset)

    return build


def test_sequence_mode_targets_are_the_training_part_of_each_user(built, tiny_data_path):
    config, dataset, (train, valid, test) = built(train_mode="sequence", sequence_windows="all", MAX_ITEM_LIST_LENGTH=5)
    feat = train._dataset.inter_feat
    raw = read_raw_sequences(tiny_data_path)
    by_user = {}
    for u, inp, tgt, n in zip(
        feat["user_id"].numpy(), feat["item_id_list"].numpy(), feat[TARGET_LIST_FIELD].numpy(), feat["item_length"].numpy()
    ):
        assert (inp[n:] == 0).all() and (tgt[n:] == 0).all() and (tgt[:n] > 0).all()
        assert (inp[1:n] == tgt[: n - 1]).all()  # targets are the inputs shifted by one
        by_user.setdefault(u, []).append(dataset.id2token("item_id", tgt[:n]).tolist())
    assert len(by_user) == len(raw)
    for u, windows in by_user.items():
        targets = [t for w in reversed(windows) for t in w]
        assert targets == raw[dataset.id2token("user_id", u)][1:-2]  # every train target exactly once
    user_ptr, items = train.dataset.train_sequences
    assert user_ptr[-1] == sum(len(s) - 2 for s in raw.values())


def test_prefix_mode_is_recbole_data_and_evaluation_is_leave_one_out(built, tiny_data_path):
    config, dataset, (train, valid, test) = built(train_mode="prefix")
    assert TARGET_LIST_FIELD not in train._dataset.inter_feat
    raw = read_raw_sequences(tiny_data_path)
    assert len(train._dataset) == sum(len(s) - 3 for s in raw.values())
    feat = test._dataset.inter_feat
    for u, target in zip(feat["user_id"].numpy(), feat["item_id"].numpy()):
        assert dataset.id2token("item_id", target) == raw[dataset.id2token("user_id", u)][-1]


def test_missing_dataset_names_the_file_and_the_fix(tmp_path):
    config = build_config("SASRec", "nowhere", config_dict={"data_path": str(tmp_path), "state": "ERROR"})
    with pytest.raises(FileNotFoundError, match=r"nowhere\.inter.*recbole_basrec\.data\.convert"):
        create_dataset(config)


def test_malformed_atomic_header_is_reported(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "bad.inter").write_text("user_id\titem_id\ttimestamp\n1\t2\t3\n")
    config = build_config("SASRec", "bad", config_dict={"data_path": str(tmp_path), "state": "ERROR"})
    with pytest.raises(ValueError, match="Malformed atomic file.*'user_id'.*name:type"):
        create_dataset(config)
