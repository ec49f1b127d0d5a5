"""Sequence mode makes only the prefix samples it uses: the built data must equal RecBole's path."""
import numpy as np
import pytest
import torch
from recbole.data import data_preparation
from recbole_basrec.utils import create_dataset
from recbole.data.dataset import SequentialDataset

import recbole_basrec  # noqa: F401
from recbole_basrec.data.dataset import BASRecDataset
from recbole_basrec.quick_start.quick_start import build_config


def _write(root):
    """Users of 1 to 12 interactions, timestamp ties within and across users, rows out of order,
    and a second float column (rating)."""
    rng = np.random.default_rng(3)
    rows = []
    lengths = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 12, 7: 9, 8: 6, 9: 7}
    for user, length in lengths.items():
        times = np.sort(rng.integers(0, 8, length)) if user in (7, 8) else np.arange(length) * 3 + user % 4
        for t in times:
            rows.append((user, int(rng.integers(1, 15)), int(t), float(rng.integers(1, 6))))
    order = rng.permutation(len(rows))
    (root / "hand").mkdir()
    lines = ["user_id:token\titem_id:token\ttimestamp:float\trating:float"]
    lines += ["%d\t%d\t%d\t%.1f" % rows[i] for i in order]
    (root / "hand" / "hand.inter").write_text("\n".join(lines) + "\n")
    return str(root)


def _build(data_path, checkpoint_dir, **overrides):
    config = build_config("SASRec", "hand", config_dict={
        "data_path": data_path, "checkpoint_dir": str(checkpoint_dir), "state": "ERROR", "MAX_ITEM_LIST_LENGTH": 4,
        "load_col": {"inter": ["user_id", "item_id", "timestamp", "rating"]}, **overrides})
    dataset = create_dataset(config)
    splits = data_preparation(config, dataset)
    return dataset, [loader._dataset for loader in splits]


def _assert_same(new, stock):
    (dataset, splits), (stock_dataset, stock_splits) = new, stock
    for split, stock_split in zip(splits, stock_splits):
        feat, stock_feat = split.inter_feat.interaction, stock_split.inter_feat.interaction
        assert list(feat) == list(stock_feat)
        for field in feat:
            assert feat[field].dtype == stock_feat[field].dtype, field
            assert torch.equal(feat[field], stock_feat[field]), field
        for name in ("train_sequences", "eval_history"):
            assert (getattr(split, name) is None) == (getattr(stock_split, name) is None)
            for a, b in zip(getattr(split, name) or (), getattr(stock_split, name) or ()):
                assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert dataset.inter_num == stock_dataset.inter_num
    assert dataset.avg_actions_of_users == pytest.approx(stock_dataset.avg_actions_of_users)
    assert dataset.avg_actions_of_items == pytest.approx(stock_dataset.avg_actions_of_items)
    assert str(dataset) == str(stock_dataset)


@pytest.mark.parametrize("overrides", [
    {"train_mode": "sequence", "sequence_windows": "all"},
    {"train_mode": "sequence", "sequence_windows": "last"},
    {"train_mode": "sequence", "sequence_windows": "all", "eval_args": {  # not leave-one-out: RecBole's path
        "split": {"RS": [0.5, 0.25, 0.25]}, "order": "TO", "group_by": "user", "mode": "full"}},
    {"train_mode": "prefix"},
])
def test_build_equals_recbole_augmentation_of_every_prefix(tmp_path, monkeypatch, overrides):
    data_path = _write(tmp_path)
    new = _build(data_path, tmp_path / "new", **overrides)
    with monkeypatch.context() as patch:
        patch.setattr(BASRecDataset, "data_augmentation", SequentialDataset.data_augmentation)
        stock = _build(data_path, tmp_path / "stock", **overrides)
    _assert_same(new, stock)
    reduced = overrides["train_mode"] == "sequence" and "eval_args" not in overrides
    assert (len(new[0].inter_feat) < len(stock[0].inter_feat)) == reduced
