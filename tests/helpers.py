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
