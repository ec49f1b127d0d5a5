"""Helpers the tests import: a tiny, learnable sequential dataset as RecBole atomic files, and
one seeded build of config, data, model and trainer on it."""
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_USERS = 64
TINY_ITEMS = 30


def write_tiny_dataset(root, name="tiny", n_users=TINY_USERS, n_items=TINY_ITEMS, seed=0):
    """Write ``root/name/name.inter``: each user walks a ring of items (i -> i+1 mod n) with a
    random start and length 8..16, plus a little noise, so next-item prediction is learnable."""
    rng = np.random.default_rng(seed)
    path = os.path.join(root, name)
    os.makedirs(path, exist_ok=True)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for u in range(1, n_users + 1):
        length = int(rng.integers(8, 17))
        start = int(rng.integers(0, n_items))
        items = [(start + k) % n_items + 1 for k in range(length)]
        if rng.random() < 0.2:
            items[int(rng.integers(0, length - 2))] = int(rng.integers(1, n_items + 1))
        lines += [f"{u}\t{item}\t{t}" for t, item in enumerate(items)]
    with open(os.path.join(path, f"{name}.inter"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def read_raw_sequences(data_path, name="tiny"):
    """user token -> item tokens in time order, straight from the atomic file."""
    seqs = {}
    with open(os.path.join(data_path, name, f"{name}.inter")) as f:
        next(f)
        for line in f:
            user, item, _ = line.split("\t")
            seqs.setdefault(user, []).append(item)
    return seqs


def tiny_config(data_path, checkpoint_dir, **overrides):
    """Config overrides for a fast CPU run on the ``tiny`` dataset."""
    return {
        "data_path": data_path,
        "checkpoint_dir": str(checkpoint_dir),
        "epochs": 2,
        "stage1_epochs": 0,
        "train_batch_size": 32,
        "eval_batch_size": 64,
        "MAX_ITEM_LIST_LENGTH": 10,
        "hidden_size": 16,
        "inner_size": 32,
        "embedding_size": 16,
        "n_layers": 1,
        "n_heads": 1,
        "use_gpu": False,
        "show_progress": False,
        "state": "ERROR",
        "seed": 0,
        # one set of sizes for every backbone: keys another backbone reads pass with a warning
        "strict_keys": False,
        **overrides,
    }


def build_tiny(config_dict, backbone="SASRec", **overrides):
    """``recbole_basrec.quick_start.build`` on the tiny dataset: the pipeline of one seeded run."""
    from recbole_basrec.quick_start import build

    return build(backbone, "tiny", config_dict={**config_dict, **overrides})


def assert_stock_inference_and_learning(name, model, config, train, test, shrink=1.0):
    """``model`` (BASRec on stock ``name``) has the stock model's parameters and initialisation
    (built with the same seed) and its scores; its three BASRec losses are finite, positive for
    the augmentations, and the recommendation term after four epochs on the toy data is below
    ``shrink`` times the first epoch's (the augmentation terms' own noise, from random views,
    partners and dropout, hides the trend of the sum in four epochs)."""
    import torch
    from recbole.utils import init_seed

    from recbole_basrec.config import stock_sequential_models

    init_seed(0, True)
    stock = stock_sequential_models()[name](config, train._dataset)
    assert model.state_dict().keys() == stock.state_dict().keys()
    assert all(torch.equal(v, stock.state_dict()[k]) for k, v in model.state_dict().items())
    model.eval(), stock.eval()
    batch = next(iter(test))[0]
    with torch.no_grad():
        assert torch.allclose(model.full_sort_predict(batch), stock.full_sort_predict(batch), atol=1e-5)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    epoch_losses = []
    for _ in range(4):
        total = 0.0
        for batch in train:
            rec, ssa, csa = model.calculate_loss(batch)
            loss = rec + ssa + csa
            assert torch.isfinite(loss) and ssa > 0 and csa > 0
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += rec.item()
        epoch_losses.append(total)
    assert epoch_losses[-1] < shrink * epoch_losses[0]
