"""Our names resolve inside stock RecBole after ``import recbole_basrec``."""
import importlib

import pytest
from recbole.quick_start import run_recbole
from recbole.utils import ModelType, get_model, get_trainer

import recbole_basrec
from recbole_basrec.data.dataset import BASRecDataset
from recbole_basrec.registry import register
from recbole_basrec.trainer import BASRecTrainer

NAMES = ["BASRecSASRec", "BASRecGRU4Rec", "BASRecFMLPRec", "FMLPRec"]


@pytest.mark.parametrize("name", NAMES)
def test_get_model_get_trainer_and_dataset_lookup(name):
    assert get_model(name) is getattr(recbole_basrec, name)
    assert get_trainer(ModelType.SEQUENTIAL, name) is BASRecTrainer
    assert getattr(importlib.import_module("recbole.data.dataset"), f"{name}Dataset") is BASRecDataset


def test_registering_twice_is_harmless():
    register()
    importlib.reload(recbole_basrec)
    assert get_model("BASRecSASRec") is recbole_basrec.BASRecSASRec
    assert get_model("SASRec").__module__ == "recbole.model.sequential_recommender.sasrec"


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
