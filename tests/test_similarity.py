"""Tests of the top-1 neighbour tables behind BASRec's M-Substitute (``recbole_basrec.data.similarity``)."""
import math
import os
import time

import numpy as np
import pytest
import torch

from recbole_basrec.data import similarity
from recbole_basrec.data.similarity import load_or_build_top1, top1_neighbours

# Toy training sequences (time order, with repeats). Item 9 appears only in a one-item
# sequence and item 10 never appears: both have no co-occurring neighbour. User 7 is empty.
TOY_SEQS = [
    [1, 2, 3, 2],
    [2, 3, 4],
    [1, 3, 5, 5, 6],
    [4, 5, 6, 7, 8, 1],
    [7, 8],
    [6, 7, 1, 1],
    [9],
    [],
    [2, 8, 3],
]
TOY_N_ITEMS = 11  # ids 1..10, 0 is padding
LONELY = (9, 10)


def to_csr(seqs):
    ptr = np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(np.int64)
    items = np.array([i for s in seqs for i in s], dtype=np.int64)
    return ptr, items


def brute_force_similarity(seqs, n_items, iuf):
    """sim(i, j) straight from the definition, with explicit loops over users and item pairs."""
    users_of = {i: set() for i in range(1, n_items)}
    for u, seq in enumerate(seqs):
        for i in seq:
            users_of[i].add(u)
    sim = {}
    for i in range(1, n_items):
        for j in range(1, n_items):
            if i == j:
                continue
            total = 0.0
            for u, seq in enumerate(seqs):
                if i in seq and j in seq:
                    total += 1.0 / math.log(1 + len(seq)) if iuf else 1.0
            if total > 0:
                sim[i, j] = total / math.sqrt(len(users_of[i]) * len(users_of[j]))
    return sim


def brute_force_top1(sim, n_items):
    """Top-1 per item; ties (up to float rounding) go to the smallest id; None if no neighbour."""
    table = {}
    for i in range(1, n_items):
        scores = {j: s for (a, j), s in sim.items() if a == i}
        if not scores:
            table[i] = None
            continue
        best = max(scores.values())
        table[i] = min(j for j, s in scores.items() if s >= best * (1 - 1e-12))
    return table


@pytest.fixture(autouse=True)
def _fresh_cache():
    similarity.clear_top1_cache()
    yield
    similarity.clear_top1_cache()


@pytest.mark.parametrize("method,iuf", [("ItemCF_IUF", True), ("ItemCF", False)])
def test_similarity_values_match_brute_force(method, iuf):
    ptr, items = to_csr(TOY_SEQS)
    expected = brute_force_similarity(TOY_SEQS, TOY_N_ITEMS, iuf)
    got = similarity._similarity_matrix(ptr, items, TOY_N_ITEMS, method).toarray()
    want = np.zeros((TOY_N_ITEMS, TOY_N_ITEMS))
    for (i, j), s in expected.items():
        want[i, j] = s
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert np.all(np.diag(got) == 0)


@pytest.mark.parametrize("method,iuf", [("ItemCF_IUF", True), ("ItemCF", False)])
def test_top1_matches_brute_force(method, iuf):
    ptr, items = to_csr(TOY_SEQS)
    expected = brute_force_top1(brute_force_similarity(TOY_SEQS, TOY_N_ITEMS, iuf), TOY_N_ITEMS)
    table = top1_neighbours(ptr, items, TOY_N_ITEMS, method=method)
    assert table.dtype == np.int64 and table.shape == (TOY_N_ITEMS,)
    assert table[0] == 0
    for i in range(1, TOY_N_ITEMS):
        if expected[i] is None:
            assert i in LONELY
        else:
            assert table[i] == expected[i], f"item {i}"


def test_tie_goes_to_smallest_id():
    # Item 1 co-occurs once with each of 2, 3 and 4, which are otherwise identical: exact tie.
    seqs = [[1, 4], [1, 3], [1, 2]]
    ptr, items = to_csr(seqs)
    for method in ("ItemCF_IUF", "ItemCF"):
        assert top1_neighbours(ptr, items, 5, method=method)[1] == 2


def test_iuf_and_plain_itemcf_can_disagree():
    # 1 meets 2 in two long sequences (long through repeats, which count in |S_u|) and 3 in
    # one short one; IUF down-weights the long ones enough to flip the winner.
    seqs = [[1] + [2] * 9, [1] + [2] * 9, [1, 3]]
    ptr, items = to_csr(seqs)
    assert top1_neighbours(ptr, items, 4, method="ItemCF")[1] == 2
    assert top1_neighbours(ptr, items, 4, method="ItemCF_IUF")[1] == 3


@pytest.mark.parametrize("method", ["ItemCF_IUF", "ItemCF"])
def test_blockwise_is_identical(method):
    ptr, items = to_csr(TOY_SEQS)
    reference = top1_neighbours(ptr, items, TOY_N_ITEMS, method=method)
    for block_size in (1, 3, 4, 1000):
        np.testing.assert_array_equal(
            top1_neighbours(ptr, items, TOY_N_ITEMS, method=method, block_size=block_size), reference
        )


def test_blockwise_identical_on_random_data(monkeypatch):
    rng = np.random.default_rng(1)
    lens = rng.integers(0, 12, 300)
    ptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    items = rng.integers(1, 500, ptr[-1]).astype(np.int64)
    reference = top1_neighbours(ptr, items, 500)
    np.testing.assert_array_equal(top1_neighbours(ptr, items, 500, block_size=1), reference)
    np.testing.assert_array_equal(top1_neighbours(ptr, items, 500, block_size=3), reference)
    # a tiny work budget makes the default (adaptive) blocking split into many blocks too
    monkeypatch.setattr(similarity, "_BLOCK_WORK", 50)
    np.testing.assert_array_equal(top1_neighbours(ptr, items, 500), reference)


@pytest.mark.parametrize("method", ["ItemCF_IUF", "ItemCF", "Random"])
def test_table_is_valid(method):
    ptr, items = to_csr(TOY_SEQS)
    table = top1_neighbours(ptr, items, TOY_N_ITEMS, method=method, seed=3)
    ids = np.arange(1, TOY_N_ITEMS)
    assert table[0] == 0
    assert np.all(table[1:] != ids)
    assert np.all((table[1:] >= 1) & (table[1:] < TOY_N_ITEMS))


def test_lonely_items_get_seeded_random_neighbours():
    ptr, items = to_csr(TOY_SEQS)
    draws = {seed: top1_neighbours(ptr, items, TOY_N_ITEMS, seed=seed) for seed in range(20)}
    for seed in range(20):  # deterministic per seed
        np.testing.assert_array_equal(top1_neighbours(ptr, items, TOY_N_ITEMS, seed=seed), draws[seed])
    for lonely in LONELY:
        picked = {int(t[lonely]) for t in draws.values()}
        assert len(picked) > 1, "lonely items should be filled at random"
        assert lonely not in picked and 0 not in picked
    # items with a real neighbour do not depend on the seed
    rest = [i for i in range(1, TOY_N_ITEMS) if i not in LONELY]
    for t in draws.values():
        np.testing.assert_array_equal(t[rest], draws[0][rest])


def test_random_method_is_uniform_over_other_items():
    ptr, items = to_csr([[1, 2]])
    n_items = 4  # real ids 1, 2, 3
    picks = np.stack([top1_neighbours(ptr, items, n_items, method="Random", seed=s) for s in range(200)])
    for i in range(1, n_items):
        assert set(np.unique(picks[:, i])) == set(range(1, n_items)) - {i}
    np.testing.assert_array_equal(picks[:, 0], 0)


def test_two_items_always_swap():
    ptr, items = to_csr([[1], [2]])  # no co-occurrence, only one possible other item
    np.testing.assert_array_equal(top1_neighbours(ptr, items, 3), [0, 2, 1])


def test_cache_in_process():
    ptr, items = to_csr(TOY_SEQS)
    first = load_or_build_top1(ptr, items, TOY_N_ITEMS)
    assert isinstance(first, torch.Tensor) and first.dtype == torch.long
    np.testing.assert_array_equal(first.numpy(), top1_neighbours(ptr, items, TOY_N_ITEMS))
    first[1] = 0  # mutating a returned tensor must not poison the cache
    second = load_or_build_top1(ptr, items, TOY_N_ITEMS)
    np.testing.assert_array_equal(second.numpy(), top1_neighbours(ptr, items, TOY_N_ITEMS))
    # the key covers the method and the seed
    other = load_or_build_top1(ptr, items, TOY_N_ITEMS, method="Random", seed=1)
    assert not torch.equal(other, second)


def test_disk_cache_created_and_reused(tmp_path, monkeypatch):
    ptr, items = to_csr(TOY_SEQS)
    cache_dir = tmp_path / "nested" / "cache"
    built = load_or_build_top1(ptr, items, TOY_N_ITEMS, method="ItemCF", cache_dir=str(cache_dir))
    files = os.listdir(cache_dir)
    assert len(files) == 1 and files[0].startswith("basrec-top1-ItemCF-") and files[0].endswith(".npy")
    assert len(files[0]) == len("basrec-top1-ItemCF-") + 16 + len(".npy")

    def must_not_build(*args, **kwargs):
        raise AssertionError("the disk cache should have been used")

    similarity.clear_top1_cache()
    monkeypatch.setattr(similarity, "top1_neighbours", must_not_build)
    reused = load_or_build_top1(ptr, items, TOY_N_ITEMS, method="ItemCF", cache_dir=str(cache_dir))
    assert torch.equal(reused, built)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda path, n: open(path, "wb").write(b"not a numpy file"),
        lambda path, n: np.save(path, np.zeros(n + 1, dtype=np.int64)),  # wrong shape
        lambda path, n: np.save(path, np.ones(n, dtype=np.int32)),  # wrong dtype
        lambda path, n: np.save(path, np.arange(n, dtype=np.int64)),  # maps items to themselves
    ],
)
def test_corrupt_disk_cache_is_rebuilt(tmp_path, corrupt):
    ptr, items = to_csr(TOY_SEQS)
    built = load_or_build_top1(ptr, items, TOY_N_ITEMS, cache_dir=str(tmp_path))
    (name,) = os.listdir(tmp_path)
    path = str(tmp_path / name)
    corrupt(path, TOY_N_ITEMS)
    similarity.clear_top1_cache()
    rebuilt = load_or_build_top1(ptr, items, TOY_N_ITEMS, cache_dir=str(tmp_path))
    assert torch.equal(rebuilt, built)
    np.testing.assert_array_equal(np.load(path, allow_pickle=False), built.numpy())  # file repaired


def test_errors():
    ptr, items = to_csr(TOY_SEQS)
    with pytest.raises(ValueError, match="valid methods: ItemCF_IUF, ItemCF, Random"):
        top1_neighbours(ptr, items, TOY_N_ITEMS, method="Item2Vec")
    with pytest.raises(ValueError, match=r"item ids must lie in 1\.\.8"):
        top1_neighbours(ptr, items, 9)  # item 9 is out of range
    bad = items.copy()
    bad[0] = 0
    with pytest.raises(ValueError, match="0 is padding"):
        top1_neighbours(ptr, bad, TOY_N_ITEMS)
    with pytest.raises(ValueError, match="non-decreasing"):
        top1_neighbours(np.array([0, 3, 2, 4]), np.array([1, 2, 3, 4]), 5)
    with pytest.raises(ValueError, match="end at len"):
        top1_neighbours(np.array([0, 2]), np.array([1, 2, 3]), 5)
    with pytest.raises(ValueError, match="fewer than 2 real items"):
        top1_neighbours(np.array([0, 1]), np.array([1]), 2)
    with pytest.raises(ValueError, match="valid methods"):
        load_or_build_top1(ptr, items, TOY_N_ITEMS, method="nope")


def test_scale_smoke():
    """20k users x 200k items: must run without any dense items x items matrix."""
    rng = np.random.default_rng(0)
    n_users, n_items = 20_000, 200_000
    lens = rng.integers(0, 20, n_users)
    ptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    items = rng.integers(1, n_items, ptr[-1]).astype(np.int64)
    start = time.perf_counter()
    table = top1_neighbours(ptr, items, n_items)
    assert time.perf_counter() - start < 10
    assert table[0] == 0
    assert np.all(table[1:] != np.arange(1, n_items))
    assert np.all((table[1:] >= 1) & (table[1:] < n_items))
