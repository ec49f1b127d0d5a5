"""Data that RecBole would change silently gets a warning with its count; exact values on hand-made files."""
import logging

import numpy as np
import pytest
from recbole.data import data_preparation
from recbole_basrec.utils import create_dataset

import recbole_basrec  # noqa: F401
from recbole_basrec.data.dataset import _target_in_history
from recbole_basrec.quick_start.quick_start import build_config

HEADER = "user_id:token\titem_id:token\ttimestamp:float\n"


def _load(tmp_path, name, rows, caplog, **overrides):
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"{name}.inter").write_text(HEADER + "".join(f"{u}\t{i}\t{t}\n" for u, i, t in rows))
    config = build_config("SASRec", name, config_dict={"data_path": str(tmp_path), "checkpoint_dir": str(tmp_path / "s"),
                                                      "MAX_ITEM_LIST_LENGTH": 5, **overrides})
    with caplog.at_level(logging.WARNING):
        dataset = create_dataset(config)
        rows_loaded = len(dataset.inter_feat)
        splits = data_preparation(config, dataset)
    return rows_loaded, splits, [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _walks(users, length):
    return [(u, (u + k) % 9 + 1, k) for u in range(1, users + 1) for k in range(length)]


def test_exact_duplicate_rows_are_dropped_with_their_count(tmp_path, caplog):
    rows = _walks(6, 5)
    loaded, splits, warnings = _load(tmp_path, "dup", rows + rows[:7], caplog)
    assert loaded == 30
    assert "dropped 7 duplicated (user_id, item_id, timestamp) rows of 37" in " ".join(warnings)
    test = splits[2].dataset.inter_feat
    assert len(test) == 6  # every user still has its test target, not a copy in its history


def test_users_too_short_to_evaluate_are_counted(tmp_path, caplog):
    rows = _walks(5, 5) + [(6, 1, 0), (6, 2, 1), (7, 3, 0)]
    _, splits, warnings = _load(tmp_path, "short", rows, caplog)
    assert "2 of 7 users have fewer than 3 interactions and are not evaluated" in " ".join(warnings)


def test_repeated_targets_under_the_history_mask_are_counted(tmp_path, caplog):
    rows = _walks(4, 5) + [(5, 1, 0), (5, 2, 1), (5, 3, 2), (5, 1, 3), (5, 2, 4)]  # user 5 repeats items 1, 2
    _, _, warnings = _load(tmp_path, "repeat", rows, caplog)
    text = " ".join(warnings)
    assert "1 of 5 validation targets also occur earlier" in text and "1 of 5 test targets also occur earlier" in text
    caplog.clear()
    _, _, warnings = _load(tmp_path, "repeat2", rows, caplog, eval_mask_history=False)
    assert not any("occur earlier" in w for w in warnings)


def test_missing_times_are_refused_with_their_count(tmp_path, caplog):
    with pytest.raises(ValueError, match=r"Dataset 'gaps': 2 of 12 interactions have no timestamp"):
        _load(tmp_path, "gaps", _walks(2, 5) + [(1, 4, ""), (2, 4, "")], caplog)


def test_target_in_history_counts_only_earlier_occurrences():
    # user 0: 5 3 5 7 ; user 1: 2 2
    full_ptr, items = np.array([0, 4, 6]), np.array([5, 3, 5, 7, 2, 2])
    users, targets, lengths = np.array([0, 0, 0, 1]), np.array([5, 7, 3, 2]), np.array([2, 3, 1, 1])
    # 5 at position 2 follows 5 at 0 (yes); 7 at 3 (no); 3 at position 1 (no); 2 at 1 follows 2 at 0 (yes)
    assert _target_in_history(full_ptr, items, users, targets, lengths) == 2


def test_a_window_longer_than_every_input_is_named_with_the_longest(tiny_config_dict, caplog):
    from helpers import build_tiny

    build_tiny(tiny_config_dict, MAX_ITEM_LIST_LENGTH=20)
    # the tiny users have at most 16 interactions: 14 training items and the validation one are the longest input
    assert "MAX_ITEM_LIST_LENGTH=20 is longer than any input sequence (the longest has 15 items)" in caplog.text
    caplog.clear()
    build_tiny(tiny_config_dict, MAX_ITEM_LIST_LENGTH=15)
    assert "MAX_ITEM_LIST_LENGTH" not in caplog.text
