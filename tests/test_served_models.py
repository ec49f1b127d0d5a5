"""Stock models served by dedicated adapters: BERT4Rec (masked items), SR-GNN and GC-SAN (session
graphs), CORE, HGN and NPE (their own scoring), SASRecF, FDSA and GRU4RecF (item features)."""
import os

import pytest
import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import init_seed
from recbole_basrec.utils import get_model

import recbole_basrec  # noqa: F401
from recbole_basrec.config import DEDICATED, HANDWRITTEN, KNOWN_REFUSALS, stock_sequential_models
from recbole_basrec.model.generic import generic_basrec_class
from recbole_basrec.model.session_graph import session_nodes

from helpers import assert_stock_inference_and_learning, write_tiny_dataset

FEATURES = ["FDSA", "GRU4RecF", "SASRecF"]
NEW = sorted(DEDICATED)
SMALL = {"n_layers": 2, "n_heads": 1, "hidden_size": 16, "embedding_size": 16, "inner_size": 32}
FEATURE_COLUMNS = {"load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "class"]}}


@pytest.fixture(scope="module")
def feature_data_path(tmp_path_factory):
    """The tiny dataset plus a ``class`` token per item (7 classes)."""
    root = str(tmp_path_factory.mktemp("features"))
    path = write_tiny_dataset(root)
    with open(os.path.join(path, "tiny.item"), "w") as f:
        f.write("item_id:token\tclass:token\n")
        f.writelines(f"{i}\tc{i % 7}\n" for i in range(1, 31))
    return root


@pytest.fixture
def build(tiny_setup, feature_data_path):
    def make(name, **overrides):
        extra = {"data_path": feature_data_path, **FEATURE_COLUMNS} if name in FEATURES else {}
        return tiny_setup(name, **SMALL, **extra, **overrides)

    return make


def _other(model, seq):
    """Every item replaced by the next one on the ring (a bijection of real items; padding stays)."""
    return torch.where(seq > 0, seq % (model.n_items - 1) + 1, seq)


def test_at_least_18_stock_models_are_served_and_the_rest_say_why():
    stock = set(stock_sequential_models())
    served = stock - set(KNOWN_REFUSALS)
    assert len(served) >= 18 and set(DEDICATED) | set(HANDWRITTEN) - {"FMLPRec"} <= served
    assert all("\n" not in reason and len(reason) > 40 for reason in KNOWN_REFUSALS.values())


@pytest.mark.parametrize("name", NEW)
def test_new_model_probes_trains_and_infers_as_the_stock_model(build, name):
    config, dataset, model, trainer, (train, valid, test) = build(name, learning_rate=0.003)
    assert type(model).__name__ == f"BASRec{name}" and get_model(f"BASRec{name}") is type(model)
    # Same parameters and initialisation as the stock model built with the same seed; same scores.
    assert_stock_inference_and_learning(name, model, config, train, test, shrink=0.99)


@pytest.mark.parametrize("name,loss_type", [("BERT4Rec", "CE"), ("BERT4Rec", "BPR"), ("CORE", "CE"), ("NPE", "CE")])
def test_recommendation_loss_is_the_stock_objective(build, name, loss_type):
    config, dataset, model, trainer, (train, valid, test) = build(name, loss_type=loss_type)
    init_seed(0, True)
    stock = stock_sequential_models()[name](config, train._dataset)
    stock.load_state_dict(model.state_dict())
    model.eval(), stock.eval()  # no dropout: both see the same network
    model.augment = False
    batch = next(iter(train))
    with torch.no_grad():
        assert torch.allclose(model.calculate_loss(batch), stock.calculate_loss(batch), rtol=1e-5)


def test_bert4rec_views_keep_the_masks_and_show_no_masked_target(build):
    config, dataset, model, trainer, (train, valid, test) = build("BERT4Rec", rate_min=0.5, rate_max=0.9, n_pairs=4)
    batch = next(iter(train))
    masked, lengths = batch[model.MASK_ITEM_SEQ], batch[model.ITEM_SEQ_LEN]
    views, rates = model._masked_views(masked, lengths, 8)
    originals = masked.repeat(8, 1)
    is_mask = originals == model.mask_token
    assert is_mask.any() and torch.equal(views[is_mask], originals[is_mask])
    assert torch.equal(views == model.mask_token, is_mask) and torch.equal(views > 0, originals > 0)
    # Every item a view shows is a visible item of its sequence or its substitute.
    neighbours = model.substitute_table
    for view, seq in zip(views.tolist(), originals.tolist()):
        visible = {i for i in seq if 0 < i < model.n_items}
        assert {i for i in view if 0 < i < model.n_items} <= visible | {int(neighbours[i]) for i in visible}
    assert (views != originals).any()


def test_bert4rec_is_refused_in_sequence_mode(build):
    with pytest.raises(ValueError, match="BASRecBERT4Rec trains one target per prefix.*set train_mode=prefix"):
        build("BERT4Rec", train_mode="sequence")


@pytest.mark.parametrize("name", ["SRGNN", "GCSAN"])
def test_session_nodes_are_the_stock_graph_nodes(build, name):
    config, dataset, model, trainer, (train, valid, test) = build(name)
    seq = next(iter(train))["item_id_list"]
    seq = torch.cat([seq, torch.tensor([[3, 3, 5, 3, 0, 0, 0, 0, 0, 0], [1] * 10])])
    alias, _, items = model._get_slice(seq)[:3]
    nodes, mine = session_nodes(seq)
    assert torch.equal(nodes, items) and torch.equal(mine, alias)


@pytest.mark.parametrize("name", ["SRGNN", "GCSAN"])
def test_views_enter_at_the_graph_nodes(build, name):
    # Fusing the relabelled sequence's embeddings into the original graph is the stock forward of
    # the relabelled sequence (same graph up to node order); a node's views are averaged.
    config, dataset, model, trainer, (train, valid, test) = build(name)
    model.eval()
    batch = next(iter(train))
    seq, length = batch["item_id_list"], batch["item_length"]
    other = _other(model, seq)
    with torch.no_grad():
        fused = model._encode(seq, model.item_embedding(other), length)[:, 0]
        expected = model._backbone_forward(other, length, None)
        plain = model._backbone_forward(seq, length, None)
        averaged = model._embed_input(torch.tensor([[4, 4, 0]]), model.item_embedding(torch.tensor([[1, 2, 0]])))
    assert torch.allclose(fused, expected, atol=1e-5) and not torch.allclose(fused, plain, atol=1e-3)
    weight = model.item_embedding.weight
    assert torch.allclose(averaged[0, 1], (weight[1] + weight[2]) / 2) and torch.equal(averaged[0, 0], weight[0])


@pytest.mark.parametrize("name", FEATURES)
def test_views_fuse_item_ids_and_features_alike(build, name):
    config, dataset, model, trainer, (train, valid, test) = build(name)
    model.eval()
    batch = next(iter(train))
    seq, length = batch["item_id_list"], batch["item_length"]
    other = _other(model, seq)

    def view_input(lam):
        fused = lambda rows, cols: lam * model.item_embedding(seq) + (1 - lam) * model.item_embedding(other)  # noqa: E731
        fused.views, fused.lam = other, torch.full((seq.size(0),), lam)
        return fused

    with torch.no_grad():
        whole_view = model._encode(seq, view_input(0.0), length)[:, 0]
        no_view = model._encode(seq, view_input(1.0), length)[:, 0]
        ids_only = model._encode(seq, model.item_embedding(other), length)[:, 0]
        expected = model._backbone_forward(other, length, None)
    assert torch.allclose(whole_view, expected, atol=1e-5)
    assert torch.allclose(no_view, model._backbone_forward(seq, length, None), atol=1e-5)
    assert not torch.allclose(ids_only, expected, atol=1e-3)  # the features differ: they must be fused too


def test_feature_model_without_its_fields_is_refused_in_one_line(tiny_setup):
    with pytest.raises(ValueError, match=r"SASRecF reads item feature fields \['class'\].*load_col") as error:
        tiny_setup("SASRecF", **SMALL)
    assert "\n" not in str(error.value)


def test_core_refuses_sampled_losses(build):
    with pytest.raises(ValueError, match="CORE trains with softmax cross-entropy only.*set loss_type=CE"):
        build("CORE", loss_type="BPR")


class _PerPosition(SequentialRecommender):
    """A stock-style model whose ``forward`` returns a GRU's output at every position (or, with
    ``backwards``, sees the whole sequence)."""

    backwards = False

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.item_embedding = torch.nn.Embedding(self.n_items, 16, padding_idx=0)
        self.gru = torch.nn.GRU(16, 16, batch_first=True)
        self.loss_type = config["loss_type"]

    def forward(self, item_seq, item_seq_len):
        emb = self.item_embedding(item_seq)
        if self.backwards:
            emb = emb + emb.mean(1, keepdim=True)
        return self.gru(emb)[0]

    def full_sort_predict(self, interaction):
        output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        if output.dim() == 3:
            output = self.gather_indexes(output, interaction[self.ITEM_SEQ_LEN] - 1)
        return output @ self.item_embedding.weight.t()


class _Bidirectional(_PerPosition):
    backwards = True


class _OnePerSequence(_PerPosition):
    def forward(self, item_seq, item_seq_len):
        return self.gather_indexes(super().forward(item_seq, item_seq_len), item_seq_len - 1)


def test_generic_path_trains_sequence_mode_for_per_position_models(tiny_setup):
    config, dataset, _, trainer, (train, valid, test) = tiny_setup("GRU4Rec", train_mode="sequence", align="first")
    init_seed(0, True)
    model = generic_basrec_class(_PerPosition)(config, train._dataset)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    epoch_losses = []
    for _ in range(4):
        total = 0.0
        for batch in train:
            rec, ssa, csa = model.calculate_loss(batch)
            optimizer.zero_grad()
            (rec + ssa + csa).backward()
            optimizer.step()
            total += (rec + ssa + csa).item()
        epoch_losses.append(total)
    assert epoch_losses[-1] < 0.9 * epoch_losses[0]
    with pytest.raises(ValueError, match="_Bidirectional cannot be trained with BASRec: it lets each position's output see later"):
        generic_basrec_class(_Bidirectional)(config, train._dataset)
    with pytest.raises(ValueError, match="_OnePerSequence cannot be trained with BASRec: it returns one representation per"):
        generic_basrec_class(_OnePerSequence)(config, train._dataset)


@pytest.mark.slow
def test_stock_run_recbole_trains_basrec_bert4rec(tiny_data_path, tmp_path):
    from recbole.quick_start import run_recbole

    result = run_recbole(
        model="BASRecBERT4Rec",
        dataset="tiny",
        config_dict={"data_path": tiny_data_path, "checkpoint_dir": str(tmp_path), "stage1_epochs": 1, "epochs": 1,
                     "MAX_ITEM_LIST_LENGTH": 10, "state": "ERROR", "use_gpu": False, **SMALL, "strict_keys": False},
    )
    assert 0 <= result["test_result"]["ndcg@10"] <= 1


def test_bert4rec_trains_on_loaders_reused_from_an_earlier_phase(tiny_config_dict):
    # The accuracy job builds stage 2 on stage 1's loaders; the masking transform's keys must still
    # reach the new model's config ("needs RecBole's masked sequences" otherwise).
    from recbole_basrec.quick_start import build

    config = {**tiny_config_dict, **SMALL, "loss_type": "CE"}
    first = build("BERT4Rec", "tiny", config_dict={**config, "basrec": False})
    second = build("BERT4Rec", "tiny", config_dict=config, data=first)
    assert second.model.MASK_ITEM_SEQ == first.model.MASK_ITEM_SEQ == "Mask_item_id_list"
    assert all(loader.transform.config is second.config for loader in (second.train_data, second.test_data))
    losses = second.model.calculate_loss(next(iter(second.train_data)))
    assert all(torch.isfinite(term) for term in losses)
