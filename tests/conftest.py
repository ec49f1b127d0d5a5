"""Fixtures: the tiny dataset (written once per session) and its fast CPU config."""
import sys

import pytest

from helpers import TINY_ITEMS, TINY_USERS, build_tiny, read_raw_sequences, tiny_config, write_tiny_dataset  # noqa: F401


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
    return tiny_config(tiny_data_path, tmp_path / "saved")


@pytest.fixture
def tiny_setup(tiny_config_dict):
    """``build(backbone, **overrides)`` -> config, dataset, model, trainer, (train, valid, test)
    on the tiny dataset, seeded."""

    def build(backbone="SASRec", **overrides):
        run = build_tiny(tiny_config_dict, backbone, **overrides)
        return run.config, run.dataset, run.model, run.trainer, (run.train_data, run.valid_data, run.test_data)

    return build
