"""RecBole-style entry points: one call builds, trains, validates and tests a model."""
import contextlib
import dataclasses
import logging
import os
from logging import getLogger

from recbole.data import data_preparation
from recbole.utils import init_logger, init_seed

from recbole_basrec.config import resolve_model_name
from recbole_basrec.config.configurator import load_config_files, warn_if_gpu_missing
from recbole_basrec.config.models import is_ours
from recbole_basrec.config.snapshot import DATA_DIGEST, changed_settings, settings_of
from recbole_basrec.console import CONSOLE, quiet_console
from recbole_basrec.trainer.checkpoint import DiskFull, load_checkpoint, remove_stale_temporaries
from recbole_basrec.trainer.memory import check_activation_memory
from recbole_basrec.utils import Config, create_dataset, get_model, get_trainer


class Interrupted(Exception):
    """Training was stopped with Ctrl-C; what was saved so far is named in the message."""


#: RecBole's model families other than sequential, as its messages name them.
_OTHER_FAMILIES = {"general_recommender": "general", "context_aware_recommender": "context-aware",
                   "knowledge_aware_recommender": "knowledge-aware"}


def model_name(model):
    """The registered model for ``model`` (a name, or a RecBole or recbole-basrec model class);
    a RecBole model of another family than sequential is named as such."""
    if isinstance(model, type) and model.__module__.split(".")[0] in ("recbole", "recbole_basrec"):
        model = model.__name__
    elif not isinstance(model, str):
        raise ValueError(f"model must be a model name (e.g. 'SASRec') or a RecBole model class, got {model!r}.")
    try:
        return resolve_model_name(model)
    except ValueError:
        import importlib

        for module, family in _OTHER_FAMILIES.items():
            names = {n.lower(): n for n in dir(importlib.import_module(f"recbole.model.{module}")) if n[:1].isupper()}
            if model.lower() in names:
                raise ValueError(
                    f"{names[model.lower()]} is a RecBole {family} (non-sequential) model; BASRec augments item "
                    f"sequences, so it trains sequential models only (e.g. --model=SASRec): the served ones are "
                    f"listed in served-models.md of the docs folder that recbole-basrec --help names.") from None
        raise


def _plain_values(value):
    """numpy scalars (and arrays) inside settings as the Python values they hold."""
    import numpy as np

    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain_values(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain_values(v) for k, v in value.items()}
    return value


def api_inputs(model, dataset, config_file_list, config_dict):
    """The Python API's arguments as RecBole takes them: a model class by its name, one config file
    path as a list of one, numpy values as Python values; a one-line ValueError otherwise."""
    import collections.abc

    if model is not None:
        model = model_name(model)
    if dataset is not None and not isinstance(dataset, str):
        raise ValueError(f"dataset must be a dataset name (e.g. 'ml-100k'), got {dataset!r}.")
    if isinstance(config_file_list, (str, os.PathLike)):
        config_file_list = [config_file_list]
    if config_file_list is not None:
        if not isinstance(config_file_list, (list, tuple)) or \
                not all(isinstance(f, (str, os.PathLike)) for f in config_file_list):
            raise ValueError(f"config_file_list must be a list of YAML file paths, got {config_file_list!r}.")
        config_file_list = [os.fspath(f) for f in config_file_list]
    if config_dict is not None:
        if not isinstance(config_dict, collections.abc.Mapping):
            raise ValueError(f"config_dict must be a dict of settings (e.g. {{'epochs': 10}}), got a "
                             f"{type(config_dict).__name__}: {config_dict!r:.80}.")
        odd = [key for key in config_dict if not isinstance(key, str)]
        if odd:
            raise ValueError(f"config_dict keys must be setting names (strings), got {odd[0]!r}.")
        config_dict = {key: _plain_values(value) for key, value in config_dict.items()}
    return model, dataset, config_file_list, config_dict


def settle(model, dataset, config_file_list=None, config_dict=None, default_model=None, default_dataset=None):
    """``(model, dataset)``: the ones given, else what ``config_dict`` or the config files set (as
    RecBole reads ``model:`` and ``dataset:`` there), else the defaults."""
    found = {**load_config_files(config_file_list), **(config_dict or {})}
    model = model if model is not None else found.get("model", default_model)
    dataset = dataset if dataset is not None else found.get("dataset", default_dataset)
    if model is None or dataset is None:
        missing = " and ".join(k for k, v in (("model", model), ("dataset", dataset)) if v is None)
        raise ValueError(f"no {missing} given: pass {missing} (e.g. model='SASRec', dataset='ml-100k'), or set "
                         f"them in config_dict or a config file.")
    return model, dataset


def build_config(model, dataset, config_file_list=None, config_dict=None, read_command_line=False):
    """Our ``Config`` for ``model`` (backbone or our name): our defaults beneath the user's files
    and dict, checked. ``sys.argv`` is read by RecBole only with ``read_command_line`` (our runner
    parses it itself)."""
    model, dataset, config_file_list, config_dict = api_inputs(model, dataset, config_file_list, config_dict)
    model, dataset = settle(model, dataset, config_file_list, config_dict)
    return Config(model, dataset, config_file_list, config_dict, read_command_line=read_command_line)


@dataclasses.dataclass
class Pipeline:
    """Everything a run is made of, built in RecBole's order."""

    config: Config
    dataset: object
    train_data: object
    valid_data: object
    test_data: object
    model: object
    trainer: object = None
    #: What the resumed checkpoint held (None for a fresh run).
    resumed: dict = None


def resume_settings(resume_file, model=None, dataset=None, config_file_list=None, config_dict=None):
    """``(model, dataset, config_dict)`` that continue the run of ``resume_file``: its recorded
    configuration, with what the user gives now on top where a resumed run may change it.
    Refuses a best-model checkpoint and any change of a setting the checkpoint fixes."""
    return resume_settings_and_data(resume_file, model, dataset, config_file_list, config_dict)[:3]


def check_same_data(resume_file, recorded, config):
    """Refuse to resume on other data than the run was trained on (same dataset name, other
    files or folder): the digest its snapshot recorded against the files ``config`` reads. A
    checkpoint from before digests were recorded, or data not downloaded yet, is not checked."""
    from recbole_basrec.config.snapshot import data_digest_of

    current = data_digest_of(config) if recorded else None
    if recorded and current and current != recorded:
        raise ValueError(
            f"'{resume_file}' was trained on other data than the atomic files in {config['data_path']} hold now "
            f"(sha256 {recorded[:12]} then, {current[:12]} now): resume with the data it was trained on, "
            "or start a new run without --resume.")


def resume_settings_and_data(resume_file, model, dataset, config_file_list, config_dict):
    """:func:`resume_settings` and the checkpoint's recorded data digest."""
    checkpoint = load_checkpoint(resume_file)
    snapshot = checkpoint.get("config") or {}
    if "epochs" not in checkpoint or not snapshot:
        last = str(resume_file).replace(".pth", "-last.pth")
        use = f"resume from '{last}', written after every epoch" if os.path.isfile(last) else \
            "resume from the run's '-last.pth' file, written after every epoch"
        raise ValueError(f"'{resume_file}' is a best-model checkpoint, not a run's last state: {use}.")
    saved_model, saved_dataset, settings = settings_of(snapshot)
    requested = {**load_config_files(config_file_list), **(config_dict or {})}  # as Config merges them
    if model is not None and model_name(model) != saved_model:
        requested["model"] = model_name(model)
    if dataset is not None and dataset != saved_dataset:
        requested["dataset"] = dataset
    fixed = {k: v for k, v in requested.items() if k not in ("model", "dataset")}
    changed = [k for k in ("model", "dataset") if k in requested] + changed_settings(snapshot, fixed)
    if changed:
        shown = ", ".join(f"{k}={requested[k]!r} (checkpoint: {snapshot.get(k)!r})" for k in changed)
        raise ValueError(
            f"'{resume_file}' was trained with other settings than given now: {shown}; "
            f"drop them to resume, or start a new run without --resume."
        )
    # Where and on what it ran is the user's again: the GPU keys only if they set them then or now,
    # and the run's files where its -last.pth is now (a moved folder stays whole).
    for key in ("gpu_id", "use_gpu"):
        if key not in snapshot.get("user_keys", ()):
            settings.pop(key, None)
    settings["checkpoint_dir"] = os.path.dirname(os.path.abspath(resume_file))
    settings.update({k: v for k, v in requested.items() if k not in ("model", "dataset")})
    return saved_model, saved_dataset, settings, snapshot.get(DATA_DIGEST)


def build(model=None, dataset=None, config_file_list=None, config_dict=None, resume_file=None, data=None,
          trainer=True, check_effects=True):
    """Config, data, model and trainer of one run, seeded, before any training, as RecBole's
    ``run_recbole`` builds them. Every input is checked before RecBole logs anything.

    Args:
        model (str): a backbone (``SASRec``, ``GRU4Rec``, ``FMLPRec``, or a stock RecBole model the
            generic path serves) or one of our model names (``BASRecSASRec``, ...).
        dataset (str): RecBole dataset name, read from ``data_path``.
        config_file_list (list of str): YAML files, over our defaults.
        config_dict (dict): overrides, over the files.
        resume_file (str): a run's ``-last.pth`` to continue: model, dataset and settings come
            from it (see :func:`resume_settings`); otherwise ``pretrained_path``, when set, is
            loaded now so a checkpoint that does not fit fails before training.
        data (Pipeline): an earlier pipeline whose dataset and loaders are reused (same data
            settings), instead of loading them again.
        trainer (bool): also build the trainer.

    Returns:
        Pipeline: config, dataset, the three loaders, model and trainer (None without ``trainer``).
    """
    model, dataset, config_file_list, config_dict = api_inputs(model, dataset, config_file_list, config_dict)
    recorded_data = None
    if resume_file:
        model, dataset, config_dict, recorded_data = resume_settings_and_data(
            resume_file, model, dataset, config_file_list, config_dict)
        config_file_list = None
    from recbole_basrec.config.configurator import effect_checks_off

    # A resumed run's and a checkpoint's settings hold every key; their effect was checked at the start.
    with effect_checks_off() if resume_file or not check_effects else contextlib.nullcontext():
        config = build_config(model, dataset, config_file_list, config_dict)
    if resume_file:
        check_same_data(resume_file, recorded_data, config)
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
            # The reused loaders' batch transform belongs to the earlier config; the new one's also
            # writes keys the model reads into this config (BERT4Rec's mask_itemseq: MASK_ITEM_SEQ, ...).
            from recbole.data.transform import construct_transform

            transform = construct_transform(config)
            for loader in (train_data, valid_data, test_data):
                loader.transform = transform
        init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
        net = get_model(config["model"])(config, train_data._dataset).to(config["device"])
        topk = [config["topk"]] if isinstance(config["topk"], int) else list(config["topk"])
        if max(topk) > dataset.item_num - 1:
            raise ValueError(f"topk {max(topk)} is more than the {dataset.item_num - 1} items of '{config['dataset']}': "
                             f"every cut-off must be at most the number of items ranked.")
        if trainer:
            rows = min(config["train_batch_size"], len(train_data.dataset))
            check_activation_memory(config, net, rows, min(config["eval_batch_size"], dataset.user_num))
        pipeline = Pipeline(config, dataset, train_data, valid_data, test_data, net)
        if trainer:
            pipeline.trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)
            remove_stale_temporaries(config["checkpoint_dir"])
            if resume_file:
                pipeline.resumed = pipeline.trainer.resume_checkpoint(resume_file)
            elif config["pretrained_path"]:
                pipeline.trainer.load_weights(config["pretrained_path"])  # fails early on a checkpoint that does not fit
    finally:
        logger.setLevel(level)
    shown = CONSOLE if config["show_config"] else None  # the configuration dump: the log file's, unless asked
    for part in (config, dataset, net):
        logger.info(part, extra=shown)
    if pipeline.resumed is not None:
        logger.info(pipeline.trainer.resume_line(), extra=CONSOLE)
    return pipeline


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
        resume_file (str): continue an interrupted run from its ``-last.pth`` checkpoint; model,
            dataset and settings come from it (``epochs`` may be changed: the stage then runs
            that many epochs in all).

    Returns:
        dict: RecBole's result dict (``best_valid_score``, ``valid_score_bigger``,
        ``best_valid_result``, ``test_result``) plus ``saved_model_file`` and ``valid_history``.
    """
    if callback_fn is not None and not callable(callback_fn):
        raise ValueError(f"callback_fn must be a function of (epoch_idx, valid_score), got {callback_fn!r:.60}.")
    pipeline = build(model, dataset, config_file_list, config_dict, resume_file)
    config, trainer = pipeline.config, pipeline.trainer
    logger = getLogger()
    try:
        best_valid_score, best_valid_result = trainer.fit(
            pipeline.train_data, pipeline.valid_data, saved=saved, show_progress=config["show_progress"],
            callback_fn=callback_fn,
        )
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: {saved_files(trainer)}") from None
    except DiskFull as full:
        raise DiskFull(f"{full}; the last complete checkpoints are kept ({saved_files(trainer)} "
                       "--checkpoint_dir=<a folder with space>)") from None
    try:
        test_result = trainer.evaluate(pipeline.test_data, load_best_model=saved, show_progress=config["show_progress"])
    except KeyboardInterrupt:  # training is done: name the model to test, not a run to resume
        best = trainer.saved_model_file
        if saved and os.path.isfile(best):
            raise Interrupted(f"interrupted during the final test, after training: best model: {best}; test it with "
                              f"the run's options and --pretrained_path={best} --epochs=0 (in place of its "
                              "--epochs)") from None
        raise Interrupted(f"interrupted during the final test: {saved_files(trainer)}") from None
    logger.info(f"best valid : {best_valid_result}")
    logger.info(f"test result: {test_result}")
    if not config["single_spec"]:  # DDP: this process's part is done (RecBole's run_recbole does the same)
        import torch.distributed as dist

        dist.destroy_process_group()
    plain = lambda metrics: None if metrics is None else {k: float(v) for k, v in metrics.items()}  # noqa: E731
    return {
        "best_valid_score": float(best_valid_score),
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": plain(best_valid_result),
        "test_result": plain(test_result),
        "saved_model_file": trainer.saved_model_file if saved else None,
        "valid_history": trainer.valid_history,
    }


def is_our_checkpoint(checkpoint):
    snapshot = checkpoint.get("config") if isinstance(checkpoint, dict) else None
    return isinstance(snapshot, dict) and is_ours(snapshot.get("model"))


def load_data_and_model(model_file, config_file_list=None, config_dict=None):
    """Rebuild config, model, dataset and data loaders from a checkpoint of ours (read with
    ``weights_only=True``), in the order of RecBole's ``load_data_and_model``."""
    checkpoint = load_checkpoint(model_file)
    if not is_our_checkpoint(checkpoint):
        raise ValueError(f"Checkpoint '{model_file}' was not saved by recbole-basrec (it holds no configuration of ours).")
    model_name, dataset_name, settings = settings_of(checkpoint["config"])
    settings.update(config_dict or {})
    pipeline = build(model_name, dataset_name, config_file_list, settings, trainer=False, check_effects=False)
    pipeline.model.load_state_dict(checkpoint["state_dict"])
    return (pipeline.config, pipeline.model, pipeline.dataset, pipeline.train_data, pipeline.valid_data,
            pipeline.test_data)
