"""The configuration layer: our defaults through RecBole's own Config, the schema, the reference."""
import logging
import os

import pytest
from recbole_basrec.utils import Config
from recbole.utils import InputType

import recbole_basrec  # noqa: F401
from recbole_basrec.config import default_config_dict, preset_file, properties_dir, resolve_model_name
from recbole_basrec.config import schema
from recbole_basrec.config.command_line import parse_overrides, parse_value
from recbole_basrec.config.files import load_yaml
from recbole_basrec.config.models import OWN_BACKBONES, backbone_of, is_basrec
from recbole_basrec.config.reference import defaults, help_epilog, markdown
from recbole_basrec.quick_start.quick_start import build_config

from helpers import ROOT


@pytest.fixture
def where(tiny_data_path, tmp_path):
    return {"data_path": tiny_data_path, "checkpoint_dir": str(tmp_path / "saved")}


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


def test_a_stock_config_of_our_model_gets_our_defaults_under_the_users_values(where, tmp_path):
    """The hook serves RecBole's own Config: no runner, no helper call."""
    user_file = tmp_path / "user.yaml"
    user_file.write_text("beta: 0.6\nn_pairs: 3\n")
    config = Config(model="BASRecSASRec", dataset="tiny", config_file_list=[str(user_file)],
                    config_dict={**where, "beta": 0.7})
    assert config["beta"] == 0.7  # dict over file
    assert config["n_pairs"] == 3  # file over our default (1)
    assert config["rate_max"] == 0.71 and config["metrics"] == ["Hit", "NDCG"]  # ours under RecBole's
    assert config["loss_type"] == "BCE" and config["MODEL_INPUT_TYPE"] == InputType.PAIRWISE  # the authors' loss
    assert config.external_config_dict.keys() == {"data_path", "checkpoint_dir", "beta", "n_pairs"}
    ce = Config(model="BASRecSASRec", dataset="tiny", config_dict={**where, "loss_type": "CE"})
    assert ce["MODEL_INPUT_TYPE"] == InputType.POINTWISE
    bce = Config(model="BASRecSASRec", dataset="tiny", config_dict={**where, "loss_type": "BCE", "train_mode": "prefix"})
    assert bce["MODEL_INPUT_TYPE"] == InputType.PAIRWISE
    assert bce["train_neg_sample_args"]["distribution"] == "uniform"


def test_a_stock_models_config_is_left_as_recbole_builds_it(where):
    where = {**where, "train_neg_sample_args": None}
    config = Config(model="SASRec", dataset="tiny", config_dict=where)
    assert config["beta"] is None and config["metrics"] == ["Recall", "MRR", "NDCG", "Hit", "Precision"]
    config = Config(model="SASRec", dataset="tiny", config_dict={**where, "n_pair": 2})  # RecBole accepts anything
    assert config["n_pair"] == 2


def test_the_published_preset_applies_on_its_dataset_and_the_user_still_wins(tmp_path):
    where = {"checkpoint_dir": str(tmp_path)}
    assert build_config("SASRec", "Beauty", config_dict=where)["n_pairs"] == 2  # the preset
    assert build_config("SASRec", "Beauty", config_dict={**where, "n_pairs": 1})["n_pairs"] == 1
    with pytest.raises(ValueError, match="valid_start_epoch=101 with epochs=20: the stage would never validate"):
        build_config("SASRec", "Beauty", config_dict={**where, "epochs": 20})
    assert build_config("SASRec", "Beauty", config_dict={**where, "epochs": 20, "valid_start_epoch": 0})["epochs"] == 20


def test_user_values_win_over_defaults(where):
    config = build_config("SASRec", "tiny", config_dict={**where, "beta": 0.7, "metrics": ["Recall"],
                                                         "valid_metric": "Recall@10"})
    assert config["beta"] == 0.7 and config["metrics"] == ["Recall"] and config["n_pairs"] == 1


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"rate_min": 0.8, "rate_max": 0.3}, r"rate_min \(0.8\) > rate_max \(0.3\)"),
        ({"beta": 0}, "beta must be a number > 0, got 0"),
        ({"beta": float("nan")}, "beta is nan: every number in the configuration must be finite"),
        ({"rate_min": 0.0}, r"rate_min must be a number in \(0, 1\]"),
        ({"n_pairs": True}, "n_pairs must be an integer in \\[0, 50\\], got True"),
        ({"n_whole_level": 1.5}, "n_whole_level must be an integer in \\[0, 50\\]"),
        ({"train_mode": "windows"}, "train_mode must be one of prefix, sequence"),
        ({"similarity_model": "Item2Vec"}, "similarity_model must be one of ItemCF_IUF, ItemCF, Random"),
        ({"pretrained_path": "/no/such.pth"}, "pretrained_path '/no/such.pth' does not exist"),
        ({"loss_type": "MSE"}, "loss_type must be one of CE, BPR, BCE"),
        ({"n_pair": 2}, "unknown key 'n_pair' for BASRecSASRec; did you mean n_pairs?"),
        ({"lr": 0.1}, "unknown key 'lr' .*did you mean learning_rate?"),
        ({"filter_causal": True}, "filter_causal is a key of FMLPRec, which BASRecSASRec is not"),
        ({"epochs": 0}, "epochs=0 would test an untrained model"),
        ({"valid_metric": "MRR@10"}, "valid_metric 'MRR@10' is not computed"),
        ({"eval_type": 1}, "eval_type is derived by RecBole"),
        ({"train_neg_sample_args": {"alpha": float("inf")}}, r"train_neg_sample_args.alpha is inf"),
    ],
)
def test_invalid_values_fail_at_start_up_with_the_fix(where, overrides, message):
    with pytest.raises(ValueError, match=message) as error:
        build_config("SASRec", "tiny", config_dict={**where, **overrides})
    assert "\n" not in str(error.value)


def test_strict_keys_false_passes_unknown_keys_on_with_a_warning(where, caplog):
    with caplog.at_level(logging.WARNING):
        config = build_config("SASRec", "tiny", config_dict={**where, "strict_keys": False, "my_key": 3})
    assert config["my_key"] == 3
    assert "passed on unchecked: my_key" in caplog.text


def test_the_runner_reads_the_command_line_once_and_recbole_not_at_all(where, monkeypatch):
    import sys

    monkeypatch.setattr(sys, "argv", ["prog", "--n_pairs=9"])
    assert build_config("SASRec", "tiny", config_dict=where)["n_pairs"] == 1  # the runner's argv is not RecBole's
    with pytest.raises(ValueError, match="unknown key 'n_pairz'"):
        monkeypatch.setattr(sys, "argv", ["prog", "--n_pairz=9"])
        Config(model="BASRecSASRec", dataset="tiny", config_dict=where)  # a stock script: RecBole reads argv


def test_command_line_values_are_read_as_recbole_reads_them():
    assert parse_value("2") == 2 and parse_value("1e-3") == 0.001 and parse_value("[5, 10]") == [5, 10]
    assert parse_value("false") is False and parse_value("TRUE") is True and parse_value("None") is None
    assert parse_value("NDCG@10") == "NDCG@10" and parse_value("1e400") == float("inf")
    assert parse_overrides(["--a=1", "--b=x"]) == {"a": 1, "b": "x"}
    with pytest.raises(ValueError, match=r"--a is given twice \(1 and 1\)"):
        parse_overrides(["--a=1", "--a=1"])
    assert parse_overrides(["--f=['class']", "--g={'a': 1}"]) == {"f": ["class"], "g": {"a": 1}}
    for unquoted in ("[class]", "[a, b]", "{a: 1}"):
        with pytest.raises(ValueError, match=r"is not a Python literal: quote the names"):
            parse_overrides([f"--f={unquoted}"])


def test_every_shipped_default_passes_the_schema():
    presets = [name[:-5].split("-", 1) for name in os.listdir(os.path.join(properties_dir(), "preset"))]
    cases = [(f"BASRec{b}" if b != "FMLPRec" else "BASRecFMLPRec", d) for b, d in presets]
    cases += [(m, None) for m in ("BASRecSASRec", "BASRecGRU4Rec", "BASRecFMLPRec", "BASRecNARM", "FMLPRec")]
    for model, dataset in cases:
        values = default_config_dict(model, dataset)
        for key in schema.keys_for(model):
            if key.name in values:
                schema.check(key.name, values[key.name])


def test_every_key_of_our_yaml_files_is_declared_or_recboles():
    declared = set(schema.BY_NAME)
    basrec = load_yaml(os.path.join(properties_dir(), "model", "BASRec.yaml"))
    assert set(basrec) <= declared
    overall = load_yaml(os.path.join(properties_dir(), "overall.yaml"))
    stock = set(Config(model="SASRec", dataset="tiny",
                       config_dict={"checkpoint_dir": "saved", "train_neg_sample_args": None}).final_config_dict)
    assert set(overall) - declared <= stock
    values = defaults()
    assert all(values[key.name] is not None for key in schema.KEYS
               if key.name not in ("pretrained_path", "nproc") and key.scope != schema.BACKBONE)
    assert not {key.name for key in schema.KEYS if key.scope == schema.BACKBONE} & set(values)  # each backbone's own


def test_the_configuration_reference_is_generated_from_the_schema():
    with open(os.path.join(ROOT, "docs", "configuration.md"), encoding="utf-8") as f:
        assert f.read() == markdown(), "run: python -m recbole_basrec.config.reference > docs/configuration.md"


def test_help_lists_every_key_with_its_default(capsys):
    from recbole_basrec.cli import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = capsys.readouterr().out
    for key, value in defaults().items():
        assert f"--{key}={'~' if value is None else value}" in text
    assert help_epilog() in text


def test_scopes_match_the_models():
    assert {k.name for k in schema.keys_for("FMLPRec")} >= {"filter_causal", "tta", "epochs"}
    assert "n_pairs" not in {k.name for k in schema.keys_for("FMLPRec")}
    assert "filter_causal" not in {k.name for k in schema.keys_for("BASRecSASRec")}
    assert all(is_basrec(f"BASRec{b}") or b in OWN_BACKBONES for b in ("SASRec", "NARM", "FMLPRec"))
    assert backbone_of("BASRecNARM") == "NARM" and preset_file("SASRec", "Beauty").endswith("SASRec-Beauty.yaml")


def test_the_word_none_is_a_value_where_a_key_takes_it():
    from recbole_basrec.config.command_line import parse_overrides

    assert parse_overrides(["--tta=none", "--augmentation=None", "--pretrained_path=none", "--epochs=3"]) == {
        "tta": "none", "augmentation": "none", "pretrained_path": None, "epochs": 3}


def test_a_partial_eval_args_keeps_our_leave_one_out_split(where):
    config = Config(model="BASRecSASRec", dataset="tiny", config_dict={**where, "eval_args": {"mode": "full"}},
                    read_command_line=False)
    assert config["eval_args"]["split"] == {"LS": "valid_and_test"} and config["eval_args"]["order"] == "TO"


def test_a_home_folder_path_is_expanded(where, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    config = Config(model="BASRecSASRec", dataset="tiny", config_dict={**where, "checkpoint_dir": "~/runs"},
                    read_command_line=False)
    assert config["checkpoint_dir"] == str(tmp_path / "runs")


def test_training_keys_of_a_scoring_only_run_are_named_in_a_warning(where, caplog, tmp_path):
    from recbole_basrec.trainer.checkpoint import save_atomically

    weights = tmp_path / "w.pth"
    save_atomically({"state_dict": {}}, str(weights))
    Config(model="BASRecSASRec", dataset="tiny", config_dict={**where, "epochs": 0, "pretrained_path": str(weights),
                                                              "learning_rate": 0.5, "beta": 0.9},
           read_command_line=False)
    assert "epochs=0 only scores pretrained_path and trains nothing, so these keys have no effect: beta, " \
           "learning_rate" in caplog.text


def test_integers_with_leading_zeros_read_as_integers():
    assert parse_value("01") == 1 and parse_value("-007") == -7 and parse_value("0042") == 42
    assert parse_value("1e-3") == 0.001 and parse_value("abc") == "abc"


def test_gauc_has_no_cut_off_and_may_select_the_best_epoch(where):
    config = Config(model="BASRecSASRec", dataset="tiny", read_command_line=False,
                    config_dict={**where, "metrics": ["GAUC", "NDCG"], "valid_metric": "GAUC"})
    assert config["valid_metric"] == "GAUC"
    with pytest.raises(ValueError, match=r"valid_metric 'GAUC@10' is not computed: choose one of GAUC, NDCG@5, "):
        Config(model="BASRecSASRec", dataset="tiny", read_command_line=False,
               config_dict={**where, "metrics": ["GAUC", "NDCG"], "valid_metric": "GAUC@10"})
