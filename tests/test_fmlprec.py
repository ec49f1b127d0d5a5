"""FMLP-Rec backbone: shapes, the filter against explicit convolutions, (no) leakage, learning,
and a stock RecBole train + eval round trip."""
import math
import os

import pytest
import torch

from recbole_basrec.utils import Config
from recbole.data import data_preparation
from recbole_basrec.utils import create_dataset
from recbole.trainer import Trainer
from recbole.utils import InputType, init_seed

from recbole_basrec.model.sequential_recommender.fmlprec import FilterLayer, FMLPRec

MAX_LEN = 10
HIDDEN = 16
YAML = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "properties", "model", "FMLPRec.yaml")


def build(data_path, tmp_path, **overrides):
    """Config, dataloaders and a fresh FMLPRec on the tiny dataset."""
    config_dict = {
        "n_layers": 2,
        "hidden_size": HIDDEN,
        "inner_size": 32,
        "hidden_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "initializer_range": 0.02,
        "loss_type": "CE",
        "filter_causal": False,
        "MAX_ITEM_LIST_LENGTH": MAX_LEN,
        "train_neg_sample_args": None,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "data_path": data_path,
        "use_gpu": False,
        "state": "ERROR",
        "show_progress": False,
        "checkpoint_dir": str(tmp_path / "saved"),
        "train_batch_size": 64,
        "eval_batch_size": 64,
        "epochs": 1,
        "seed": 0,
        "reproducibility": True,
    }
    config_dict.update(overrides)
    config = Config(model=FMLPRec, dataset="tiny", config_dict=config_dict)
    if config["loss_type"] == "BCE":
        # Stock Config only knows CE/BPR; BCE takes BPR's (pos, neg) pairs. Our config.py
        # does the same for runner-built configs.
        config["MODEL_INPUT_TYPE"] = InputType.PAIRWISE
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"], config["reproducibility"])
    model = FMLPRec(config, train_data._dataset)
    return config, model, train_data, valid_data, test_data


def first_batch(loader):
    for batch in loader:
        return batch[0] if isinstance(batch, tuple) else batch
    raise AssertionError("empty dataloader")


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny models gain nothing from intra-op threads; on a busy 2-core box they thrash."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("fmlprec")


@pytest.fixture(scope="module")
def built(tiny_data_path, module_tmp):
    return {
        causal: build(tiny_data_path, module_tmp, filter_causal=causal) for causal in (False, True)
    }


def test_yaml_defaults_load(tiny_data_path, tmp_path):
    config = Config(
        model=FMLPRec,
        dataset="tiny",
        config_file_list=[YAML],
        config_dict={"data_path": tiny_data_path, "use_gpu": False, "state": "ERROR", "train_neg_sample_args": None,
                     "checkpoint_dir": str(tmp_path)},
    )
    expected = {"n_layers": 2, "hidden_size": 64, "inner_size": 256, "hidden_dropout_prob": 0.5,
                "hidden_act": "gelu", "layer_norm_eps": 1e-12, "initializer_range": 0.02,
                "loss_type": "CE", "filter_causal": False}
    for key, value in expected.items():
        assert config[key] == value, key
    assert isinstance(config["layer_norm_eps"], float)


def test_shapes_and_flags(built):
    for causal, (config, model, train_data, _, test_data) in built.items():
        assert model.sees_future is (not causal)
        assert all(layer.filter_layer.causal is causal for layer in model.layers)
        assert model.layers[0].filter_layer.complex_weight.shape == (1, MAX_LEN // 2 + 1, HIDDEN, 2)
        inter = first_batch(train_data)
        seq, seq_len = inter[model.ITEM_SEQ], inter[model.ITEM_SEQ_LEN]
        B = seq.size(0)
        assert seq.size(1) == MAX_LEN
        model.eval()
        with torch.no_grad():
            assert model.sequence_output(seq, model.item_embedding(seq)).shape == (B, MAX_LEN, HIDDEN)
            assert model.forward(seq, seq_len).shape == (B, HIDDEN)
            assert model.full_sort_predict(inter).shape == (B, model.n_items)
            test_inter = first_batch(test_data)
            assert model.full_sort_predict(test_inter).shape == (test_inter[model.ITEM_SEQ].size(0), model.n_items)
            # forward is the last real position of sequence_output (right padding).
            full = model.sequence_output(seq, model.item_embedding(seq))
            assert torch.equal(model.forward(seq, seq_len), full[torch.arange(B), seq_len - 1])


def _random_filter(L, D, causal, seed):
    torch.manual_seed(seed)
    layer = FilterLayer(L, D, hidden_dropout_prob=0.0, layer_norm_eps=1e-12, causal=causal).double()
    with torch.no_grad():
        # O(1) weights, imaginary parts of the DC / Nyquist bins included (irfft drops them).
        layer.complex_weight.normal_()
    return layer


@pytest.mark.parametrize("L", [5, 6])
def test_kernel_matches_weight(L):
    layer = _random_filter(L, 3, causal=False, seed=1)
    W = layer.weight().detach().clone()
    W[:, 0] = W[:, 0].real  # DC is real for a real kernel
    if L % 2 == 0:
        W[:, -1] = W[:, -1].real  # so is the Nyquist bin
    torch.testing.assert_close(torch.fft.rfft(layer.kernel(), dim=1).detach(), W)


@pytest.mark.parametrize("L", [5, 6])
def test_circular_filter_is_circular_convolution(L):
    B, D = 2, 3
    layer = _random_filter(L, D, causal=False, seed=2)
    x = torch.randn(B, L, D, dtype=torch.float64)
    k = layer.kernel().detach()[0]  # (L, D)
    expected = torch.zeros(B, L, D, dtype=torch.float64)
    for t in range(L):
        for s in range(L):
            expected[:, t] += k[s] * x[:, (t - s) % L]
    torch.testing.assert_close(layer.filter(x).detach(), expected)
    # It really is circular: output 0 depends on the last input.
    assert k[1:].abs().max() > 1e-3


@pytest.mark.parametrize("L", [5, 6])
def test_causal_filter_is_causal_convolution(L):
    B, D = 2, 3
    causal = _random_filter(L, D, causal=True, seed=3)
    circular = _random_filter(L, D, causal=False, seed=3)  # same parameters
    x = torch.randn(B, L, D, dtype=torch.float64)
    k = causal.kernel().detach()[0]
    torch.testing.assert_close(k, circular.kernel().detach()[0])
    expected = torch.zeros(B, L, D, dtype=torch.float64)
    for t in range(L):
        for s in range(t + 1):
            expected[:, t] += k[s] * x[:, t - s]
    y = causal.filter(x).detach()
    torch.testing.assert_close(y, expected)
    # The last output is where causal and circular agree.
    torch.testing.assert_close(y[:, -1], circular.filter(x).detach()[:, -1])


def test_filter_layer_residual_and_norm():
    layer = _random_filter(6, 4, causal=True, seed=4)
    x = torch.randn(2, 6, 4, dtype=torch.float64)
    layer.eval()
    expected = torch.nn.functional.layer_norm(layer.filter(x) + x, (4,), eps=1e-12)
    torch.testing.assert_close(layer(x), expected)


def _perturb_future(seq, t, n_items, seed):
    g = torch.Generator().manual_seed(seed)
    out = seq.clone()
    out[:, t + 1:] = torch.randint(1, n_items, out[:, t + 1:].shape, generator=g)
    return out


def test_causal_filter_does_not_leak(built):
    _, model, train_data, _, _ = built[True]
    model.eval()
    seq = first_batch(train_data)[model.ITEM_SEQ]
    with torch.no_grad():
        base = model.sequence_output(seq, model.item_embedding(seq))
        for t in range(MAX_LEN - 1):
            other = _perturb_future(seq, t, model.n_items, seed=t)
            assert not torch.equal(other[:, t + 1:], seq[:, t + 1:])
            out = model.sequence_output(other, model.item_embedding(other))
            # Not bitwise: the FFT touches every input, so float32 round-off (~1e-6 after the
            # LayerNorms) remains; the circular model's leak is ~1e-1 (test below).
            torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], rtol=0, atol=1e-5)
            assert (out[:, t + 1:] - base[:, t + 1:]).abs().max() > 1e-3


def test_circular_filter_leaks(built):
    _, model, train_data, _, _ = built[False]
    model.eval()
    seq = first_batch(train_data)[model.ITEM_SEQ]
    with torch.no_grad():
        base = model.sequence_output(seq, model.item_embedding(seq))
        for t in range(MAX_LEN - 1):
            other = _perturb_future(seq, t, model.n_items, seed=t)
            out = model.sequence_output(other, model.item_embedding(other))
            # Earlier positions move: the paper's filter sees the future.
            assert (out[:, : t + 1] - base[:, : t + 1]).abs().max() > 1e-2


def _train_steps(model, loader, steps, lr=5e-3):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    done = 0
    model.train()
    while done < steps:
        for batch in loader:
            inter = batch[0] if isinstance(batch, tuple) else batch
            optimizer.zero_grad()
            loss = model.calculate_loss(inter)
            assert torch.isfinite(loss)
            loss.backward()
            optimizer.step()
            done += 1
            if done == steps:
                break


@pytest.mark.parametrize(
    "loss_type,causal",
    [("CE", False), ("CE", True), ("BPR", False), ("BCE", True)],
)
def test_loss_decreases(tiny_data_path, tmp_path, loss_type, causal):
    neg = None if loss_type == "CE" else {"distribution": "uniform", "sample_num": 1}
    _, model, train_data, _, _ = build(
        tiny_data_path, tmp_path, loss_type=loss_type, filter_causal=causal,
        train_neg_sample_args=neg, train_batch_size=32,
    )
    fixed = first_batch(train_data)
    if loss_type != "CE":
        assert model.NEG_ITEM_ID in fixed
    model.eval()
    with torch.no_grad():
        before = model.calculate_loss(fixed).item()
    _train_steps(model, train_data, steps=30)
    model.eval()
    with torch.no_grad():
        after = model.calculate_loss(fixed).item()
    if loss_type == "CE":
        assert before == pytest.approx(math.log(model.n_items), rel=0.05)  # near-uniform at init
    else:
        assert before == pytest.approx(math.log(2) * (2 if loss_type == "BCE" else 1), rel=0.05)
    assert after < (0.8 if loss_type == "CE" else 0.9) * before, (before, after)


def test_bce_formula(tiny_data_path, tmp_path):
    _, model, train_data, _, _ = build(
        tiny_data_path, tmp_path, loss_type="BCE", train_neg_sample_args={"distribution": "uniform", "sample_num": 1},
    )
    inter = first_batch(train_data)
    model.eval()
    with torch.no_grad():
        out = model.forward(inter[model.ITEM_SEQ], inter[model.ITEM_SEQ_LEN])
        pos = (out * model.item_embedding(inter[model.POS_ITEM_ID])).sum(-1)
        neg = (out * model.item_embedding(inter[model.NEG_ITEM_ID])).sum(-1)
        expected = (-torch.log(torch.sigmoid(pos)) - torch.log(1 - torch.sigmoid(neg))).mean()
        torch.testing.assert_close(model.calculate_loss(inter), expected)


@pytest.mark.parametrize("causal", [False, True])
def test_stock_trainer_round_trip(tiny_data_path, tmp_path, causal):
    config, model, train_data, valid_data, test_data = build(tiny_data_path, tmp_path, filter_causal=causal)
    trainer = Trainer(config, model)
    best_valid, _ = trainer.fit(train_data, valid_data, saved=False)
    result = trainer.evaluate(test_data, load_best_model=False)
    assert "ndcg@10" in result and "hit@10" in result
    assert result["ndcg@10"] > 0 and result == trainer.evaluate(test_data, load_best_model=False)  # scores are deterministic
    assert math.isfinite(best_valid)
