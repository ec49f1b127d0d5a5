"""Test-time augmentation (TNoise, TMask) for any trained sequential model."""
import pytest
import torch
from recbole.data.interaction import Interaction

import recbole_basrec  # noqa: F401
from recbole_basrec.trainer.tta import remove_items, augment_at_test_time


def test_remove_items_drops_floor_rate_times_length_and_keeps_order():
    seq = torch.tensor([[5, 6, 7, 8, 9, 0], [3, 4, 0, 0, 0, 0], [2, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    lengths = torch.tensor([5, 2, 1, 6])
    generator = torch.Generator().manual_seed(0)
    thinned, new_lengths = remove_items(seq, lengths, 0.5, generator)
    assert new_lengths.tolist() == [3, 1, 1, 3]  # 5 - 2, 2 - 1, 1 - 0, 6 - 3
    for row, n in zip(range(4), new_lengths.tolist()):
        kept = thinned[row, :n].tolist()
        original = seq[row, : lengths[row]].tolist()
        assert all(k > 0 for k in kept) and (thinned[row, n:] == 0).all()
        positions = [original.index(k) for k in kept]
        assert positions == sorted(positions)  # a subsequence, order kept
    assert thinned[2].tolist() == [2, 0, 0, 0, 0, 0]  # a single item is never removed


def test_remove_items_is_random_per_row_and_seeded():
    seq = torch.arange(1, 9).repeat(64, 1)
    lengths = torch.full((64,), 8)
    a, _ = remove_items(seq, lengths, 0.5, torch.Generator().manual_seed(1))
    b, _ = remove_items(seq, lengths, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert len({tuple(r.tolist()) for r in a}) > 10


@pytest.fixture
def trained(tiny_setup):
    config, dataset, model, trainer, (train, valid, test) = tiny_setup("SASRec", epochs=3, basrec=False)
    trainer.fit(train, valid, saved=True, show_progress=False)
    return config, model, trainer, valid, test


def _scores(model, batch):
    with torch.no_grad():
        return model.full_sort_predict(batch)


def _tta_scores(config, model, batch, **settings):
    """Scores of ``batch`` under the config's TTA keys, ``settings`` overriding them."""
    keys = ("seed", "tta", "tta_views", "tta_output_views", "tta_keep_original", "tta_noise", "tta_mask_rate")
    with augment_at_test_time(model, {**{k: config[k] for k in keys}, **settings}):
        return _scores(model, batch)


def test_tmask_with_rate_zero_and_tnoise_with_zero_noise_change_nothing(trained):
    config, model, trainer, valid, test = trained
    model.eval()
    batch = next(iter(test))[0]
    plain = _scores(model, batch)
    for settings in ({"tta": "tmask", "tta_mask_rate": 0.0}, {"tta": "tnoise", "tta_noise": [0.0, 0.0], "tta_output_views": 3}):
        assert torch.allclose(_tta_scores(config, model, batch, **settings), plain, atol=1e-5)
    assert "full_sort_predict" not in vars(model)  # the stock method is back


def _input_noise_scores(model, batch, noise):
    seq, lengths = batch["item_id_list"], batch["item_length"]
    layout = model._layout(seq, lengths)
    emb = model.item_embedding(layout) + noise * (layout > 0).unsqueeze(-1)
    with torch.no_grad():
        hidden = model._last(model.sequence_output(layout, emb), lengths)
        return hidden @ model.item_embedding.weight.t()


@pytest.mark.parametrize("output_views", [0, 2])
def test_tnoise_adds_the_noise_to_real_input_positions_and_to_the_output(trained, output_views):
    """Input copies: noise on real positions only; output copies: noise on what forward returns."""
    config, model, trainer, valid, test = trained
    model.eval()
    batch = next(iter(test))[0]
    averaged = _tta_scores(config, model, batch, tta="tnoise", tta_views=1, tta_output_views=output_views,
                           tta_noise=[0.5, 0.5], tta_keep_original=False)
    with torch.no_grad():
        hidden = model.forward(batch["item_id_list"], batch["item_length"])
    output_noise = (hidden + 0.5) @ model.item_embedding.weight.t()
    expected = (_input_noise_scores(model, batch, 0.5) + output_views * output_noise) / (1 + output_views)
    assert torch.allclose(averaged, expected, atol=1e-4)
    assert "forward" not in vars(model)  # the class's forward is back


class _ScoresWithoutForward(torch.nn.Module):
    ITEM_SEQ, ITEM_SEQ_LEN = "item_id_list", "item_length"

    def __init__(self):
        super().__init__()
        self.item_embedding = torch.nn.Embedding(5, 2)

    def forward(self, item_seq, item_seq_len):
        return self.item_embedding(item_seq).sum(1)

    def full_sort_predict(self, interaction):
        return self.item_embedding(interaction[self.ITEM_SEQ]).sum(1) @ self.item_embedding.weight.t()


def test_output_views_refuse_a_model_that_scores_without_forward():
    batch = Interaction({"item_id_list": torch.tensor([[1, 2, 0]]), "item_length": torch.tensor([2])})
    settings = {"seed": 0, "tta": "tnoise", "tta_views": 1, "tta_output_views": 1, "tta_noise": [0.1, 0.2],
                "tta_mask_rate": 0.5, "tta_keep_original": True}
    model = _ScoresWithoutForward()
    with pytest.raises(ValueError, match="set tta_output_views: 0 for this model"):
        with augment_at_test_time(model, settings):
            model.full_sort_predict(batch)
    with augment_at_test_time(model, {**settings, "tta_output_views": 0}):
        assert model.full_sort_predict(batch).shape == (1, 5)


def test_tmask_averages_the_original_and_each_thinned_input(trained):
    config, model, trainer, valid, test = trained
    model.eval()
    batch = next(iter(test))[0]
    averaged = _tta_scores(config, model, batch, tta="tmask", tta_views=2, tta_mask_rate=0.5, tta_keep_original=True,
                           seed=3)
    generator = torch.Generator().manual_seed(3)
    seq, lengths = batch["item_id_list"], batch["item_length"]
    expected = _scores(model, batch)
    for _ in range(2):
        thinned, new_lengths = remove_items(seq, lengths, 0.5, generator)
        expected = expected + _scores(model, Interaction({**batch.interaction, "item_id_list": thinned, "item_length": new_lengths}))
    assert torch.allclose(averaged, expected / 3, atol=1e-5)


def test_trainer_applies_tta_to_tests_only_reproducibly(trained):
    config, model, trainer, valid, test = trained
    plain_valid = trainer.evaluate(valid, load_best_model=False)
    plain_test = trainer.evaluate(test, load_best_model=False)
    config["tta"], config["tta_mask_rate"] = "tmask", 0.5
    first = trainer.evaluate(test, load_best_model=False)
    assert first == trainer.evaluate(test, load_best_model=False)  # seeded
    assert first != plain_test
    with trainer._validation():
        assert trainer.evaluate(valid, load_best_model=False) == plain_valid


def test_stock_model_with_our_trainer_gets_tta(tiny_config_dict):
    from recbole_basrec.utils import Config
    from recbole.data import data_preparation
    from recbole_basrec.utils import create_dataset
    from recbole.model.sequential_recommender import NARM

    from recbole_basrec.config import properties_dir
    from recbole_basrec.trainer import BASRecTrainer

    settings = {**tiny_config_dict, "eval_mask_history": False, "epochs": 1, "train_neg_sample_args": None}
    overall = f"{properties_dir()}/overall.yaml"  # the data settings and tta defaults
    config = Config(model=NARM, dataset="tiny", config_file_list=[overall], config_dict=settings)
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    trainer = BASRecTrainer(config, NARM(config, train._dataset))
    trainer.fit(train, valid, saved=False)
    plain = trainer.evaluate(test, load_best_model=False)
    config["tta"] = "tnoise"
    assert trainer.evaluate(test, load_best_model=False) != plain


@pytest.mark.parametrize("key,value,fragment", [
    ("tta", "tdrop", "tta must be one of none, tnoise, tmask"),
    ("tta_views", 0, "tta_views must be an integer in [1, 1000]"),
    ("tta_output_views", -1, "tta_output_views must be an integer in [0, 1000]"),
    ("tta_noise", [1.0, 0.5], "tta_noise [1.0, 0.5] has low > high"),
    ("tta_mask_rate", 1.0, "tta_mask_rate must be a number in [0, 1)"),
])
def test_bad_tta_settings_get_one_line(tiny_setup, key, value, fragment):
    with pytest.raises(ValueError) as error:
        tiny_setup("SASRec", **{key: value})
    assert fragment in str(error.value) and "\n" not in str(error.value)
