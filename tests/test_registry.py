"""Our lookups (``recbole_basrec.utils``) and the drop-in: stock ``recbole.quick_start`` trains our
models after ``import recbole_basrec``."""
import importlib

import pytest
from recbole.quick_start import run_recbole
from recbole.trainer import Trainer
from recbole.utils import ModelType

import recbole_basrec
from recbole_basrec.data.dataset import BASRecDataset
from recbole_basrec.trainer import BASRecTrainer
from recbole_basrec.utils import Config, create_dataset, get_model, get_trainer

NAMES = ["BASRecSASRec", "BASRecGRU4Rec", "BASRecFMLPRec", "FMLPRec"]


@pytest.mark.parametrize("name", NAMES)
def test_our_lookups_answer_for_our_names(name):
    assert get_model(name) is getattr(recbole_basrec, name)
    assert get_trainer(ModelType.SEQUENTIAL, name) is BASRecTrainer


def test_our_lookups_fall_back_to_recboles(tiny_data_path):
    assert get_model("SASRec").__module__ == "recbole.model.sequential_recommender.sasrec"
    assert get_trainer(ModelType.SEQUENTIAL, "SASRec") is Trainer
    config = Config("SASRec", "tiny", config_dict={"data_path": tiny_data_path, "state": "ERROR", "train_neg_sample_args": None},
                    read_command_line=False)
    assert type(create_dataset(config)).__name__ == "SequentialDataset"
    ours = Config("BASRecSASRec", "tiny", config_dict={"data_path": tiny_data_path, "state": "ERROR"},
                  read_command_line=False)
    assert type(create_dataset(ours)) is BASRecDataset


def test_nothing_of_recbole_names_our_models():
    """No module of ours poses as RecBole's: RecBole's own lookup does not know our names."""
    from recbole.utils import get_model as recbole_get_model

    with pytest.raises((ValueError, ImportError)):  # ImportError: its exlib package needs lightgbm to look
        recbole_get_model("BASRecSASRec")
    assert not hasattr(importlib.import_module("recbole.trainer"), "BASRecSASRecTrainer")
    assert not hasattr(importlib.import_module("recbole.data.dataset"), "BASRecSASRecDataset")


@pytest.mark.parametrize("name", NAMES)
def test_stock_run_recbole_trains_our_models_with_our_defaults(name, tiny_data_path, tmp_path):
    result = run_recbole(
        model=name,
        dataset="tiny",
        config_dict={
            "data_path": tiny_data_path,
            "checkpoint_dir": str(tmp_path),
            **({"stage1_epochs": 1} if name.startswith("BASRec") else {}),  # FMLPRec alone has no stages
            "epochs": 1,
            "MAX_ITEM_LIST_LENGTH": 10,
            "state": "ERROR",
            "use_gpu": False,
        },
    )
    # Hit/NDCG@{5,10,20} are our defaults (RecBole's are Recall/MRR/... @10)
    assert set(result["test_result"]) == {f"{m}@{k}" for m in ("hit", "ndcg") for k in (5, 10, 20)}
    assert result["test_result"]["ndcg@10"] > 0  # the targets are ranked, not masked away


def test_stock_run_recbole_takes_the_augmentation_choice(tiny_data_path, tmp_path):
    result = run_recbole(model="BASRecGRU4Rec", dataset="tiny", config_dict={
        "data_path": tiny_data_path, "checkpoint_dir": str(tmp_path), "stage1_epochs": 0, "epochs": 1,
        "MAX_ITEM_LIST_LENGTH": 10, "state": "ERROR", "use_gpu": False, "augmentation": "cmrsi"})
    assert result["test_result"]["ndcg@10"] > 0
    with pytest.raises(ValueError, match="augmentation must be one of"):
        run_recbole(model="BASRecGRU4Rec", dataset="tiny", config_dict={
            "data_path": tiny_data_path, "checkpoint_dir": str(tmp_path), "augmentation": "CMR", "state": "ERROR"})


def test_stock_run_recbole_takes_our_names_in_any_case(tiny_data_path, tmp_path):
    result = run_recbole(model="basrecsasrec", dataset="tiny", config_dict={
        "data_path": tiny_data_path, "checkpoint_dir": str(tmp_path), "stage1_epochs": 0, "epochs": 1,
        "MAX_ITEM_LIST_LENGTH": 10, "state": "ERROR", "use_gpu": False})
    assert result["test_result"]["ndcg@10"] > 0


def test_importing_us_after_recbole_still_serves_our_models(tiny_data_path, tmp_path):
    """The patches hook RecBole's modules when they are imported, or at once when they already are."""
    import subprocess
    import sys

    code = ("from recbole.quick_start import run_recbole\nimport recbole_basrec\n"
            f"r = run_recbole(model='BASRecSASRec', dataset='tiny', config_dict={{'data_path': {tiny_data_path!r}, "
            f"'checkpoint_dir': {str(tmp_path)!r}, 'stage1_epochs': 0, 'epochs': 1, 'MAX_ITEM_LIST_LENGTH': 10, "
            "'state': 'ERROR'})\nprint(r['test_result']['ndcg@10'] > 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("True"), proc.stderr[-2000:]


def test_an_unknown_name_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=r"^`model_name` \[Nope\] is not the name of an existing model"):
        get_model("Nope")
