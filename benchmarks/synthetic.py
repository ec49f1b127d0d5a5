"""Synthetic sequential data as RecBole atomic files: power-law item popularity and sequence lengths.

``write_synthetic(folder, name, n_users, n_interactions, n_items, seed)`` writes
``folder/name/name.inter`` (``user_id:token item_id:token timestamp:float``), every user's items in
time order. Item ``k`` (popularity rank, 1-based) is drawn with probability proportional to
``k ** -item_exponent``; sequence lengths follow a discrete power law (Pareto tail,
``length_exponent``) from ``min_length`` up to ``max_length``, rescaled so that they sum to about
``n_interactions``. Consecutive repeats of an item are allowed, as in real logs. Vectorised numpy,
written in blocks of rows.
"""
import os

import numpy as np


def sequence_lengths(n_users, n_interactions, rng, min_length=5, max_length=500, length_exponent=2.0):
    """``n_users`` lengths >= ``min_length`` with a power-law tail, summing to ~``n_interactions``."""
    mean = n_interactions / n_users
    if mean < min_length:
        raise ValueError(f"{n_interactions} interactions over {n_users} users is below {min_length} per user")
    raw = rng.pareto(length_exponent - 1.0, n_users) + 1.0  # >= 1, tail ~ x^-length_exponent
    extra = raw - 1.0
    scale = (mean - min_length) / max(extra.mean(), 1e-12)
    for _ in range(20):  # the cap at max_length removes mass: rescale until the total is right
        lengths = np.clip(np.round(min_length + extra * scale), min_length, max_length).astype(np.int64)
        got = lengths.mean() - min_length
        if abs(got - (mean - min_length)) <= 1e-3 * mean or got <= 0:
            break
        scale *= (mean - min_length) / got
    return lengths


def _ranks(n, n_items, rng, item_exponent=1.0, block=1 << 22):
    """``n`` popularity ranks (0-based) in ``block``-sized draws; the same stream as one draw of ``n``."""
    weights = np.arange(1, n_items + 1, dtype=np.float64) ** -item_exponent
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    ranks = np.empty(n, dtype=np.min_scalar_type(n_items))
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        np.minimum(np.searchsorted(cdf, rng.random(hi - lo), side="right"), n_items - 1, out=ranks[lo:hi],
                   casting="unsafe")
    return ranks


def item_draws(n, n_items, rng, item_exponent=1.0):
    """``n`` item ids in ``1..n_items`` drawn with Zipf(``item_exponent``) popularity, ids shuffled
    so popularity is not the id order."""
    ranks = _ranks(n, n_items, rng, item_exponent)
    ids = rng.permutation(n_items) + 1
    return ids[ranks]


def write_synthetic(folder, name, n_users, n_interactions, n_items, seed=0, item_exponent=1.0,
                    length_exponent=2.0, min_length=5, max_length=500, block=1 << 20):
    """Write ``folder/name/name.inter``; returns ``{"path", "users", "interactions", "items_seen", ...}``.

    Rows are formatted and written ``block`` at a time: besides the output, memory holds one
    small popularity rank per interaction.
    """
    rng = np.random.default_rng(seed)
    lengths = sequence_lengths(n_users, n_interactions, rng, min_length, max_length, length_exponent)
    total = int(lengths.sum())
    ends = np.cumsum(lengths)
    ranks = _ranks(total, n_items, rng, item_exponent)
    ids = rng.permutation(n_items) + 1
    seen = np.zeros(n_items + 1, dtype=bool)
    os.makedirs(os.path.join(folder, name), exist_ok=True)
    path = os.path.join(folder, name, f"{name}.inter")
    with open(path, "w", encoding="ascii") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for lo in range(0, total, block):
            rows = np.arange(lo, min(total, lo + block))
            user = np.searchsorted(ends, rows, side="right")  # 0-based
            items = ids[ranks[rows]]
            seen[items] = True
            stamps = rows - (ends[user] - lengths[user])
            columns = np.stack([user + 1, items, stamps], 1)
            f.write(("%d\t%d\t%d\n" * len(rows)) % tuple(columns.ravel().tolist()))
    return {"path": path, "users": n_users, "interactions": total, "items": n_items,
            "items_seen": int(seen.sum()), "mean_length": float(lengths.mean()),
            "max_length": int(lengths.max()), "seed": seed, "item_exponent": item_exponent,
            "length_exponent": length_exponent}
