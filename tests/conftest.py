"""Shared fixtures: a tiny, learnable sequential dataset written as RecBole atomic files."""

import sys

import pytest

from helpers import write_tiny_dataset


@pytest.fixture(scope="session", autouse=True)
def _no_command_line():
    """RecBole's Config reads ``sys.argv``; pytest's own arguments are not configuration."""
    saved, sys.argv = sys.argv, [sys.argv[0]]
    yield
    sys.argv = saved


@pytest.fixture(scope="session")
def tiny_data_path(tmp_path_factory):
    """RecBole ``data_path`` holding the ``tiny`` dataset."""
    root = tmp_path_factory.mktemp("data")
    write_tiny_dataset(str(root))
    return str(root)


@pytest.fixture
def tiny_config_dict(tiny_data_path, tmp_path):
    """Config overrides for a fast CPU run on the tiny dataset."""
    return {
        "data_path": tiny_data_path,
        "checkpoint_dir": str(tmp_path / "saved"),
        "epochs": 2,
        "stage1_epochs": 0,
        "train_batch_size": 32,
        "eval_batch_size": 64,
        "MAX_ITEM_LIST_LENGTH": 10,
        "hidden_size": 16,
        "inner_size": 32,
        "embedding_size": 16,
        "n_layers": 1,
        "n_heads": 1,
        "use_gpu": False,
        "show_progress": False,
        "state": "ERROR",
        "seed": 0,
        # one set of sizes for every backbone: keys another backbone reads pass with a warning
        "strict_keys": False,
    }


@pytest.fixture
def tiny_setup(tiny_config_dict):
    """``build(backbone, **overrides)`` -> config, dataset, model, trainer, (train, valid, test)
    on the tiny dataset, seeded."""
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    import recbole_basrec  # noqa: F401
    from recbole_basrec.quick_start.quick_start import build_config

    def build(backbone="SASRec", **overrides):
        config = build_config(backbone, "tiny", config_dict={**tiny_config_dict, **overrides})
        init_seed(0, True)
        dataset = create_dataset(config)
        splits = data_preparation(config, dataset)
        init_seed(0, True)
        model = get_model(config["model"])(config, splits[0]._dataset)
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        return config, dataset, model, trainer, splits

    return build
