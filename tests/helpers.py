"""Helpers shared by the tests: a tiny, learnable sequential dataset written as RecBole atomic files."""
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
