"""Fidelity to the authors' code: history-masked ranking, SSA weighting, recency layout, CSA
pairing, M-Reorder's window, presets and the authors' checkpoints, on tiny hand-made data."""
import numpy as np
import pytest
import torch
from helpers import read_raw_sequences
from recbole.model.sequential_recommender import GRU4Rec, SASRec

import recbole_basrec  # noqa: F401
from recbole_basrec.data.dataset import drop_last_items, eval_histories
from recbole_basrec.model import augmentation as aug
from recbole_basrec.quick_start import run_recbole_basrec
from recbole_basrec.quick_start.quick_start import build_config


@pytest.fixture
def setup(tiny_setup):
    return tiny_setup


# ----------------------------------------------------------------------------- evaluation
def test_eval_histories_on_a_hand_made_split():
    class Split:
        uid_field, iid_field = "u", "i"

        def __init__(self, users, items):
            self.inter_feat = {"u": torch.tensor(users), "i": torch.tensor(items)}

    user_ptr, items = np.array([0, 0, 3, 5]), np.array([7, 8, 9, 4, 5])  # user 1: 7 8 9, user 2: 4 5
    valid, test = Split([1, 2], [10, 6]), Split([2, 1], [3, 11])
    full_ptr, full_items, (h_valid, h_test) = eval_histories(user_ptr, items, [valid, test])
    assert full_ptr.tolist() == [0, 0, 5, 9]
    assert full_items.tolist() == [7, 8, 9, 10, 11, 4, 5, 6, 3]
    assert h_valid.tolist() == [3, 2]  # the training items only
    assert h_test.tolist() == [3, 4]  # plus the validation item


@pytest.mark.parametrize("mask", [True, False])
def test_history_items_never_reach_the_ranking(setup, tiny_data_path, monkeypatch, mask):
    config, dataset, model, trainer, (train, valid, test) = setup(eval_mask_history=mask)
    raw = read_raw_sequences(tiny_data_path)
    seen = []
    original = type(trainer)._full_sort_batch_eval

    def spy(self, batched_data):
        interaction, scores, positive_u, positive_i = original(self, batched_data)
        seen.append((interaction, scores.clone(), positive_u, positive_i))
        return interaction, scores, positive_u, positive_i

    monkeypatch.setattr(type(trainer), "_full_sort_batch_eval", spy)
    for split, offset in ((valid, 2), (test, 1)):
        seen.clear()
        trainer.evaluate(split, load_best_model=False)
        rows = 0
        for interaction, scores, positive_u, positive_i in seen:
            for row, user in enumerate(interaction["user_id"].tolist()):
                items = raw[dataset.id2token("user_id", user)]
                history = set(dataset.token2id("item_id", items[:-offset]).tolist())
                target = dataset.token2id("item_id", items[-offset])
                masked = set(torch.nonzero(torch.isinf(scores[row])).flatten().tolist()) - {0}
                assert masked == (history if mask else set())
                if target not in history:
                    assert torch.isfinite(scores[row, target])
                top = scores[row].topk(10).indices.tolist()
                assert not mask or not history & set(top)
                rows += 1
        assert rows == len(raw)


def test_masking_needs_our_dataset(setup):
    config, dataset, model, trainer, (train, valid, test) = setup()
    valid.dataset.eval_history = None  # as a split of RecBole's own dataset
    with pytest.raises(ValueError, match="eval_mask_history=True needs recbole_basrec's dataset"):
        trainer.evaluate(valid, load_best_model=False)


# ----------------------------------------------------------------------------- SSA weighting
def test_ssa_weights_by_hand():
    lam = torch.tensor([[0.5, 0.5, 1.0]])
    rates = torch.tensor([[0.2, 0.5, 0.5]])  # w = 1/(lam r) = 10, 4, 2 -> w' = 1, 0.25, 0
    assert aug.ssa_weights(lam, rates, "sequence").tolist() == [[1.0, 0.25, 0.0]]
    assert aug.ssa_weights(lam, rates, "batch").tolist() == [[1.25, 1.25, 1.25]]


def test_ssa_weights_tiny_lambda_sets_the_scale_as_in_the_authors_code():
    # w = 1/(lam r) = 2e8, 2e7, 4 -> w' = 1, (2e7 - 4) / (2e8 - 4), 0: nothing floors lambda at 1e-6,
    # which would make the first two weights equal (w' = 1, 1, 0).
    lam = torch.tensor([[1e-8, 1e-7, 0.5]])
    rates = torch.tensor([[0.5, 0.5, 0.5]])
    w = aug.ssa_weights(lam, rates, "sequence")
    assert w.dtype == torch.float32
    assert torch.allclose(w, torch.tensor([[1.0, (2e7 - 4) / (2e8 - 4), 0.0]]), rtol=1e-6, atol=0)


def test_ssa_weight_sums_match_the_authors_formula_on_beta_draws():
    # The authors' code: w = 1 / (lam * r), (w - min) / (max - min) over the batch, summed by the
    # (B, 1) broadcast; GRU4Rec's published beta 0.3 and rates U(0.2, 0.51), batch 256.
    gen = torch.Generator().manual_seed(0)
    beta = torch.distributions.Beta(torch.tensor(0.3), torch.tensor(0.3))
    torch.manual_seed(0)
    lam = beta.sample((400, 256))
    rates = 0.2 + 0.31 * torch.rand(400, 256, generator=gen)
    w = 1.0 / (lam.double() * rates.double())
    expected = ((w - w.min(-1, keepdim=True).values) / (w.max(-1, keepdim=True).values - w.min(-1, keepdim=True).values)).sum(-1)
    got = aug.ssa_weights(lam, rates, "batch")[:, 0].double()
    assert torch.allclose(got, expected, rtol=1e-5)
    # Most draws hold one lambda far below the rest, so the sum stays small (a floor at 1e-6 made it 2.9).
    assert 1.2 < got.mean() < 1.7


@pytest.mark.parametrize("mode", ["batch", "sequence"])
def test_ssa_loss_is_the_stated_weighting_of_the_view_losses(setup, monkeypatch, mode):
    config, dataset, model, trainer, (train, valid, test) = setup(loss_type="BCE", n_pairs=1, n_whole_level=0,
                                                                  ssa_weighting=mode)
    model.eval()
    batch = next(iter(train))
    n = batch["item_id_list"].size(0)
    lam = torch.linspace(0.2, 0.9, 2 * n)
    rates = torch.linspace(0.3, 0.6, 2 * n)
    # Views equal to the original sequence: each view's per-slot losses are the plain ones.
    monkeypatch.setattr(aug, "augmented_views", lambda seq, lengths, n_views, *a, **k: (seq.repeat(n_views, 1), rates))
    monkeypatch.setattr(aug, "sample_beta", lambda beta, shape, device: lam.view(shape))
    torch.manual_seed(3)
    rec, ssa, csa = model.calculate_loss(batch)
    w = aug.adaptive_weights(lam.view(2, n), rates.view(2, n))
    if mode == "batch":
        expected = w.sum() * rec  # sum over the views of (sum of w') x mean loss
    else:
        # recompute the per-slot losses with the same negatives
        torch.manual_seed(3)
        targets, negatives, valid_mask = model._targets(batch, batch["item_id_list"], batch["item_length"])
        seq = model._layout(batch["item_id_list"], batch["item_length"])
        out = model.sequence_output(seq, model.item_embedding(seq))
        rows, cols = valid_mask.nonzero(as_tuple=True)
        h = out[rows, cols]
        pos = (h * model.item_embedding(targets[rows, cols])).sum(-1)
        neg = (h * model.item_embedding(negatives[rows, cols])).sum(-1)
        per_slot = -torch.nn.functional.logsigmoid(pos) - torch.nn.functional.logsigmoid(-neg)
        expected = (w[:, rows] * per_slot).sum() / rows.numel()
    assert torch.allclose(ssa, expected, rtol=1e-5)


# ----------------------------------------------------------------------------- layout
def _left_padded(seq, lengths):
    out = torch.zeros_like(seq)
    for row, n in enumerate(lengths.tolist()):
        out[row, seq.size(1) - n:] = seq[row, :n]
    return out


def test_to_recent_moves_the_real_part_to_the_end():
    seq = torch.tensor([[1, 2, 3, 0], [4, 0, 0, 0], [5, 6, 7, 8]])
    lengths = torch.tensor([3, 1, 4])
    assert aug.to_recent(seq, lengths).tolist() == [[0, 1, 2, 3], [0, 0, 0, 4], [5, 6, 7, 8]]
    emb = seq.unsqueeze(-1).expand(-1, -1, 2).float()
    assert torch.equal(aug.to_recent(emb, lengths)[..., 0].long(), aug.to_recent(seq, lengths))


@pytest.mark.parametrize("backbone, stock", [("SASRec", SASRec), ("GRU4Rec", GRU4Rec)])
def test_recency_layout_equals_the_left_padded_computation(setup, backbone, stock):
    config, dataset, model, trainer, _ = setup(backbone, align="recent")
    model.eval()
    max_len = config["MAX_ITEM_LIST_LENGTH"]
    lengths = torch.tensor([1, 4, max_len, 7])
    seq = torch.randint(1, model.n_items, (4, max_len)) * (torch.arange(max_len) < lengths.unsqueeze(1))
    ours = model.forward(seq, lengths)
    # The authors' computation: left padding, positions 0..L-1, output at the last column.
    left = _left_padded(seq, lengths)
    theirs = stock.forward(model, left, torch.full_like(lengths, max_len))
    assert torch.allclose(ours, theirs, atol=1e-5)
    # align: first is the stock model on RecBole's right padding
    model.align = "first"
    assert torch.allclose(model.forward(seq, lengths), stock.forward(model, seq, lengths), atol=1e-5)


def test_csa_pairs_the_kth_most_recent_slots(setup, monkeypatch):
    config, dataset, model, trainer, (train, valid, test) = setup(loss_type="BCE", n_pairs=0, n_whole_level=1)
    model.eval()
    batch = next(iter(train))
    n = batch["item_id_list"].size(0)
    perm = torch.arange(n).flip(0)
    monkeypatch.setattr(aug, "csa_partners", lambda rounds, b, device: perm.repeat(rounds, 1))
    monkeypatch.setattr(aug, "sample_beta", lambda beta, shape, device: torch.zeros(shape))  # all partner
    torch.manual_seed(5)
    rec, ssa, csa = model.calculate_loss(batch)
    # By hand, on the authors' left-padded layout: slot k-th most recent of sequence r is
    # scored with its partner's k-th most recent output, target and negative (0 at padding).
    torch.manual_seed(5)
    seq, lengths, targets = batch["item_id_list"], batch["item_length"], batch["target_item_list"]
    negatives = model._sample_negatives(seq, targets).masked_fill(targets == 0, 0)
    left, tgt, neg = (_left_padded(x, lengths) for x in (seq, targets, negatives))
    out = model.sequence_output(left, model.item_embedding(left))
    rows, cols = (tgt > 0).nonzero(as_tuple=True)
    p = perm[rows]
    h = out[p, cols]
    pos = (h * model.item_embedding(tgt[p, cols])).sum(-1)
    ng = (h * model.item_embedding(neg[p, cols])).sum(-1)
    per_slot = -torch.nn.functional.logsigmoid(pos) - torch.nn.functional.logsigmoid(-ng)
    assert torch.allclose(csa, 2 * per_slot.mean(), rtol=1e-5)  # item-wise + feature-wise round
    assert (tgt[p, cols] == 0).any()  # some partners contribute their padding


def test_m_reorder_keeps_the_last_item_in_the_authors_mode():
    torch.manual_seed(0)
    seq = torch.arange(1, 9).repeat(2000, 1)
    lengths = torch.full((2000,), 8)
    rates = torch.full((2000,), 0.5)
    kept = aug.reorder(seq, lengths, rates, keep_last=True)
    assert (kept[:, -1] == 8).all()
    assert (kept.sort(dim=1).values == seq).all()
    moved = aug.reorder(seq, lengths, rates, keep_last=False)
    assert (moved[:, -1] != 8).any()


def test_drop_last_items():
    user_ptr, items = drop_last_items(np.array([0, 3, 3, 5, 6]), np.array([1, 2, 3, 4, 5, 6]))
    assert user_ptr.tolist() == [0, 2, 2, 3, 3] and items.tolist() == [1, 2, 4]


# ----------------------------------------------------------------------------- presets
def test_published_presets_apply_only_to_their_backbone_and_dataset():
    config = build_config("SASRec", "Beauty", config_dict={"state": "ERROR"})
    assert (config["n_pairs"], config["n_whole_level"], config["beta"]) == (2, 3, 0.4)
    assert (config["hidden_dropout_prob"], config["valid_start_epoch"], config["valid_metric"]) == (0.1, 101, "NDCG@20")
    assert config["loss_type"] == "BCE"
    gru = build_config("GRU4Rec", "Sports_and_Outdoors", config_dict={"state": "ERROR"})
    assert (gru["n_pairs"], gru["n_whole_level"], gru["dropout_prob"]) == (2, 3, 0.2)
    overridden = build_config("SASRec", "Beauty", config_dict={"state": "ERROR", "n_pairs": 1})
    assert overridden["n_pairs"] == 1
    other = build_config("SASRec", "ml-100k", config_dict={"state": "ERROR"})
    assert other["valid_start_epoch"] == 0 and other["n_whole_level"] == 1


# ----------------------------------------------------------------------------- authors' checkpoints
_TO_AUTHORS = (
    ("item_embedding.", "item_embeddings."),
    ("position_embedding.", "position_embeddings."),
    (".multi_head_attention.", ".attention."),
    (".feed_forward.", ".intermediate."),
    ("trm_encoder.", "item_encoder."),
)


def _as_authors(model, dataset):
    """Our model's weights written the way the authors' code saves them (raw item ids)."""
    state = {}
    for key, value in model.state_dict().items():
        for ours, theirs in _TO_AUTHORS:
            key = key.replace(ours, theirs)
        state[key] = value.clone()
    table = state["item_embeddings.weight"]
    raw = dataset.field2id_token["item_id"][1:].astype(int)
    theirs = torch.randn(raw.max() + 2, table.size(1))
    theirs[0] = table[0]
    theirs[torch.from_numpy(raw)] = table[1:]
    state["item_embeddings.weight"] = theirs
    return state


@pytest.mark.parametrize("backbone", ["SASRec", "GRU4Rec"])
def test_an_authors_checkpoint_round_trips(setup, tmp_path, backbone):
    config, dataset, model, trainer, (train, valid, test) = setup(backbone)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    path = tmp_path / "authors.pt"
    torch.save(_as_authors(model, dataset), path)
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    trainer.load_weights(str(path))
    assert all(torch.equal(model.state_dict()[k], expected[k]) for k in expected)


def test_tta4sr_gru4rec_checkpoint_with_recbole_table_name_loads(setup, tmp_path):
    """TTA4SR's GRU4Rec names its raw-id table ``item_embedding``; a bare state dict of our own
    model (same names, our row count) still loads as ours."""
    config, dataset, model, trainer, _ = setup("GRU4Rec")
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    theirs = _as_authors(model, dataset)
    theirs["item_embedding.weight"] = theirs.pop("item_embeddings.weight")
    torch.save(theirs, tmp_path / "tta4sr.pt")
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    for path in (tmp_path / "tta4sr.pt", tmp_path / "bare.pt"):
        for p in model.parameters():
            torch.nn.init.zeros_(p)
        trainer.load_weights(str(path))
        assert all(torch.equal(model.state_dict()[k], expected[k]) for k in expected)


def test_wrong_authors_checkpoints_are_refused(setup, tmp_path):
    config, dataset, model, trainer, _ = setup("SASRec")
    good = _as_authors(model, dataset)
    path = tmp_path / "c.pt"
    _, _, gru, gru_trainer, _ = setup("GRU4Rec")
    torch.save(good, path)
    with pytest.raises(ValueError, match="authors' SASRec checkpoint but the model is GRU4Rec"):
        gru_trainer.load_weights(str(path))
    bigger = dict(good, **{"item_embeddings.weight": torch.randn(good["item_embeddings.weight"].size(0) + 5, 16)})
    torch.save(bigger, path)
    with pytest.raises(ValueError, match="trained on another dataset"):
        trainer.load_weights(str(path))
    _, _, wide, wide_trainer, _ = setup("SASRec", hidden_size=32, inner_size=64)
    torch.save(good, path)
    with pytest.raises(ValueError, match="does not fit this SASRec.*set the model size"):
        wide_trainer.load_weights(str(path))


def test_epochs_zero_with_an_authors_checkpoint_evaluates_it(setup, tiny_config_dict, tmp_path):
    config, dataset, model, trainer, (train, valid, test) = setup("SASRec")
    path = tmp_path / "authors.pt"
    torch.save(_as_authors(model, dataset), path)
    direct_valid = trainer.evaluate(valid, load_best_model=False)
    direct_test = trainer.evaluate(test, load_best_model=False)
    result = run_recbole_basrec("SASRec", "tiny", config_dict={**tiny_config_dict, "pretrained_path": str(path),
                                                                "epochs": 0})
    assert result["best_valid_result"] == direct_valid
    assert result["test_result"] == direct_test
