"""Model names, default hyper-parameters from ``properties/`` and their validation.

RecBole reads a model's defaults only from its own package folder. Our defaults live in
``properties/``: the runner passes them as config files, and :func:`complete_config` fills them
into a stock :class:`recbole.config.Config` when a pipeline names our models directly.
"""
import functools
import os
import re
import sys
from logging import getLogger

import yaml

import recbole
from recbole.utils import InputType

#: Backbones with a hand-written adapter (per-position outputs, length-grouped encoding).
HANDWRITTEN = {
    "SASRec": "BASRecSASRec",
    "GRU4Rec": "BASRecGRU4Rec",
    "FMLPRec": "BASRecFMLPRec",
}
#: Our plain models (RecBole 1.2.1 has no FMLP-Rec).
PLAIN_MODELS = ("FMLPRec",)


@functools.lru_cache(maxsize=None)
def stock_sequential_models():
    """Name -> class of every stock RecBole sequential model."""
    from recbole.model import sequential_recommender as stock
    from recbole.model.abstract_recommender import SequentialRecommender

    return {
        name: cls for name, cls in sorted(vars(stock).items())
        if isinstance(cls, type) and issubclass(cls, SequentialRecommender) and cls is not SequentialRecommender
    }


@functools.lru_cache(maxsize=None)
def backbones():
    """Backbone name -> the BASRec model built on it: hand-written adapters, and the generic
    path (:mod:`recbole_basrec.model.generic`) for every other stock sequential model."""
    mapping = {name: f"BASRec{name}" for name in stock_sequential_models()}
    mapping.update(HANDWRITTEN)
    return mapping


def basrec_models():
    return tuple(backbones().values())


def is_generic(model_name):
    """Whether ``model_name`` is BASRec on a stock model through the generic path."""
    return model_name in basrec_models() and model_name not in HANDWRITTEN.values()


def our_models():
    """Every model name this package registers with RecBole."""
    return basrec_models() + PLAIN_MODELS


TRAIN_MODES = ("prefix", "sequence")
SEQUENCE_WINDOWS = ("all", "last")
SIMILARITY_MODELS = ("ItemCF_IUF", "ItemCF", "Random")
LOSS_TYPES = ("CE", "BPR", "BCE")
ALIGNS = ("recent", "first")
SSA_WEIGHTINGS = ("batch", "sequence")
SIMILARITY_SOURCES = ("inputs", "train")


def properties_dir():
    """The ``properties/`` folder: beside the package in a checkout or editable install,
    under ``<prefix>/share/recbole-basrec`` after a plain ``pip install``."""
    candidates = [
        os.environ.get("RECBOLE_BASREC_PROPERTIES", ""),
        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "properties"),
        os.path.join(sys.prefix, "share", "recbole-basrec", "properties"),
    ]
    for path in candidates:
        if path and os.path.isfile(os.path.join(path, "overall.yaml")):
            return path
    raise FileNotFoundError(
        "recbole-basrec cannot find its properties/ folder; reinstall with `pip install -e .` "
        "or set RECBOLE_BASREC_PROPERTIES to the folder holding overall.yaml"
    )


def resolve_model_name(name):
    """Map a runner ``--model`` (backbone or our model name, any case) to a registered model."""
    lookup = {n.lower(): n for n in our_models()}
    lookup.update({b.lower(): m for b, m in backbones().items()})
    try:
        return lookup[str(name).lower()]
    except KeyError:
        raise ValueError(
            f"Unknown model '{name}'. Valid models: a RecBole sequential model name (e.g. SASRec, GRU4Rec, NARM), "
            f"FMLPRec, or BASRec<name>."
        ) from None


def backbone_of(model_name):
    """The backbone a registered model is built on (``FMLPRec`` for itself)."""
    for backbone, model in backbones().items():
        if model == model_name:
            return backbone
    return model_name


def default_config_files(model_name, dataset=None):
    """YAML files holding ``model_name``'s defaults (and ``dataset``'s, if we ship any),
    lowest priority first."""
    backbone = backbone_of(model_name)
    props = properties_dir()
    stock = os.path.join(os.path.dirname(recbole.__file__), "properties", "model", f"{backbone}.yaml")
    files = [stock if os.path.isfile(stock) else os.path.join(props, "model", f"{backbone}.yaml")]
    files.append(os.path.join(props, "overall.yaml"))
    if model_name in basrec_models():
        files.append(os.path.join(props, "model", "BASRec.yaml"))
    own = os.path.join(props, "model", f"{model_name}.yaml")
    if model_name != backbone and os.path.isfile(own):
        files.append(own)
    if is_generic(model_name):
        files.append(os.path.join(props, "model", "BASRec-generic.yaml"))
    preset = preset_file(backbone, dataset)
    if preset:
        files.append(preset)
    data_file = os.path.join(props, "dataset", f"{dataset}.yaml")
    if dataset and os.path.isfile(data_file):
        files.append(data_file)
    return files


def preset_file(backbone, dataset):
    """The authors' published settings for ``backbone`` on ``dataset``, if we ship them
    (``properties/preset/<backbone>-<dataset>.yaml``), else None."""
    if not dataset:
        return None
    path = os.path.join(properties_dir(), "preset", f"{backbone}-{dataset}.yaml")
    return path if os.path.isfile(path) else None


def _yaml_loader():
    # RecBole's own convention: accept 1e-12 style floats, which PyYAML reads as strings.
    loader = yaml.FullLoader
    loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
            |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
            |\.[0-9_]+(?:[eE][-+][0-9]+)?
            |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
            re.X,
        ),
        list("-+0123456789."),
    )
    return loader


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f.read(), Loader=_yaml_loader()) or {}


def default_config_dict(model_name, dataset=None):
    """``model_name``'s defaults merged into one dict (later files win)."""
    merged = {}
    for path in default_config_files(model_name, dataset):
        merged.update(load_yaml(path))
    return merged


def complete_config(config):
    """Give a stock RecBole ``Config`` for one of our models the defaults our runner uses.

    Only keys the user did not set are filled; values RecBole derives from them
    (input type, negative sampling) are then made consistent. Idempotent.
    """
    if getattr(config, "_basrec_completed", False) or config["model"] not in our_models():
        return config
    if is_generic(config["model"]):
        from recbole_basrec.model.generic import check_servable

        check_servable(stock_sequential_models()[backbone_of(config["model"])])
    user_keys = set(config.external_config_dict)
    for key, value in default_config_dict(config["model"], config["dataset"]).items():
        if key not in user_keys:
            config[key] = value
    if config["dataset"] == "ml-100k":
        _prefer_local_ml100k(config)
    _set_sampling(config)
    validate_config(config)
    config._basrec_completed = True
    return config


def _prefer_local_ml100k(config):
    # RecBole always points ml-100k at its bundled copy; a copy under data_path wins.
    root = config.external_config_dict.get("data_path", "dataset/")
    local = os.path.join(root, "ml-100k")
    if os.path.isfile(os.path.join(local, "ml-100k.inter")):
        config["data_path"] = local


def _set_sampling(config):
    """Input type and RecBole-side negative sampling that match ``loss_type`` and ``train_mode``."""
    loss_type = config["loss_type"]
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}, got '{loss_type}'.")
    config["MODEL_INPUT_TYPE"] = InputType.POINTWISE if loss_type == "CE" else InputType.PAIRWISE
    none = {"distribution": "none", "sample_num": "none", "alpha": "none", "dynamic": False, "candidate_num": 0}
    uniform = {"distribution": "uniform", "sample_num": 1, "alpha": 1.0, "dynamic": False, "candidate_num": 0}
    # CE needs no negatives; sequence mode samples one per position on the model's device.
    if loss_type == "CE" or config["train_mode"] == "sequence":
        config["train_neg_sample_args"] = none
    elif config["train_neg_sample_args"]["distribution"] == "none":
        config["train_neg_sample_args"] = uniform


def validate_config(config):
    """Fail at start-up, with the fix in the message, on values BASRec cannot train with."""

    def fail(message):
        raise ValueError(f"Invalid BASRec config: {message}")

    for key in ("eval_mask_history", "exact_valid_score"):
        if not isinstance(config[key], bool):
            fail(f"{key} must be True or False, got {config[key]!r}.")
    if isinstance(config["valid_start_epoch"], bool) or not isinstance(config["valid_start_epoch"], int) \
            or config["valid_start_epoch"] < 0:
        fail(f"valid_start_epoch must be an integer >= 0, got {config['valid_start_epoch']!r}.")
    validate_tta(config, fail)
    if config["model"] not in basrec_models():
        return

    def integer(key, low=0):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            fail(f"{key} must be an integer >= {low}, got {value!r}.")

    def number(key):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(f"{key} must be a number, got {value!r}.")
        return float(value)

    if not isinstance(config["basrec"], bool):
        fail(f"basrec must be True or False, got {config['basrec']!r}.")
    integer("n_pairs")
    integer("n_whole_level")
    integer("stage1_epochs")
    if number("beta") <= 0:
        fail(f"beta must be > 0 (Beta(beta, beta) is undefined otherwise), got {config['beta']}.")
    rate_min, rate_max = number("rate_min"), number("rate_max")
    if not 0 < rate_min <= 1 or not 0 < rate_max <= 1:
        fail(f"rate_min and rate_max must lie in (0, 1], got {rate_min} and {rate_max}.")
    if rate_min > rate_max:
        fail(f"rate_min ({rate_min}) > rate_max ({rate_max}); swap them.")
    for key in ("rec_weight", "aml_weight", "wml_weight"):
        if number(key) < 0:
            fail(f"{key} must be >= 0, got {config[key]}.")
    if config["train_mode"] not in TRAIN_MODES:
        fail(f"train_mode must be one of {', '.join(TRAIN_MODES)}, got {config['train_mode']!r}.")
    if is_generic(config["model"]) and config["train_mode"] != "prefix":
        fail(f"{config['model']} is served by the generic path, which trains one target per prefix: "
             f"set train_mode=prefix (train_mode=sequence needs a hand-written adapter: SASRec, GRU4Rec, FMLPRec).")
    if config["sequence_windows"] not in SEQUENCE_WINDOWS:
        fail(f"sequence_windows must be one of {', '.join(SEQUENCE_WINDOWS)}, got {config['sequence_windows']!r}.")
    for key, choices in (("align", ALIGNS), ("ssa_weighting", SSA_WEIGHTINGS),
                         ("similarity_source", SIMILARITY_SOURCES)):
        if config[key] not in choices:
            fail(f"{key} must be one of {', '.join(choices)}, got {config[key]!r}.")
    if not isinstance(config["reorder_keep_last"], bool):
        fail(f"reorder_keep_last must be True or False, got {config['reorder_keep_last']!r}.")
    if config["similarity_model"] not in SIMILARITY_MODELS:
        fail(f"similarity_model must be one of {', '.join(SIMILARITY_MODELS)}, got {config['similarity_model']!r}.")
    path = config["pretrained_path"]
    if path is not None and not os.path.isfile(str(path)):
        fail(f"pretrained_path '{path}' does not exist; point it at a stage-1 checkpoint (ours or the authors').")
    if config["MAX_ITEM_LIST_LENGTH"] < 2:
        fail("MAX_ITEM_LIST_LENGTH must be >= 2.")


def fill_tta_defaults(config):
    """TTA keys a stock model's config lacks, from ``overall.yaml`` (so our trainer can test any model)."""
    defaults = load_yaml(os.path.join(properties_dir(), "overall.yaml"))
    for key in ("tta", "tta_views", "tta_output_views", "tta_noise", "tta_mask_rate", "tta_keep_original"):
        if config[key] is None:
            config[key] = defaults[key]


def validate_tta(config, fail):
    from recbole_basrec.trainer.tta import TTA_MODES

    if config["tta"] not in TTA_MODES:
        fail(f"tta must be one of {', '.join(TTA_MODES)}, got {config['tta']!r}.")
    views = config["tta_views"]
    if isinstance(views, bool) or not isinstance(views, int) or views < 1:
        fail(f"tta_views must be an integer >= 1, got {views!r}.")
    output_views = config["tta_output_views"]
    if isinstance(output_views, bool) or not isinstance(output_views, int) or output_views < 0:
        fail(f"tta_output_views must be an integer >= 0, got {output_views!r}.")
    noise = config["tta_noise"]
    if not isinstance(noise, (list, tuple)) or len(noise) != 2 \
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in noise) or noise[0] > noise[1]:
        fail(f"tta_noise must be [low, high] with low <= high, e.g. [0.5, 1.0]; got {noise!r}.")
    rate = config["tta_mask_rate"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        fail(f"tta_mask_rate must lie in [0, 1), got {rate!r}.")
    if not isinstance(config["tta_keep_original"], bool):
        fail(f"tta_keep_original must be True or False, got {config['tta_keep_original']!r}.")


def warn_if_gpu_missing(config):
    """RecBole silently falls back to CPU; say so when the user asked for a GPU."""
    import torch

    asked = "gpu_id" in config.external_config_dict or config.external_config_dict.get("use_gpu") is True
    if config["use_gpu"] and asked and not torch.cuda.is_available():
        getLogger().warning("GPU requested but no CUDA device is available: running on CPU.")
