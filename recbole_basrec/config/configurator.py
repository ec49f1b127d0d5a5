"""How our ``Config`` (:class:`recbole_basrec.utils.Config`) merges, checks and derives our
models' settings:

* the files of ``properties/`` are loaded as internal defaults, beneath the user's config files,
  ``config_dict`` and command line (RecBole's own precedence);
* every key the user gave is checked before anything else happens: unknown keys (with the
  closest known one), every declared key's type and range (:mod:`.schema`), NaN or infinite
  numbers anywhere, and combinations that cannot mean what they say;
* the input type and RecBole's negative sampling are derived from ``loss_type`` and
  ``train_mode``.
"""
import contextlib
import contextvars
import difflib
import math
import os
from logging import getLogger

from recbole.utils import InputType
from recbole.utils import argument_list

from recbole_basrec.config import schema
from recbole_basrec.config.files import default_config_files, load_yaml, unwritable
from recbole_basrec.config.models import (
    HANDWRITTEN,
    SEQUENCE_MODE,
    backbone_of,
    check_servable,
    is_basrec,
    is_generic,
    is_ours,
    stock_sequential_models,
    trains_sequence_mode,
)

#: Keys set by RecBole itself from others; a user setting them would be overwritten.
RECBOLE_DERIVED = schema.living(schema.DERIVED)
#: Common names of other tools for RecBole's keys, for "did you mean".
ALIASES = {
    "lr": "learning_rate", "batch_size": "train_batch_size", "epoch": "epochs", "n_epochs": "epochs",
    "max_len": "MAX_ITEM_LIST_LENGTH", "max_seq_length": "MAX_ITEM_LIST_LENGTH", "patience": "stopping_step",
    "dropout": "hidden_dropout_prob", "weight_decay_rate": "weight_decay", "gpu": "gpu_id",
}

def load_config_files(file_list):
    """The user's YAML files merged in order; each must be a mapping without repeated keys."""
    merged = {}
    for path in file_list or ():
        merged.update(load_yaml(path))
    return merged


def load_our_defaults(config, model, dataset):
    """Our ``properties/`` files of ``model`` and ``dataset`` as internal defaults of ``config``."""
    if is_generic(model):
        check_servable(stock_sequential_models()[backbone_of(model)])
    for path in default_config_files(model, dataset):
        config.internal_config_dict.update(load_yaml(path))


def merge_defaults(config):
    """Before RecBole fills its own defaults: a user's partial ``eval_args`` is merged over ours
    (RecBole would fill the rest with its random split), and ``~`` in a path is the home folder."""
    final, given = config.final_config_dict, config.external_config_dict
    ours = config.internal_config_dict.get("eval_args")
    if isinstance(given.get("eval_args"), dict) and isinstance(ours, dict):
        final["eval_args"] = {**ours, **given["eval_args"]}
    for key in ("checkpoint_dir", "data_path", "pretrained_path"):
        if isinstance(final.get(key), str) and final[key].startswith("~"):
            final[key] = os.path.expanduser(final[key])


def derive(config):
    """Values derived after RecBole's defaults."""
    if config.dataset == "ml-100k":
        _prefer_local_ml100k(config)


def _prefer_local_ml100k(config):
    # RecBole always points ml-100k at its bundled copy; a copy under data_path wins.
    root = config.external_config_dict.get("data_path", "dataset/")
    local = os.path.join(root, "ml-100k")
    if os.path.isfile(os.path.join(local, "ml-100k.inter")):
        config.final_config_dict["data_path"] = local


def set_sampling(config):
    """Input type and RecBole-side negative sampling that match ``loss_type`` and ``train_mode``."""
    final = config.final_config_dict
    final["MODEL_INPUT_TYPE"] = InputType.POINTWISE if final["loss_type"] == "CE" else InputType.PAIRWISE
    none = {"distribution": "none", "sample_num": "none", "alpha": "none", "dynamic": False, "candidate_num": 0}
    uniform = {"distribution": "uniform", "sample_num": 1, "alpha": 1.0, "dynamic": False, "candidate_num": 0}
    # CE needs no negatives; sequence mode samples one per position on the model's device.
    if final["loss_type"] == "CE" or final.get("train_mode", "prefix") == "sequence":
        final["train_neg_sample_args"] = none
    elif final["train_neg_sample_args"]["distribution"] == "none":
        final["train_neg_sample_args"] = uniform


# ---------------------------------------------------------------------------- validation
def known_keys(config):
    """Every key RecBole or we know for this model and dataset."""
    known = set(config.internal_config_dict)
    for names in (argument_list.general_arguments, argument_list.training_arguments,
                  argument_list.evaluation_arguments, argument_list.dataset_arguments):
        known.update(names)
    known.update(schema.UNDECLARED)
    # a backbone key is known where this backbone has it (in its defaults, already in ``known``)
    known.update(key.name for key in schema.keys_for(config.model) if key.scope != schema.BACKBONE)
    known.update(("model", "dataset"))
    return known


def closest_key(key, known):
    if key in ALIASES:
        return ALIASES[key]
    lower = {k.lower(): k for k in known}
    if key.lower() in lower:
        return lower[key.lower()]
    match = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return match[0] if match else None


def _unknown_keys(config):
    known = known_keys(config)
    unknown = [key for key in config.external_config_dict if key not in known]
    if not unknown:
        return
    key = unknown[0]
    declared = schema.BY_NAME.get(key)
    if declared is not None and declared.scope != schema.BACKBONE:  # one of ours, for other models
        raise ValueError(
            f"{key} is a key of {declared.scope}, which {config.model} is not; "
            + ("drop it, or train FMLP-Rec (--model=FMLPRec)." if declared.scope == schema.FMLPREC else
               f"drop it, or train a BASRec model (e.g. --model={backbone_of(config.model)} with the runner).")
        )
    strict = config.external_config_dict.get("strict_keys", config.internal_config_dict.get("strict_keys", True))
    if strict is False:
        getLogger().warning(f"keys unknown to RecBole and recbole-basrec, passed on unchecked: {', '.join(unknown)}")
        return
    if declared is not None:
        raise ValueError(f"{key} is a key of other backbones, which {config.model} does not have; drop it "
                         f"(or choose a model that has it).")
    suggestion = closest_key(key, known)
    hint = f"did you mean {suggestion}? " if suggestion else "no known key is close; "
    others = f" (and {len(unknown) - 1} more unknown: {', '.join(unknown[1:])})" if len(unknown) > 1 else ""
    raise ValueError(
        f"unknown key '{key}' for {config.model}{others}; {hint}"
        f"strict_keys=False passes unknown keys on, for keys of your own models."
    )


def validate(config):
    """Refuse, in one line naming the key and the fix, whatever cannot mean what it says."""
    if config.model in RECBOLE_DERIVED:
        raise ValueError(f"'{config.model}' is not a model name.")
    dataset = str(config.dataset)
    if os.sep in dataset or (os.altsep and os.altsep in dataset) or dataset in (".", ".."):
        # RecBole joins the name into file and log paths: a path there writes outside its folders
        parent, name = os.path.split(os.path.normpath(dataset))
        if name in ("", ".", ".."):
            parent, name = dataset, "NAME"
        raise ValueError(f"dataset '{dataset}' is a path, not a name: give the name and its parent folder, "
                         f"e.g. --dataset={name} --data_path={parent or '.'}")
    for key in RECBOLE_DERIVED:
        if key in config.external_config_dict:
            raise ValueError(f"{key} is derived by RecBole from other keys; do not set it.")
    _unknown_keys(config)
    for key, value in config.external_config_dict.items():
        found = schema.outside_float32(value)
        if found:
            where = f"{key}{'.' if found[0] and not found[0].startswith('[') else ''}{found[0]}"
            what = found[1] if not math.isfinite(found[1]) else "beyond float32's range (the model computes in float32)" \
                if abs(found[1]) > 1 else "below float32's smallest number (the model computes in float32, where it is 0)"
            raise ValueError(f"{where} is {what}: every number in the configuration must be finite and within "
                             f"±3.4e38.")
    final = config.final_config_dict
    for key in schema.keys_for(config.model):
        if key.scope == schema.BACKBONE and final.get(key.name) is None:
            continue  # a key this backbone does not have
        schema.check(key.name, final.get(key.name))
    heads, width = final.get("n_heads"), final.get("hidden_size")
    if heads and width and width % heads:
        raise ValueError(f"n_heads={heads} does not divide hidden_size={width}: each head takes hidden_size / n_heads "
                         "features; choose n_heads among the divisors of hidden_size.")
    _check_metrics(final)
    _check_eval_mode(final)
    _check_fields(final)
    low, high = final["tta_noise"]
    if low > high:
        raise ValueError(f"tta_noise [{low}, {high}] has low > high; write [low, high].")
    _check_schedule(config.model, final)
    if is_basrec(config.model):
        _check_basrec(config.model, final)
    _check_gpu_id(final)
    if _effect_checks.get():
        given = set(config.external_config_dict)
        for key, fix in without_effect(config.model, final, given):
            raise ValueError(f"{key} has no effect here: {fix}")
        # A warning, not an error: one settings dict or file often serves training and scoring alike.
        unused = sorted(key for key in given if _trains_only(key)) if final["epochs"] == 0 else []
    else:
        unused = []
    _check_environment(final)
    if unused:
        getLogger().warning(f"epochs=0 only scores pretrained_path and trains nothing, so these keys have no effect: "
                            f"{', '.join(unused)}")


_effect_checks = contextvars.ContextVar("effect_checks", default=True)


@contextlib.contextmanager
def effect_checks_off():
    """Within this block a key that has no effect in the built setup is not refused: for callers
    that build several setups from one set of user keys (``compare``'s arms, a resumed run) and
    check them against all of them themselves."""
    token = _effect_checks.set(False)
    try:
        yield
    finally:
        _effect_checks.reset(token)


#: Test-time augmentation keys and the ``tta`` values they act under.
_TTA_KEYS = {"tta_views": ("tnoise", "tmask"), "tta_keep_original": ("tnoise", "tmask"),
             "tta_output_views": ("tnoise",), "tta_noise": ("tnoise",), "tta_mask_rate": ("tmask",)}


def without_effect(model, final, given, methods=None):
    """``(key, fix)`` for each key of ``given`` that changes nothing in the setup of ``final``
    (under any of ``methods``, default the configured augmentation), ``fix`` saying what would
    make it take effect."""
    found = []
    for key in sorted(given):
        if key in _TTA_KEYS and final.get("tta") not in _TTA_KEYS[key]:
            found.append((key, f"test-time augmentation is off or of another kind (tta={final.get('tta')}); it "
                               f"acts with --tta={' or --tta='.join(_TTA_KEYS[key])}"))
    if final.get("tta") == "tmask" and final["tta_mask_rate"] == 0 and given & {"tta", "tta_mask_rate"}:
        found.append(("tta_mask_rate", "0 masks no item, so tta=tmask tests the plain model; give a rate > 0 "
                                       "or tta=none"))
    if final.get("tta") == "tnoise" and list(final["tta_noise"]) == [0, 0] and given & {"tta", "tta_noise"}:
        found.append(("tta_noise", "[0, 0] adds no noise, so tta=tnoise tests the plain model; give a range "
                                   "other than [0, 0] or tta=none"))
    if is_basrec(model):
        if methods is None:
            methods = [final["augmentation"] if final["basrec"] else "none"]
        shown = "/".join(methods)
        for key in sorted(given):
            acts = schema.BY_NAME[key].methods if key in schema.BY_NAME else ()
            if acts and not set(methods) & set(acts):
                why = " (basrec=False)" if final["basrec"] is False else ""
                found.append((key, f"it belongs to augmentation {', '.join(acts)}, and this run trains "
                                   f"augmentation {shown}{why}; drop it or choose one of those"))
        if "stage1_stopping_step" in given and (final["stage1_epochs"] == 0 or final["pretrained_path"]):
            found.append(("stage1_stopping_step", "there is no stage 1 to stop (stage1_epochs=0 or pretrained_path "
                                                  "given); drop it or set stage1_epochs > 0"))
        if "basrec" in given and final["basrec"] is True and "augmentation" in given \
                and final["augmentation"] != "basrec":
            found.append(("basrec", f"basrec=True asks for BASRec but augmentation={final['augmentation']} was given: "
                                    "drop basrec (augmentation chooses the method)"))
        found += _conditional_effects(final, given, methods)
        sampling = final.get("train_neg_sample_args")
        asked = isinstance(sampling, dict) and sampling.get("distribution") not in (None, "none")
        if "train_neg_sample_args" in given and asked and (final["loss_type"] == "CE" or final["train_mode"] == "sequence"):
            reason = ("loss_type=CE scores every item, so no negatives are sampled; set loss_type=BCE or BPR"
                      if final["loss_type"] == "CE" else "train_mode=sequence draws one negative per position "
                      "itself; drop it (or set train_mode=prefix)")
            found.append(("train_neg_sample_args", reason))
    return found


#: RecBole keys that act on training only (besides every BASRec and method key).
_TRAINING_KEYS = {"learning_rate", "weight_decay", "train_batch_size", "stopping_step", "eval_step", "valid_start_epoch",
                  "loss_type", "train_neg_sample_args", "learner", "clip_grad_norm", "enable_amp", "enable_scaler"}


def _trains_only(key):
    declared = schema.BY_NAME.get(key)
    return key in _TRAINING_KEYS or (declared is not None and declared.scope == schema.BASREC
                                     and key != "pretrained_path")


#: Keys that act only when another key has some value: ``key: (condition on final, what makes it act)``.
_ONLY_WHEN = {
    **{key: (lambda f: f["n_pairs"] > 0, "n_pairs > 0 (single-sequence views)")
       for key in ("rate_min", "rate_max", "aml_weight", "ssa_weighting", "reorder_keep_last")},
    **{key: (lambda f: f["n_whole_level"] > 0, "n_whole_level > 0 (cross-sequence mixup)")
       for key in ("wml_weight", "csa_partner_padding")},
    "ce_logits_mib": (lambda f: f["loss_type"] == "CE", "loss_type=CE"),
    "stopping_step": (lambda f: f["eval_step"] > 0, "eval_step > 0 (early stopping counts validations)"),
    "sequence_windows": (lambda f: f["train_mode"] == "sequence", "train_mode=sequence"),
    "similarity_source": (lambda f: f["similarity_model"] != "Random", "a similarity_model other than Random"),
    "stage1_epochs": (lambda f: not f["pretrained_path"] or f["stage1_epochs"] == 0,
                      "no pretrained_path (which replaces stage 1)"),
}
#: CL4SRec's rate keys and the operator each belongs to.
_CL_OPERATOR_RATES = {"crop_rate": "crop", "mask_rate": "mask", "reorder_rate": "reorder"}


def _conditional_effects(final, given, methods):
    found = []
    basrec = "basrec" in methods
    for key in sorted(given):
        rule = _ONLY_WHEN.get(key)
        acts = schema.BY_NAME[key].methods if key in schema.BY_NAME else ()
        if rule and (basrec or "basrec" not in acts) and not rule[0](final):
            found.append((key, f"it acts only with {rule[1]}; drop it or set that"))
        if key in _CL_OPERATOR_RATES and set(methods) <= {"cl4srec", "none"} and "cl4srec" in methods \
                and _CL_OPERATOR_RATES[key] not in final["cl_operators"]:
            found.append((key, f"cl_operators {final['cl_operators']} has no {_CL_OPERATOR_RATES[key]}; add it there "
                               "or drop the rate"))
    if basrec and methods == ["basrec"] and final["n_pairs"] == 0 and final["n_whole_level"] == 0:
        found.append(("n_pairs", "with n_whole_level=0 too, BASRec adds no augmentation at all; train plain with "
                                 "augmentation=none, or give one of them > 0"))
    if "slide_window" in methods and len(methods) == 1 and final["slide_window_length"] > final["MAX_ITEM_LIST_LENGTH"]:
        found.append(("slide_window_length", f"{final['slide_window_length']} is at least as long as any training "
                                             f"sequence the model reads (at most MAX_ITEM_LIST_LENGTH + 1 = "
                                             f"{final['MAX_ITEM_LIST_LENGTH'] + 1} items), so every copy is the whole "
                                             f"sequence; give at most MAX_ITEM_LIST_LENGTH"))
    if "mask_rate" in given and final["mask_rate"] == 0:
        found.append(("mask_rate", "0 masks no item, so the mask operator leaves every sequence as it is; give a "
                                   "rate > 0 (or drop mask from cl_operators for cl4srec)"))
    if "crop_rate" in given and final["crop_rate"] == 1:
        found.append(("crop_rate", "1 keeps the whole sequence, so the crop operator changes nothing; give a rate < 1"))
    for key, what in (("aug_weight", "the copies"), ("cl_weight", "the contrastive loss")):
        if key in given and final[key] == 0 and len(methods) == 1:
            found.append((key, f"0 switches {what} off, which is training with less augmentation than named; "
                               "use augmentation=none for plain training, or a weight > 0"))
    if "cl4srec" in methods and len(methods) == 1 and final["train_batch_size"] < 2:
        found.append(("train_batch_size", "CL4SRec's contrastive loss needs at least 2 sequences per batch (the "
                                          "others are its negatives); give train_batch_size >= 2"))
    return found


def _check_fields(final):
    """The id and time columns the leave-one-out split reads: distinct, and loaded."""
    fields = {key: final.get(key) for key in ("USER_ID_FIELD", "ITEM_ID_FIELD", "TIME_FIELD")}
    named = [(key, value) for key, value in fields.items() if value is not None]
    for i, (key, value) in enumerate(named):
        for other, same in named[i + 1:]:
            if value == same:
                raise ValueError(f"{key} and {other} both name the column '{value}': each needs its own column "
                                 f"(ours: USER_ID_FIELD=user_id, ITEM_ID_FIELD=item_id, TIME_FIELD=timestamp).")
    load = final.get("load_col")
    columns = load.get("inter") if isinstance(load, dict) else None
    if isinstance(columns, (list, tuple)):
        missing = [value for _, value in named if value not in columns]
        if missing:
            raise ValueError(f"load_col's inter columns {list(columns)} leave out {', '.join(map(repr, missing))}, "
                             f"which the leave-one-out split by time reads; add {'it' if len(missing) == 1 else 'them'}.")


def _check_gpu_id(final):
    gpu_id = final.get("gpu_id")
    text = str(gpu_id).replace(" ", "")
    if gpu_id is not None and text and not all(part.isdigit() for part in text.split(",")):
        raise ValueError(f"gpu_id '{gpu_id}' is not a GPU number or a comma-separated list of them (e.g. "
                         "--gpu_id=0 or --gpu_id=0,1)")


def _check_eval_mode(final):
    import re

    mode = final["eval_args"].get("mode", "full")
    for phase, value in (mode.items() if isinstance(mode, dict) else [("", mode)]):
        if not isinstance(value, str) or not re.fullmatch(r"full|(uni|pop)\d+", value):
            raise ValueError(f"eval_args mode{' ' + phase if phase else ''} {value!r} is not a ranking protocol: the "
                             "evaluation here ranks items, so give 'full' (every item) or a sampled ranking such as "
                             "'uni100' or 'pop100'.")


def _check_metrics(final):
    from recbole.evaluator import metric_types

    metrics = [final["metrics"]] if isinstance(final["metrics"], str) else list(final["metrics"])
    ranking = sorted(name for name, kind in metric_types.items() if kind == metric_types["ndcg"])
    for metric in metrics:
        if metric.lower() not in metric_types:
            raise ValueError(f"metrics: there is no metric '{metric}'; ranking metrics are {', '.join(ranking)}.")
        if metric_types[metric.lower()] != metric_types["ndcg"]:
            raise ValueError(f"metrics: {metric} scores labelled pairs, but the evaluation here ranks every item "
                             f"(full ranking, leave-one-out); use ranking metrics: {', '.join(ranking)}.")
    topk = [final["topk"]] if isinstance(final["topk"], int) else list(final["topk"])
    # GAUC ranks all items too but has no cut-off: RecBole reports it as "gauc".
    computed = [m if m.lower() == "gauc" else f"{m}@{t}" for m in metrics for t in topk]
    computed = list(dict.fromkeys(computed))
    if final["valid_metric"].lower() not in [c.lower() for c in computed]:
        raise ValueError(
            f"valid_metric '{final['valid_metric']}' is not computed: choose one of {', '.join(computed)} "
            f"(or add it to metrics / topk)."
        )


def _check_schedule(model, final):
    epochs, start, step = final["epochs"], final["valid_start_epoch"], final["eval_step"]
    pretrained = final.get("pretrained_path") if is_basrec(model) else None
    if epochs == 0 and not pretrained:
        raise ValueError(
            "epochs=0 would test an untrained model: give pretrained_path (a checkpoint to evaluate) or epochs >= 1."
        )
    stages = [("epochs", epochs)]
    if is_basrec(model) and final["stage1_epochs"] > 0 and not pretrained:
        stages.insert(0, ("stage1_epochs", final["stage1_epochs"]))
    for key, count in stages:
        if count == 0 or step == 0:
            continue
        if start >= count:
            raise ValueError(
                f"valid_start_epoch={start} with {key}={count}: the stage would never validate and would test "
                f"its last epoch; lower valid_start_epoch below {count} or raise {key}."
            )
        if step > count:
            raise ValueError(
                f"eval_step={step} with {key}={count}: the stage would never validate; lower eval_step "
                f"(eval_step=0 turns validation off on purpose)."
            )


def _check_basrec(model, final):
    method = final["augmentation"]
    if final["basrec"] is False and method not in ("none", "basrec"):
        raise ValueError(f"basrec=False means augmentation=none, but augmentation={method} was given: drop "
                         f"basrec=False (augmentation chooses the method)")
    if backbone_of(model) == "BERT4Rec" and method not in ("none", "basrec"):
        raise ValueError(f"BERT4Rec trains a cloze task on masked sequences, so augmentation={method} (a next-item "
                         "method) is not served for it: choose augmentation basrec or none, or another backbone")
    if final["rate_min"] > final["rate_max"]:
        raise ValueError(f"rate_min ({final['rate_min']}) > rate_max ({final['rate_max']}); swap them.")
    if final["train_mode"] != "prefix" and not trains_sequence_mode(model):
        raise ValueError(
            f"{model} trains one target per prefix (its forward gives no causal output per position): set "
            f"train_mode=prefix (train_mode=sequence: {', '.join((*HANDWRITTEN, *SEQUENCE_MODE))})."
        )
    path = final["pretrained_path"]
    if path is not None and os.path.isdir(path):
        raise ValueError(f"pretrained_path '{path}' is a directory; give the checkpoint file in it (ours or the authors').")
    if path is not None and not os.path.isfile(path):
        raise ValueError(f"pretrained_path '{path}' does not exist; point it at a stage-1 checkpoint (ours or the authors').")


def _check_environment(final):
    folder = final["checkpoint_dir"]
    why = unwritable(folder)
    if why:
        raise ValueError(f"checkpoint_dir '{folder}' cannot be written ({why}); choose a folder you can write, "
                         "e.g. --checkpoint_dir=saved")
    if final.get("log_wandb"):
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise ValueError("log_wandb=True needs wandb, which is not installed: pip install wandb") from None
    if "local_rank" not in final:  # a launched process has local_rank; elsewhere nproc > 1 would be ignored
        from recbole_basrec.distributed import refuse_launch_keys

        refuse_launch_keys(final)


def tta_settings(config):
    """The TTA keys of ``config`` (a configuration of our models holds them all)."""
    return {key: config[key] for key in ("tta", "tta_views", "tta_output_views", "tta_noise", "tta_mask_rate",
                                         "tta_keep_original")}


def warn_if_gpu_missing(config):
    """RecBole silently falls back to CPU; say so when the user asked for a GPU."""
    import torch

    asked = "gpu_id" in config.external_config_dict or config.external_config_dict.get("use_gpu") is True
    if config["use_gpu"] and asked and not torch.cuda.is_available():
        getLogger().warning("GPU requested but no CUDA device is available: running on CPU.")
