"""Accuracy job: does BASRec's stage 2 beat simply training the plain backbone longer?

Protocol (one process, one data split, one seed):

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


class _Progress:
    """Per-epoch bookkeeping of a phase: the trainer's progress line goes to the console and the
    log file, and its resume state (written after every epoch, atomically) also carries the
    elapsed time of every epoch, so a restarted run continues the phase and its curve."""

    def __init__(self, phase, trainer, log, log_file, resume_file):
        self.phase, self.trainer, self.log, self.log_file = phase, trainer, log, log_file
        self.start = time.perf_counter()
        self.marks = []  # (epoch, elapsed_s, valid score or None)
        trainer.progress_sink = self.write
        trainer.last_file = resume_file
        trainer.last_extra = lambda: {"marks": [[e, t, s] for e, t, s in self.marks]}

    def write(self, line):
        line = f"[{self.phase}] {line}"
        self.log(line)
        if self.log_file:
            with open(self.log_file, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def restore(self):
        """Continue an interrupted phase after its last finished epoch, if one was saved."""
        path = self.trainer.last_checkpoint_file
        if not os.path.isfile(path):
            return False
        state = self.trainer.resume_checkpoint(path)
        self.marks = [(int(e), float(t), None if s is None else float(s)) for e, t, s in state.get("marks", [])]
        self.start -= self.marks[-1][1] if self.marks else 0.0
        self.write(f"resumed after epoch {state['epoch'] + 1} from {path}")
        return True

    def __call__(self, epoch, score):
        validated = score not in (float("inf"), float("-inf"))
        self.marks.append((epoch, time.perf_counter() - self.start, float(score) if validated else None))


def best_validation(curve, metric):
    """Index of the model a phase tested: its best ``metric``, the latest of equal scores, as
    RecBole's early stopping (``>=``) keeps it; ``None`` for an empty curve."""
    return max(range(len(curve)), key=lambda i: (curve[i][metric], i)) if curve else None


def _run_phase(name, model, dataset_name, config_dict, data, seed, eval_step, log=common.say, log_file=None):
    """Train one phase on the loaders of ``data`` (a pipeline of an earlier phase, or None);
    returns its record and its pipeline (whose data the next phase reuses)."""
    import torch

    from recbole_basrec.quick_start import build

    data = build(model, dataset_name, config_dict=config_dict, data=data)
    config, net, trainer = data.config, data.model, data.trainer
    data.train_data.generator.manual_seed(seed)  # same shuffling order in every phase
    resume_file = os.path.join(config["checkpoint_dir"], "resume.pth")
    progress = _Progress(name, trainer, log, log_file, resume_file)
    progress.restore()
    trainer.fit(data.train_data, data.valid_data, saved=True, show_progress=False, callback_fn=progress)
    train_s = time.perf_counter() - progress.start
    marks = [(epoch, elapsed) for epoch, elapsed, score in progress.marks if score is not None]
    t0 = time.perf_counter()
    test_result = trainer.evaluate(data.test_data, load_best_model=True, show_progress=False)
    test_s = time.perf_counter() - t0
    history = [h for h in trainer.valid_history if h["epoch"] >= 0]
    curve = [
        {"epoch": int(epoch) + 1, "ndcg@10": float(h["ndcg@10"]),
         "ndcg@20": float(h["ndcg@20"]), "hit@10": float(h["hit@10"]), "elapsed_s": elapsed}
        for h, (epoch, elapsed) in zip(history, marks)
    ]
    train_losses = [{"epoch": int(epoch) + 1, **trainer.loss_terms(epoch)} for epoch in sorted(trainer.epoch_losses)]
    metric = config["valid_metric"].lower()
    best = best_validation(curve, metric)
    epochs_run = progress.marks[-1][0] + 1 if progress.marks else 0
    record = {
        "phase": name,
        "valid_metric": metric,
        "model": config["model"],
        "basrec": bool(config["basrec"]),
        "epochs_run": int(epochs_run),
        "best_epoch": curve[best]["epoch"] if best is not None else None,
        "valid": common.metrics_of(trainer.best_valid_result),
        "test": common.metrics_of(test_result),
        "curve": curve,
        "train_losses": train_losses,  # mean per batch of each term, every epoch this phase trained
        "wall_s": {"train_and_valid": train_s, "test": test_s,
                   "per_epoch_incl_valid": train_s / max(epochs_run, 1)},
        "checkpoint": trainer.saved_model_file,
        "exact_valid_score": trainer.exact_valid_score,
    }
    data = data._replace(model=None, trainer=None)  # the next phase builds its own
    del net, trainer
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return record, data


def _stage1_checkpoint_lost(done, checkpoint_dir, arms, reference, say):
    """Whether a finished stage 1 must run again because an arm still to train lacks its checkpoint.

    A copy of the authors' checkpoint is kept out of committed resume state, so it is scored again
    (no training); a stage 1 we trained cannot be remade identically, so its loss is an error.
    """
    if "stage1" not in done or all(arm in done for arm in arms):
        return False
    path = os.path.join(checkpoint_dir, done["stage1"]["checkpoint"])
    if os.path.isfile(path):
        return False
    if not reference:
        raise common.BadRequest(f"stage 1 in {checkpoint_dir} is finished but its checkpoint {path} is missing: "
                                "restore that file, or remove 'stage1' from phases.json to train stage 1 again")
    say(f"[accuracy] stage1: checkpoint {path} is missing, scoring the authors' checkpoint again")
    return True


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
    log=common.say,
):
    """Run stage 1, then (a) plain and (b) BASRec from its checkpoint; write JSON and PNG.

    Args:
        budget: ``'reduced'``, ``'full'``, ``'published'`` or a dict with the keys of
            :data:`BUDGETS` entries (``None`` values: the preset's).
        overrides: extra config keys applied to every phase (e.g. tiny model sizes in tests).
        from_reference: start from the authors' stage-1 checkpoint instead of training stage 1
            (``True``, or the checkpoint's path).
        checkpoint_dir: where phases save; a run started again with the same folder skips the
            phases already finished there (default ``saved/<output stem>``).
        arms: the stage-2 arms this process trains (after stage 1, if unfinished). Two processes
            with the same ``checkpoint_dir``, one per arm, run the arms side by side once stage 1
            has finished; whichever finishes last writes the JSON.
        stage2_config: config keys set in both stage-2 arms after the budget's and the preset's
            (e.g. ``{"hidden_dropout_prob": 0.1}``); recorded with each arm, and an arm finished
            under other values is refused rather than mixed into the record.

    Returns:
        dict: the record written to ``<out_dir>/accuracy-<model>-<dataset>-<budget>.json``,
        with ``json_path`` and ``png_path`` added; ``None`` while an arm outside ``arms`` is unfinished.
    """
    unknown = sorted(set(arms) - set(ARMS))
    if unknown or not arms:
        raise common.BadRequest(f"arms {list(arms)}: choose among {list(ARMS)}")
    stage2_config = dict(stage2_config or {})
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
    os.makedirs(checkpoint_dir, exist_ok=True)
    log_file = os.path.join(checkpoint_dir, "progress.log")
    done_file = os.path.join(checkpoint_dir, "phases.json")
    common.saving(f"every finished phase in {done_file} and the running phase's last epoch in {checkpoint_dir}: "
                  "run the same command again to resume")

    def finished_phases():  # re-read each time: a process running another arm may have added one
        return common.read_json(done_file, missing={})

    base = dict(COMMON_PARAMS)
    from recbole_basrec.config import preset_file

    if budget_name != "published" or not preset_file(model, dataset_name):
        base.update(MODEL_PARAMS.get(model, {}))  # the preset's own settings otherwise
    if budget_name != "published":
        base["valid_start_epoch"] = 0  # the budget's schedule validates from its first epoch, whatever a preset says
    base.update({"loss_type": loss_type, "seed": seed, "data_path": data_root, "stage1_epochs": 0})
    if budget_name == "published":
        base.pop("valid_metric")  # the preset's (the authors' NDCG@20)
    base.update(overrides or {})
    base = common.quiet_config(base)

    def say(line):
        log(line)
        with open(log_file, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def schedule(stage):
        keys = {"epochs": f"{stage}_epochs", "eval_step": f"{stage}_eval_step", "stopping_step": f"{stage}_stopping_step"}
        return {k: settings[v] for k, v in keys.items() if settings.get(v) is not None}

    def run(phase, cfg, data, changed=None, redo=False):
        done = finished_phases()
        if phase in done and not redo:
            trained_with = done[phase].get("stage2_config", {})
            if changed is not None and trained_with != changed:
                raise common.BadRequest(f"the {phase} arm in {checkpoint_dir} was trained with stage-2 settings "
                                        f"{trained_with}, not {changed}: give this run another "
                                        "--tag (or --checkpoint_dir)")
            say(f"[accuracy] {phase}: already finished in {checkpoint_dir}, skipped")
            return done[phase], data
        record, data = _run_phase(phase, model, dataset_name, cfg, data, seed, cfg.get("eval_step", 1),
                                  log=log, log_file=log_file)
        if changed is not None:
            record["stage2_config"] = changed
        # relative: a copy of the folder (a new --tag seeded with this stage 1, a resume elsewhere) still finds it
        record["checkpoint"] = os.path.relpath(record["checkpoint"], checkpoint_dir)
        common.write_json({**finished_phases(), phase: record}, done_file)
        return record, data

    def phase_config(phase, **extra):
        cfg = dict(base)
        cfg["checkpoint_dir"] = os.path.join(checkpoint_dir, phase)
        cfg.update(extra)
        return cfg

    t0 = time.perf_counter()
    if reference:
        say(f"[accuracy] {model} on {dataset_name}: stage 1 = the authors' checkpoint {reference}")
        stage1_cfg = phase_config("stage1", basrec=False, pretrained_path=reference, epochs=0)
    else:
        say(f"[accuracy] {model} on {dataset_name}: stage 1 (plain, up to {settings['stage1_epochs']} epochs)")
        stage1_cfg = phase_config("stage1", basrec=False, **schedule("stage1"))
        if budget_name == "published":
            # the preset's start_valid and dropout are stage 2's
            stage1_cfg.update(PUBLISHED_STAGE1.get((model, dataset_name), {"valid_start_epoch": 0}))
    stage1, data = run("stage1", stage1_cfg, None, redo=_stage1_checkpoint_lost(
        finished_phases(), checkpoint_dir, arms, reference, say))
    stage1["wall_s"].setdefault("total_incl_data", time.perf_counter() - t0)
    ckpt = os.path.join(checkpoint_dir, stage1["checkpoint"])  # relative to checkpoint_dir
    say(f"[accuracy] stage 1 done: valid NDCG@10 {stage1['valid'].get('ndcg@10', float('nan')):.4f}, test "
        f"NDCG@10 {stage1['test'].get('ndcg@10', float('nan')):.4f} after {stage1['epochs_run']} epochs")
    stage2 = schedule("stage2")
    if budget_name == "published":
        stage2.update(borrowed_stage2_schedule(model, dataset_name))
    if stage2_config:
        from recbole_basrec.quick_start import build_config

        known = build_config(model, dataset_name, config_dict=phase_config("basrec", basrec=True)).final_config_dict
        typos = sorted(key for key in stage2_config if key not in known)
        if typos:
            raise common.BadRequest(f"stage-2 settings {typos} are not config keys of {model}: check their "
                                    "spelling against properties/ and RecBole's configuration")
        stage2.update(stage2_config)
    # BASRec first: on a slow machine its (longer) arm is the one most worth having finished.
    for phase in (arm for arm in ARMS if arm in arms):
        cfg = phase_config(phase, basrec=phase == "basrec", pretrained_path=ckpt, **stage2)
        say(f"[accuracy] stage 2 {phase} from the stage-1 checkpoint")
        arm, data = run(phase, cfg, data, changed=stage2_config)
        say(f"[accuracy] {phase}: valid NDCG@10 {arm['valid'].get('ndcg@10', float('nan')):.4f}, "
            f"test NDCG@10 {arm['test'].get('ndcg@10', float('nan')):.4f} "
            f"({arm['wall_s']['train_and_valid']:.0f}s)")
    done = finished_phases()  # this process's arms and any other process's
    missing = [arm for arm in ARMS if arm not in done]
    if missing:
        say(f"[accuracy] {', '.join(missing)} not finished: the process running it writes the JSON")
        return None
    runs = {arm: done[arm] for arm in ARMS}

    from recbole_basrec.quick_start import build, build_config

    probe = build_config(model, dataset_name, config_dict=phase_config("basrec", basrec=True, **stage2))
    if data is None:  # every phase was finished before this process started
        data = build(model, dataset_name, config_dict=phase_config("basrec", basrec=True, **stage2))
    keys = ("n_pairs", "n_whole_level", "beta", "rate_min", "rate_max", "rec_weight", "aml_weight", "wml_weight",
            "similarity_model", "similarity_source", "sequence_windows", "align", "ssa_weighting",
            "reorder_keep_last", "eval_mask_history", "exact_valid_score", "valid_metric", "valid_start_epoch", "epochs",
            "stopping_step", "loss_type", "train_mode", "MAX_ITEM_LIST_LENGTH", "train_batch_size", "learning_rate")
    keys += tuple(MODEL_PARAMS.get(model, {}))
    hyper = {k: probe[k] for k in keys if k in probe}
    record = {
        "job": "accuracy",
        "model": model,
        "dataset": dataset_name,
        "budget": budget_name,
        "budget_settings": settings,
        "stage2_config": stage2_config,
        "seed": seed,
        "loss_type": probe["loss_type"],
        "history_masked": bool(probe["eval_mask_history"]),
        "from_reference": reference,
        "environment": common.environment(),
        "protocol": (
            ("the authors' stage-1 checkpoint" if reference else "stage 1 plain (early-stopped on validation)")
            + " -> from it, (a) plain training continued and (b) BASRec stage 2, same seed, same epochs and "
            "patience (stopping_step counts validations); best-valid checkpoint of each tested once; "
            + ("history masked" if probe["eval_mask_history"] else "history not masked")
        ),
        "hyper_parameters": hyper,
        "data": {"users": int(data.dataset.user_num - 1), "items": int(data.dataset.item_num - 1),
                 "interactions": int(data.dataset.inter_num), "train_batches_per_epoch": len(data.train_data)},
        "stage1": {k: v for k, v in stage1.items() if k != "checkpoint"},
        "plain": {k: v for k, v in runs["plain"].items() if k != "checkpoint"},
        "basrec": {k: v for k, v in runs["basrec"].items() if k != "checkpoint"},
        "gain_basrec_over_plain": {
            "test": common.relative_gains(runs["basrec"]["test"], runs["plain"]["test"]),
            "valid": common.relative_gains(runs["basrec"]["valid"], runs["plain"]["valid"]),
        },
        "gain_basrec_over_stage1": {"test": common.relative_gains(runs["basrec"]["test"], stage1["test"])},
        "wall_s_total": time.perf_counter() - wall_start,
    }
    record["json_path"] = os.path.join(out_dir, stem + ".json")
    record["png_path"] = os.path.join(out_dir, stem + ".png")
    os.makedirs(out_dir, exist_ok=True)
    plot_curves(record, record["png_path"])
    common.write_json(record, record["json_path"])
    say(f"[accuracy] wrote {record['json_path']} and {record['png_path']}")
    return record


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
