"""Accuracy job: does BASRec's stage 2 beat simply training the plain backbone longer?

A thin wrapper over ``recbole-basrec compare`` (:func:`recbole_basrec.quick_start.compare.run_compare`)
with one seed: it names budgets, finds the paper's data and the authors' checkpoints, and writes
the record and plot the ``table`` job reads. Protocol (one data split, one seed):

1. **stage 1**: the plain backbone (``basrec: False``) is trained, early-stopped on validation,
   and its best checkpoint saved; with ``from_reference`` the authors' own stage-1 checkpoint
   (``../shared/data/reference/<model>-<dataset>-stage1.pt``) is evaluated instead;
2. from that same checkpoint, with the same seed and the same epoch budget and patience:
   (a) **plain**: plain training continued (``basrec: False``, ``pretrained_path``);
   (b) **basrec**: BASRec stage 2 (``basrec: True``, ``pretrained_path``).

Model selection uses validation only; each run's best-validation checkpoint is then tested
once, history masked (``eval_mask_history``). Budget ``published`` is the authors' schedule
from ``properties/preset/`` (stage 2: up to 200 epochs, validated from the 102nd epoch, NDCG@20,
patience 20) with their model and BASRec settings (a backbone they published nothing for, FMLP-Rec,
takes SASRec's schedule: :func:`borrowed_stage2_schedule`); a stage 1 trained here follows their
pretraining schedule (:data:`PUBLISHED_STAGE1`: up to 500 epochs, validated late). Reported: HR/NDCG@{5,10,20} on valid and
test for stage 1, (a) and (b), the relative gain of (b) over (a), the validation curves and
phase wall times. Every epoch prints one progress line; a run interrupted between phases
resumes at the next phase when started again with the same ``checkpoint_dir``.
"""
import os
import time

from benchmarks import common

METRICS = common.METRICS

MODEL_PARAMS = common.MODEL_PARAMS

#: Training settings shared by every phase (the paper's protocol).
COMMON_PARAMS = {
    "train_mode": "sequence",
    "MAX_ITEM_LIST_LENGTH": 50,
    "train_batch_size": 256,
    "learning_rate": 0.001,
    "valid_metric": "NDCG@10",
}

#: The stage-2 arms, in the order one process runs them.
ARMS = ("basrec", "plain")

#: Epoch budgets. ``stopping_step`` counts validations (RecBole), so the patience in epochs
#: is ``stopping_step * eval_step``. ``reduced`` is a quick CPU check (stage 1 up to 60 epochs
#: validated every 2, stage 2 up to 20); ``full`` validates every epoch with patience 20;
#: ``published`` takes stage 2's schedule, model and BASRec settings from the preset of
#: ``properties/preset/`` (the authors' commands), stage 1 from :data:`PUBLISHED_STAGE1`.
#: ``reduced`` and ``full`` set the schedule only (validated from the first epoch); where a preset
#: exists for the dataset, its BASRec and model settings apply under them too.
BUDGETS = {
    "reduced": {
        name: {"stage1_epochs": 60, "stage1_eval_step": 2, "stage1_stopping_step": 3,
               "stage2_epochs": 20, "stage2_eval_step": 1, "stage2_stopping_step": 5}
        for name in ("SASRec", "GRU4Rec", "FMLPRec")
    },
    "full": {
        name: {"stage1_epochs": 200, "stage1_eval_step": 1, "stage1_stopping_step": 20,
               "stage2_epochs": 200, "stage2_eval_step": 1, "stage2_stopping_step": 20}
        for name in MODEL_PARAMS
    },
    "published": {
        name: {"stage1_epochs": 500, "stage1_eval_step": 1, "stage1_stopping_step": 19,
               "stage2_epochs": None, "stage2_eval_step": 1, "stage2_stopping_step": None}
        for name in MODEL_PARAMS
    },
}
#: Stage 1 of the published budget trained here: the authors' pretraining of the same backbones
#: on the same data as their TTA4SR README gives it (KingGugu/TTA4SR, e.g. ``python main.py
#: --data_name=Beauty --star_test=450 --model_name=GRU4Rec``): up to 500 epochs, validated only
#: after epoch ``star_test`` (our ``valid_start_epoch`` = star_test + 1), patience 20, their code's
#: dropout defaults. BASRec's repository ships its stage-1 checkpoints without their commands.
_TTA4SR_STAR_TEST = {
    ("SASRec", "Beauty"): 300, ("SASRec", "Sports_and_Outdoors"): 200, ("SASRec", "Home"): 200, ("SASRec", "Yelp"): 200,
    ("GRU4Rec", "Beauty"): 450, ("GRU4Rec", "Sports_and_Outdoors"): 450, ("GRU4Rec", "Home"): 350, ("GRU4Rec", "Yelp"): 350,
}
_TTA4SR_DROPOUT = {
    "SASRec": {"hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5},
    "GRU4Rec": {"dropout_prob": 0.3},
}
PUBLISHED_STAGE1 = {
    (model, dataset): {"valid_start_epoch": star_test + 1, **_TTA4SR_DROPOUT[model]}
    for (model, dataset), star_test in _TTA4SR_STAR_TEST.items()
}
#: Stage-2 schedule keys that a backbone without published settings (FMLP-Rec) takes from SASRec's
#: preset for the same dataset, the closest published architecture (FMLP-Rec is SASRec with its
#: attention replaced by a learnable filter). Without them stage 2 would be validated from its first
#: epoch and early-stopped there, a schedule the authors used for no backbone.
BORROWED_SCHEDULE_KEYS = ("epochs", "valid_start_epoch", "stopping_step", "valid_metric")


def borrowed_stage2_schedule(model, dataset):
    """Stage 2's schedule for ``model`` under the published budget when the authors published no
    settings for it on ``dataset``: SASRec's preset's (:data:`BORROWED_SCHEDULE_KEYS`); ``{}`` when
    ``model`` has its own preset or SASRec has none for ``dataset``."""
    from recbole_basrec.config import load_yaml, preset_file

    sasrec = preset_file("SASRec", dataset)
    if preset_file(model, dataset) or not sasrec:
        return {}
    preset = load_yaml(sasrec)
    return {key: preset[key] for key in BORROWED_SCHEDULE_KEYS}


#: Where the authors' stage-1 checkpoints live: ``<shared>/reference/<model>-<dataset>-stage1.pt``.
REFERENCE_DIR = os.path.join(common.SHARED_DATA, "reference")


def reference_checkpoint(model, dataset):
    path = os.path.join(REFERENCE_DIR, f"{model}-{dataset}-stage1.pt")
    if not os.path.isfile(path):
        raise common.DatasetMissing(f"reference checkpoint {path} not found")
    return path


def budget_settings(budget, model):
    if isinstance(budget, dict):
        return dict(budget)
    try:
        return dict(BUDGETS[budget][model])
    except KeyError:
        raise common.BadRequest(f"unknown budget {budget!r} or model {model!r}") from None


def budget_layer(budget_name, settings, model, dataset_name, loss_type, data_root, reference):
    """``(stage-2 and shared settings, stage-1-only settings)`` of a budget: the schedule; where no
    preset applies, also the paper's protocol and model sizes (:data:`COMMON_PARAMS`,
    :data:`MODEL_PARAMS`); a preset's own settings otherwise stand."""
    from recbole_basrec.config import preset_file

    layer = {"train_mode": "sequence", "loss_type": loss_type, "data_path": data_root}
    if not preset_file(model, dataset_name):
        layer.update(COMMON_PARAMS)
        layer.update(MODEL_PARAMS.get(model, {}))
    if budget_name != "published":
        layer["valid_start_epoch"] = 0  # the budget's schedule validates from its first epoch
    for key in ("epochs", "eval_step", "stopping_step"):
        if settings.get(f"stage2_{key}") is not None:
            layer[key] = settings[f"stage2_{key}"]
    if budget_name == "published":
        layer.update(borrowed_stage2_schedule(model, dataset_name))
    stage1 = {}
    if reference:
        layer["pretrained_path"] = reference
    else:
        layer["stage1_epochs"] = settings["stage1_epochs"]
        layer["stage1_stopping_step"] = settings["stage1_stopping_step"]
        stage1["eval_step"] = settings["stage1_eval_step"]
        if budget_name == "published":  # the preset's start_valid and dropout are stage 2's
            stage1.update(PUBLISHED_STAGE1.get((model, dataset_name), {"valid_start_epoch": 0}))
    return layer, stage1


def run_accuracy(
    model="SASRec",
    dataset="Beauty",
    budget="reduced",
    seed=2020,
    loss_type="BCE",
    data_file=None,
    data_path=None,
    cache_dir=None,
    out_dir=None,
    checkpoint_dir=None,
    tag=None,
    overrides=None,
    from_reference=False,
    arms=ARMS,
    stage2_config=None,
    stage1_config=None,
    log=common.say,
):
    """Run stage 1, then (a) plain and (b) BASRec from its checkpoint; write JSON and PNG.

    Args:
        budget: ``'reduced'``, ``'full'``, ``'published'`` or a dict with the keys of
            :data:`BUDGETS` entries (``None`` values: the preset's).
        overrides: extra config keys applied to every phase (e.g. tiny model sizes in tests).
        from_reference: start from the authors' stage-1 checkpoint instead of training stage 1
            (``True`` for ``<shared>/reference/<model>-<dataset>-stage1.pt``, or a checkpoint's path).
        checkpoint_dir: the run's folder; a run started again with the same folder skips the
            phases already finished there (default ``saved/<output stem>``).
        arms: the stage-2 arms this process trains (after stage 1, if unfinished). Two processes
            with the same ``checkpoint_dir``, one per arm, run the arms side by side once stage 1
            has finished; whichever finishes last writes the JSON.
        stage2_config: config keys set in both stage-2 arms only (e.g. ``{"hidden_dropout_prob": 0.1}``).
        stage1_config: config keys set in stage 1 only, over the budget's (e.g. a shorter
            ``valid_start_epoch`` for a shortened published budget).

    Returns:
        dict: the record written to ``<out_dir>/accuracy-<model>-<dataset>-<budget>.json``,
        with ``json_path`` and ``png_path`` added; ``None`` while an arm outside ``arms`` is unfinished.
    """
    from recbole_basrec.quick_start import build_config
    from recbole_basrec.quick_start.compare import run_compare

    unknown = sorted(set(arms) - set(ARMS))
    if unknown or not arms:
        raise common.BadRequest(f"arms {list(arms)}: choose among {list(ARMS)}")
    wall_start = time.perf_counter()
    dataset_name, data_root = common.resolve_dataset(dataset, data_file, data_path, cache_dir)
    reference = None
    if from_reference:
        reference = from_reference if isinstance(from_reference, str) else reference_checkpoint(model, dataset_name)
    out_dir = out_dir or common.DEFAULT_OUT
    settings = budget_settings(budget, model)
    budget_name = budget if isinstance(budget, str) else settings.pop("name", "custom")
    stem = f"accuracy-{model.lower()}-{dataset_name.lower()}-{tag or budget_name}"
    checkpoint_dir = checkpoint_dir or os.path.join(common.REPO_ROOT, "saved", stem)
    common.saving(f"every finished phase in {checkpoint_dir}/phases.json and the running phase's last epoch in "
                  f"{checkpoint_dir}: run the same command again to resume")
    layer, stage1 = budget_layer(budget_name, settings, model, dataset_name, loss_type, data_root, reference)
    given = dict(overrides or {})
    stage2_config = dict(stage2_config or {})
    if stage2_config:  # stage 1 keeps what it has without them
        below = build_config(model, dataset_name, config_dict={**layer, **given}).final_config_dict
        typos = sorted(key for key in stage2_config if key not in below)
        if typos:
            raise common.BadRequest(f"stage-2 settings {typos} are not config keys of {model}: check their "
                                    "spelling against properties/ and RecBole's configuration")
        stage1 = {**{key: below[key] for key in stage2_config}, **stage1}
    stage1.update(stage1_config or {})
    compared = run_compare(model, dataset_name, seeds=[seed], config_dict={**given, **stage2_config},
                           layer=(f"budget {budget_name}", layer), stage1_config=stage1, run_dir=checkpoint_dir,
                           arms=arms, say=log, command=common.COMMAND)
    if compared is None:
        return None
    runs = {arm: compared["runs"][f"{arm}-{seed}"] for arm in ARMS}
    stage1_run = compared["stage1"]
    hyper = {k: compared["settings"][k] for k in HYPER_KEYS + tuple(MODEL_PARAMS.get(model, {}))
             if k in compared["settings"]}
    record = {
        "job": "accuracy",
        "model": model,
        "dataset": dataset_name,
        "budget": budget_name,
        "budget_settings": settings,
        "stage2_config": stage2_config,
        "stage1_config": stage1,
        "seed": seed,
        "loss_type": compared["settings"]["loss_type"],
        "history_masked": compared["history_masked"],
        "from_reference": reference,
        "environment": compared["environment"],
        "protocol": compared["protocol"],
        "changed_settings": compared["changed_settings"],
        "hyper_parameters": hyper,
        "data": compared["data"],
        "stage1": {k: v for k, v in stage1_run.items() if k != "checkpoint"},
        "plain": {k: v for k, v in runs["plain"].items() if k != "checkpoint"},
        "basrec": {k: v for k, v in runs["basrec"].items() if k != "checkpoint"},
        "gain_basrec_over_plain": {
            "test": common.relative_gains(runs["basrec"]["test"], runs["plain"]["test"]),
            "valid": common.relative_gains(runs["basrec"]["valid"], runs["plain"]["valid"]),
        },
        "gain_basrec_over_stage1": {"test": common.relative_gains(runs["basrec"]["test"], stage1_run["test"])},
        "wall_s_total": time.perf_counter() - wall_start,
    }
    record["json_path"] = os.path.join(out_dir, stem + ".json")
    record["png_path"] = os.path.join(out_dir, stem + ".png")
    os.makedirs(out_dir, exist_ok=True)
    plot_curves(record, record["png_path"])
    common.write_json(record, record["json_path"])
    log(f"[accuracy] wrote {record['json_path']} and {record['png_path']}")
    return record


#: The settings every accuracy record lists (with the backbone's :data:`MODEL_PARAMS` keys).
HYPER_KEYS = ("n_pairs", "n_whole_level", "beta", "rate_min", "rate_max", "rec_weight", "aml_weight", "wml_weight",
              "similarity_model", "similarity_source", "sequence_windows", "align", "ssa_weighting",
              "reorder_keep_last", "eval_mask_history", "exact_valid_score", "valid_metric", "valid_start_epoch",
              "epochs", "stopping_step", "loss_type", "train_mode", "MAX_ITEM_LIST_LENGTH", "train_batch_size",
              "learning_rate")


def plot_curves(record, path):
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    s1 = record["stage1"]["curve"]
    offset = s1[-1]["epoch"] if s1 else 0
    best1 = record["stage1"].get("best_epoch") or offset
    if s1:
        ax.plot([p["epoch"] for p in s1], [p["ndcg@10"] for p in s1], "-o", color="grey", ms=3,
                label="stage 1 (plain)")
        ax.axvline(best1, color="grey", ls=":", lw=1)
    for phase, color in (("plain", "tab:blue"), ("basrec", "tab:red")):
        curve = record[phase]["curve"]
        label = "(a) plain, continued" if phase == "plain" else "(b) BASRec stage 2"
        test = record[phase]["test"].get("ndcg@10")
        if test is not None:
            label += f"  [test NDCG@10 {test:.4f}]"
        ax.plot([offset + p["epoch"] for p in curve], [p["ndcg@10"] for p in curve], "-o", ms=3,
                color=color, label=label)
    ax.set_xlabel("epoch (stage 2 drawn after the last stage-1 epoch; starts from the best one, dotted)")
    ax.set_ylabel("validation NDCG@10")
    ax.set_title(f"{record['model']} on {record['dataset']}: budget {record['budget']}, "
                 f"loss {record['loss_type']}, seed {record['seed']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
