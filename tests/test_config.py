"""Defaults from properties/ and start-up validation of BASRec's keys."""
import pytest

import recbole_basrec  # noqa: F401
from recbole_basrec.config import default_config_dict, resolve_model_name
from recbole_basrec.quick_start.quick_start import build_config


def test_backbone_and_our_names_resolve_and_unknown_names_list_the_valid_ones():
    assert resolve_model_name("sasrec") == "BASRecSASRec"
    assert resolve_model_name("BASRecGRU4Rec") == "BASRecGRU4Rec"
    assert resolve_model_name("FMLPRec") == "BASRecFMLPRec"
    assert resolve_model_name("Caser") == "BASRecCaser"  # the generic path
    with pytest.raises(ValueError, match="Unknown model 'Casr'. Valid models: a RecBole sequential model name"):
        resolve_model_name("Casr")


def test_defaults_combine_backbone_shared_and_basrec_files():
    sasrec = default_config_dict("BASRecSASRec")
    assert sasrec["n_layers"] == 2 and sasrec["hidden_size"] == 64  # RecBole's SASRec.yaml
    assert sasrec["metrics"] == ["Hit", "NDCG"] and sasrec["topk"] == [5, 10, 20]
    assert (sasrec["beta"], sasrec["rate_max"]) == (0.4, 0.71)
    gru = default_config_dict("BASRecGRU4Rec")
    assert (gru["beta"], gru["rate_max"], gru["hidden_size"]) == (0.3, 0.51, 128)
    assert default_config_dict("BASRecSASRec", "ml-100k")["epochs"] < sasrec["epochs"]


def test_user_values_win_over_defaults(tiny_data_path):
    config = build_config("SASRec", "tiny", config_dict={"data_path": tiny_data_path, "beta": 0.7, "metrics": ["Recall"]})
    assert config["beta"] == 0.7 and config["metrics"] == ["Recall"] and config["n_pairs"] == 1


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"rate_min": 0.8, "rate_max": 0.3}, r"rate_min \(0.8\) > rate_max \(0.3\)"),
        ({"beta": 0}, "beta must be > 0"),
        ({"beta": -1.5}, "beta must be > 0"),
        ({"rate_min": 0.0}, r"must lie in \(0, 1\]"),
        ({"rate_max": 1.5}, r"must lie in \(0, 1\]"),
        ({"n_pairs": -1}, "n_pairs must be an integer >= 0"),
        ({"n_whole_level": 1.5}, "n_whole_level must be an integer >= 0"),
        ({"aml_weight": -1}, "aml_weight must be >= 0"),
        ({"train_mode": "windows"}, "train_mode must be one of prefix, sequence"),
        ({"similarity_model": "Item2Vec"}, "similarity_model must be one of ItemCF_IUF, ItemCF, Random"),
        ({"pretrained_path": "/no/such.pth"}, "pretrained_path '/no/such.pth' does not exist"),
        ({"loss_type": "MSE"}, "loss_type must be one of CE, BPR, BCE"),
        ({"basrec": "yes"}, "basrec must be True or False"),
    ],
)
def test_invalid_values_fail_at_start_up_with_the_fix(tiny_data_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        build_config("SASRec", "tiny", config_dict={"data_path": tiny_data_path, **overrides})
