"""Invariants of BASRec's batched operators on small hand-made batches."""
import math

import pytest
import torch

from recbole_basrec.model import augmentation as aug

# Three right-padded sequences with distinct items so positions can be tracked.
SEQ = torch.tensor(
    [
        [11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
        [21, 22, 23, 24, 0, 0, 0, 0, 0, 0],
        [31, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ]
)
LEN = torch.tensor([10, 4, 1])
# top-1 table: item i -> i + 100 (padding 0 -> 0)
TABLE = torch.cat([torch.zeros(1, dtype=torch.long), torch.arange(1, 40) + 100])


def _repeat(n):
    return SEQ.repeat(n, 1), LEN.repeat(n)


def test_reorder_shuffles_one_contiguous_window_of_floor_rate_times_length():
    torch.manual_seed(0)
    seqs, lens = _repeat(200)
    rates = torch.full((len(seqs),), 0.5)
    out = aug.reorder(seqs, lens, rates)
    changed_any = False
    for row_in, row_out, n in zip(seqs, out, lens.tolist()):
        assert sorted(row_in[:n].tolist()) == sorted(row_out[:n].tolist())  # multiset kept
        assert torch.equal(row_out[n:], row_in[n:])  # padding untouched
        moved = (row_in != row_out).nonzero().flatten().tolist()
        if moved:
            changed_any = True
            window = math.floor(0.5 * n)
            assert moved[-1] - moved[0] < window  # moved items lie inside one window
    assert changed_any


def test_reorder_window_positions_cover_the_real_part_uniformly():
    torch.manual_seed(1)
    seqs = SEQ[:1].repeat(2000, 1)
    lens = LEN[:1].repeat(2000)
    out = aug.reorder(seqs, lens, torch.full((2000,), 0.3))  # window of 3 in 10 items
    moved = (out != seqs).float().mean(0)
    assert moved.min() > 0.05  # every real position can be inside the window


def test_reorder_zero_window_is_identity():
    assert torch.equal(aug.reorder(SEQ, LEN, torch.full((3,), 0.05)), SEQ)


def test_substitute_replaces_exactly_max_floor_rate_n_1_distinct_real_items_by_top1():
    torch.manual_seed(0)
    seqs, lens = _repeat(100)
    rates = torch.full((len(seqs),), 0.5)
    out = aug.substitute(seqs, lens, rates, TABLE)
    for row_in, row_out, n in zip(seqs, out, lens.tolist()):
        changed = row_in != row_out
        assert changed.sum().item() == max(math.floor(0.5 * n), 1)
        assert torch.equal(row_out[changed], TABLE[row_in[changed]])  # top-1 neighbours
        assert not changed[n:].any()  # padding never substituted
        assert (row_out[:n] > 0).all()  # padding never created


@pytest.mark.parametrize("n_views", [1, 4])
def test_augmented_views_shapes_rates_in_range_and_both_operators_used(n_views):
    torch.manual_seed(0)
    seqs, lens = _repeat(50)
    views, rates = aug.augmented_views(seqs, lens, n_views, 0.2, 0.7, TABLE)
    assert views.shape == (n_views * len(seqs), SEQ.size(1))
    assert rates.shape == (n_views * len(seqs),)
    assert rates.min() >= 0.2 and rates.max() <= 0.7
    real = lens.repeat(n_views)
    pad = torch.arange(SEQ.size(1)) >= real.unsqueeze(1)
    assert (views[pad] == 0).all() and (views[~pad] > 0).all()
    substituted = (views > 100).any(1)
    reordered = ~substituted & (views != seqs.repeat(n_views, 1)).any(1)
    assert substituted.any() and reordered.any()


def test_adaptive_weights_are_min_max_normalised_inverse_of_lambda_rate():
    lam = torch.tensor([[0.5, 0.25, 1.0]])
    rate = torch.tensor([[0.5, 0.5, 0.5]])
    # w = 1/(lam*r) = [4, 8, 2] -> (w - 2) / 6
    assert torch.allclose(aug.adaptive_weights(lam, rate), torch.tensor([[1 / 3, 1.0, 0.0]]))


def test_adaptive_weights_degenerate_batch_and_tiny_lambda_stay_finite():
    same = aug.adaptive_weights(torch.full((1, 4), 0.3), torch.full((1, 4), 0.4))
    assert torch.equal(same, torch.ones(1, 4))
    single = aug.adaptive_weights(torch.tensor([[0.7]]), torch.tensor([[0.2]]))
    assert torch.equal(single, torch.ones(1, 1))
    tiny = aug.adaptive_weights(torch.tensor([[0.0, 1e-30, 0.5]]), torch.tensor([[0.2, 0.2, 0.2]]))
    assert torch.isfinite(tiny).all() and tiny.min() >= 0 and tiny.max() <= 1


def test_mixup_with_lambda_one_returns_the_first_input_and_broadcasts():
    a, b = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    assert torch.equal(aug.mixup(a, b, torch.ones(2, 5, 1)), a)
    assert torch.equal(aug.mixup(a, b, torch.zeros(2, 1, 3)), b)
    lam = torch.rand(2, 1, 3)
    assert torch.allclose(aug.mixup(a, b, lam), lam * a + (1 - lam) * b)


@pytest.mark.parametrize("beta", [0.3, 0.4, 5.0])
def test_sample_beta_draws_beta_beta_beta(beta):
    # Beta(a, a) has mean 1/2 and variance 1 / (4 (2a + 1)): the concentration reaches both parameters
    torch.manual_seed(0)
    lam = aug.sample_beta(beta, (20000,), torch.device("cpu"))
    assert lam.shape == (20000,)
    assert lam.mean().item() == pytest.approx(0.5, abs=0.01)
    assert lam.var().item() == pytest.approx(1 / (4 * (2 * beta + 1)), rel=0.05)
