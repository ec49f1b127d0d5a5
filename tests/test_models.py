"""BASRec models: stock equivalence, loss definitions, learning and leakage on tiny data."""
import pytest
import torch
from recbole.model.sequential_recommender import GRU4Rec, SASRec
from recbole.utils import init_seed

import recbole_basrec  # noqa: F401
from recbole_basrec.data.dataset import drop_last_items
from recbole_basrec.data.similarity import load_or_build_top1
from recbole_basrec.model import augmentation
from recbole_basrec.model.augmentation import mixup as aug_mix

BACKBONES = ["SASRec", "GRU4Rec", "FMLPRec"]


@pytest.fixture
def make(tiny_setup):
    def build(backbone, **overrides):
        config, dataset, model, trainer, (train, valid, test) = tiny_setup(backbone, **overrides)
        return config, model, train

    return build


@pytest.mark.parametrize("stock", [SASRec, GRU4Rec])
def test_same_parameters_initialisation_and_plain_loss_as_the_stock_model(make, stock):
    # align: first is RecBole's layout, so inference must be stock's exactly.
    config, model, train = make(stock.__name__, basrec=False, train_mode="prefix", align="first", loss_type="CE")
    init_seed(0, True)
    reference = stock(config, train._dataset)
    state, ref_state = model.state_dict(), reference.state_dict()
    assert state.keys() == ref_state.keys()
    assert all(torch.equal(state[k], ref_state[k]) for k in state)
    model.eval(), reference.eval()
    batch = next(iter(train))
    assert torch.allclose(model.calculate_loss(batch), reference.calculate_loss(batch), atol=1e-6)
    seq, length = batch["item_id_list"], batch["item_length"]
    assert torch.allclose(model.forward(seq, length), reference.forward(seq, length), atol=1e-6)


def test_feed_forward_layers_use_the_fused_gelu_with_recbole_s_values(make):
    from recbole.model.layers import FeedForward

    config, model, train = make("SASRec")
    layers = [m for m in model.modules() if isinstance(m, FeedForward)]
    assert len(layers) == config["n_layers"]
    assert all(m.intermediate_act_fn is torch.nn.functional.gelu for m in layers)
    x = torch.linspace(-12, 12, 2001, dtype=torch.float32)
    assert torch.allclose(torch.nn.functional.gelu(x), layers[0].gelu(x), atol=1e-6)  # RecBole's formula
    x.requires_grad_(True)
    (fused,) = torch.autograd.grad(torch.nn.functional.gelu(x).sum(), x)
    (stock,) = torch.autograd.grad(layers[0].gelu(x).sum(), x)
    assert torch.allclose(fused, stock, atol=1e-6)


@pytest.mark.parametrize("loss_type", ["CE", "BCE", "BPR"])
def test_csa_with_all_mixing_coefficients_one_is_the_plain_loss(make, monkeypatch, loss_type):
    config, model, train = make("SASRec", loss_type=loss_type, n_whole_level=2, n_pairs=0)
    model.eval()
    batch = next(iter(train))
    monkeypatch.setattr(augmentation, "sample_beta", lambda beta, shape, device: torch.ones(shape, device=device))
    torch.manual_seed(1)  # same negatives in both calls
    rec, ssa, csa = model.calculate_loss(batch)
    assert ssa.item() == 0.0
    # 2 rounds x (item-wise + feature-wise), each the plain loss when lambda = 1
    assert torch.allclose(csa, 4 * rec, rtol=1e-5)


def test_mixed_target_ce_is_soft_label_ce_for_scalar_lambda(make):
    config, model, train = make("SASRec", loss_type="CE")
    h = torch.randn(3, config["hidden_size"])
    targets, partners = torch.tensor([1, 2, 3]), torch.tensor([3, 2, 1])
    lam = torch.tensor([0.2, 0.5, 0.9]).view(3, 1)
    mixed_target = aug_mix(model.item_embedding(targets), model.item_embedding(partners), lam)
    log_p = torch.log_softmax(h @ model.item_embedding.weight.t(), dim=-1)
    soft = -(lam.flatten() * log_p[range(3), targets] + (1 - lam.flatten()) * log_p[range(3), partners]).mean()
    assert torch.allclose(model._loss(h, mixed_target), soft, atol=1e-5)
    plain = torch.nn.functional.cross_entropy(h @ model.item_embedding.weight.t(), targets)
    assert torch.allclose(model._loss(h, model.item_embedding(targets)), plain, atol=1e-5)


@pytest.mark.parametrize("source", ["inputs", "train"])
def test_substitution_table_is_top1_of_the_training_sequences(make, source):
    config, model, train = make("SASRec", similarity_source=source)
    user_ptr, items = train.dataset.train_sequences
    if source == "inputs":  # the authors' items[:-3]: training items without each user's last
        user_ptr, items = drop_last_items(user_ptr, items)
    expected = load_or_build_top1(user_ptr, items, model.n_items, "ItemCF_IUF", seed=config["seed"])
    assert torch.equal(model.substitute_table, expected)
    assert "substitute_table" not in model.state_dict()


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("train_mode", ["sequence", "prefix"])
def test_every_basrec_model_loss_decreases(make, backbone, train_mode):
    config, model, train = make(backbone, train_mode=train_mode, n_pairs=1, n_whole_level=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    batches = [b for _, b in zip(range(4), train)]
    rec_losses = []
    for _ in range(12):
        total = 0.0
        for batch in batches:
            optimizer.zero_grad()
            rec, ssa, csa = model.calculate_loss(batch)
            loss = rec + ssa + csa
            assert torch.isfinite(loss)
            loss.backward()
            optimizer.step()
            total += rec.item()
        rec_losses.append(total)
    # The recommendation term: the augmentation terms' own noise (random views, partners and
    # dropout on four batches) moves the sum by ~10% from one random stream to another.
    assert sum(rec_losses[-3:]) < 0.93 * sum(rec_losses[:3])


def test_extreme_beta_never_gives_nan(make):
    config, model, train = make("GRU4Rec", beta=0.01, loss_type="BCE")
    for batch in train:
        assert all(torch.isfinite(part) for part in model.calculate_loss(batch))


@pytest.mark.parametrize("backbone", BACKBONES)
def test_sequence_outputs_never_see_later_items(make, backbone):
    config, model, train = make(backbone)  # BASRecFMLPRec defaults to the causal filter
    model.eval()
    seq = torch.randint(1, model.n_items, (2, config["MAX_ITEM_LIST_LENGTH"]))
    changed = seq.clone()
    changed[:, 6:] = torch.randint(1, model.n_items, (2, seq.size(1) - 6))
    out = model.sequence_output(seq, model.item_embedding(seq))
    out_changed = model.sequence_output(changed, model.item_embedding(changed))
    assert torch.allclose(out[:, :6], out_changed[:, :6], atol=1e-5)


def test_a_filter_that_sees_the_future_is_refused_in_sequence_mode(make):
    with pytest.raises(ValueError, match="leak.*filter_causal=True or train_mode=prefix"):
        make("FMLPRec", filter_causal=False, train_mode="sequence")
    config, model, train = make("FMLPRec", filter_causal=False, train_mode="prefix")
    assert model.sees_future


@pytest.mark.parametrize("backbone, align", [("SASRec", "recent"), ("SASRec", "first"), ("GRU4Rec", "first")])
def test_length_grouped_encoding_equals_the_full_pass_at_real_positions(make, backbone, align):
    config, model, train = make(backbone, MAX_ITEM_LIST_LENGTH=16, align=align)
    model.eval()
    assert model.trims_padding
    lengths = torch.tensor([1, 2, 3, 5, 8, 9, 16, 4])
    seq = torch.randint(1, model.n_items, (8, 16)) * (torch.arange(16) < lengths.unsqueeze(1))
    seq = model._layout(seq, lengths)
    emb = model.item_embedding(seq)
    full = model.sequence_output(seq, emb)
    grouped = model._encode(seq, emb, lengths)
    real = seq > 0
    assert torch.allclose(grouped[real], full[real], atol=1e-5)


@pytest.mark.parametrize("align", ["recent", "first"])
def test_length_grouped_encoding_has_the_full_pass_gradients(make, align):
    config, model, train = make("SASRec", MAX_ITEM_LIST_LENGTH=16, align=align)
    model.eval()
    lengths = torch.tensor([1, 2, 3, 5, 8, 9, 16, 4, 1, 12])
    seq = torch.randint(1, model.n_items, (10, 16)) * (torch.arange(16) < lengths.unsqueeze(1))
    seq = model._layout(seq, lengths)
    real = seq > 0
    probe = torch.randn(10, 16, config["hidden_size"])

    def grads(encode):
        model.zero_grad()
        out = encode(seq, model.item_embedding(seq))
        (out[real] * probe[real]).sum().backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    full = grads(model.sequence_output)
    grouped = grads(lambda s, e: model._encode(s, e, lengths))
    assert len(full) == len(grouped) > 0
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(full, grouped))


def test_dropout_masks_from_uniforms_keep_the_probability_and_scale():
    from recbole_basrec.model.basrec import UniformMaskDropout, uniform_mask_dropout

    net = torch.nn.Sequential(torch.nn.Dropout(0.25), torch.nn.Linear(3, 3), torch.nn.Dropout(0.0))
    assert uniform_mask_dropout(net) == 2 and isinstance(net[0], UniformMaskDropout)
    x = torch.rand(400_000) + 1.0
    x.requires_grad_(True)
    torch.manual_seed(0)
    y = net[0](x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.005
    assert torch.allclose(y[kept], x[kept] / 0.75)
    y.sum().backward()
    assert torch.equal(x.grad, kept.float() / 0.75)
    torch.manual_seed(0)
    assert torch.equal(net[0](x), y)  # seeded: the same mask
    net.eval()
    assert torch.equal(net[0](x), x)


def test_basrec_models_train_with_uniform_mask_dropout(make):
    config, model, train = make("SASRec")
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(type(m).__name__ == "UniformMaskDropout" for m in dropouts)


def test_gru4rec_reading_left_padding_is_never_trimmed(make):
    config, model, train = make("GRU4Rec", align="recent")
    assert not model.trims_padding
