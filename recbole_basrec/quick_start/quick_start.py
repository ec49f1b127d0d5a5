"""RecBole-style entry points: one call trains, validates and tests a model."""
import logging
import os
from logging import getLogger
from typing import NamedTuple

from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, get_trainer, init_logger, init_seed

from recbole_basrec.config import (
    complete_config,
    default_config_files,
    load_yaml,
    resolve_model_name,
    warn_if_gpu_missing,
)
from recbole_basrec.console import CONSOLE, quiet_console


class Interrupted(Exception):
    """Training was stopped with Ctrl-C; what was saved so far is named in the message."""


def _check_config_files(files):
    import yaml

    for path in files:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Config file '{path}' not found; check the path given to --config_files.")
        try:
            load_yaml(path)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(error, "problem", None) or type(error).__name__
            raise ValueError(f"Config file '{path}' is not valid YAML{where} ({problem}); fix it there.") from None


def build_config(model, dataset, config_file_list=None, config_dict=None):
    """A RecBole ``Config`` for ``model`` (backbone or our name) with our defaults underneath
    the user's files, dict and command line."""
    model_name = resolve_model_name(model)
    _check_config_files(list(config_file_list or []))
    files = default_config_files(model_name, dataset) + list(config_file_list or [])
    config = Config(model=model_name, dataset=dataset, config_file_list=files, config_dict=config_dict)
    return complete_config(config)


class Pipeline(NamedTuple):
    """What :func:`build` returns: everything a RecBole run needs, ready to ``fit``."""

    config: Config
    dataset: object
    train_data: object
    valid_data: object
    test_data: object
    model: object
    trainer: object


def build(model, dataset, config_file_list=None, config_dict=None, resume_file=None, data=None):
    """Config, data, model and trainer of one run, seeded, before any training.

    Args:
        model (str): a backbone (``SASRec``, ``GRU4Rec``, ``FMLPRec``, or a stock RecBole model the
            generic path serves) or one of our model names (``BASRecSASRec``, ...).
        dataset (str): RecBole dataset name, read from ``data_path``.
        config_file_list (list of str): YAML files, over our defaults.
        config_dict (dict): overrides, over the files.
        resume_file (str): a checkpoint to continue from (``-last.pth``: the exact state);
            otherwise ``pretrained_path``, when set, is loaded now so a checkpoint that does not
            fit fails before training.
        data (Pipeline): an earlier pipeline whose dataset and loaders are reused (same data
            settings), instead of loading them again.

    Returns:
        Pipeline: ``(config, dataset, train_data, valid_data, test_data, model, trainer)``.
    """
    config = build_config(model, dataset, config_file_list, config_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    quiet_console()
    logger = getLogger()
    warn_if_gpu_missing(config)

    # RecBole's start-up lines wait until every input is checked: a bad input's one-line error
    # is then all the log shows.
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        if data is None:
            dataset = create_dataset(config)
            train_data, valid_data, test_data = data_preparation(config, dataset)
        else:
            dataset, train_data, valid_data, test_data = data.dataset, data.train_data, data.valid_data, data.test_data
        init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
        net = get_model(config["model"])(config, train_data._dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)
        if resume_file:
            trainer.resume_checkpoint(resume_file)
        elif config["pretrained_path"]:
            trainer.load_weights(config["pretrained_path"])
    finally:
        logger.setLevel(level)
    shown = CONSOLE if config["show_config"] else None  # the configuration dump: the log file's, unless asked
    for part in (config, dataset, net):
        logger.info(part, extra=shown)
    return Pipeline(config, dataset, train_data, valid_data, test_data, net, trainer)


def saved_files(trainer):
    """``"best checkpoint so far: PATH; continue with --resume=PATH"``: what an interrupted run left."""
    best = trainer.saved_model_file if os.path.isfile(trainer.saved_model_file) else "none yet"
    last = getattr(trainer, "last_checkpoint_file", None)
    resume = f"; continue with --resume={last}" if last and os.path.isfile(last) else ""
    return f"best checkpoint so far: {best}{resume}"


def run_recbole_basrec(
    model=None, dataset=None, config_file_list=None, config_dict=None, saved=True, callback_fn=None,
    resume_file=None,
):
    """Train ``model`` on ``dataset`` with BASRec (unless ``basrec: False``), then test.

    Args:
        model (str): a backbone (``SASRec``, ``GRU4Rec``, ``FMLPRec``, or a stock RecBole model the
            generic path serves) or one of our model names.
        dataset (str): RecBole dataset name, read from ``data_path``.
        config_file_list (list of str): YAML files, over our defaults.
        config_dict (dict): overrides, over the files.
        saved (bool): save the best checkpoint and test it (else test the final weights).
        callback_fn (callable): called as ``callback_fn(epoch_idx, valid_score)`` after each validation.
        resume_file (str): continue an interrupted run from its ``-last.pth`` checkpoint.

    Returns:
        dict: RecBole's result dict (``best_valid_score``, ``valid_score_bigger``,
        ``best_valid_result``, ``test_result``) plus ``saved_model_file`` and ``valid_history``.
    """
    run = build(model, dataset, config_file_list, config_dict, resume_file=resume_file)
    config, trainer, logger = run.config, run.trainer, getLogger()
    try:
        best_valid_score, best_valid_result = trainer.fit(
            run.train_data, run.valid_data, saved=saved, show_progress=config["show_progress"],
            callback_fn=callback_fn,
        )
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: {saved_files(trainer)}") from None
    test_result = trainer.evaluate(run.test_data, load_best_model=saved, show_progress=config["show_progress"])
    logger.info(f"best valid : {best_valid_result}")
    logger.info(f"test result: {test_result}")
    return {
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
        "saved_model_file": trainer.saved_model_file if saved else None,
        "valid_history": trainer.valid_history,
    }


def load_data_and_model(model_file, config_file_list=None, config_dict=None):
    """Rebuild config, model, data and loaders from a checkpoint of our trainer (``weights_only`` load):
    ``config, model, dataset, train_data, valid_data, test_data``, as RecBole's function of that name."""
    import torch

    checkpoint = torch.load(model_file, map_location="cpu", weights_only=True)
    settings = dict(checkpoint["config"])
    model_name, dataset_name = settings.pop("model"), settings.pop("dataset")
    settings.update(config_dict or {})
    settings["pretrained_path"] = None  # the weights are this checkpoint's
    run = build(model_name, dataset_name, config_file_list, settings)
    run.trainer.load_weights(model_file)
    return run.config, run.model, run.dataset, run.train_data, run.valid_data, run.test_data
