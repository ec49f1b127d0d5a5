"""Accuracy job: does BASRec's stage 2 beat simply training the plain backbone longer?

Protocol (one process, one data split, one seed):

1. **stage 1**: the plain backbone (``basrec: False``) is trained, early-stopped on validation
   NDCG@10, and its best checkpoint saved;
2. from that same checkpoint, with the same seed and the same epoch budget and patience:
   (a) **plain**: plain training continued (``basrec: False``, ``pretrained_path``);
   (b) **basrec**: BASRec stage 2 (``basrec: True``, ``pretrained_path``).

Early stopping and model selection use validation NDCG@10 only; each run's best-validation
checkpoint is then tested once. Reported: HR/NDCG@{5,10,20} on valid and test for stage 1, (a)
and (b), the relative gain of (b) over (a), the validation NDCG@10 curves and phase wall times.
"""
import os
import tempfile
import time

from recbole_basrec.benchmark import common

METRICS = ["hit@5", "ndcg@5", "hit@10", "ndcg@10", "hit@20", "ndcg@20"]

MODEL_PARAMS = common.MODEL_PARAMS

#: Training settings shared by every phase (the paper's protocol).
COMMON_PARAMS = {
    "train_mode": "sequence",
    "MAX_ITEM_LIST_LENGTH": 50,
    "train_batch_size": 256,
    "learning_rate": 0.001,
    "valid_metric": "NDCG@10",
}

#: Epoch budgets. ``stopping_step`` counts validations (RecBole), so the patience in epochs
#: is ``stopping_step * eval_step``. ``reduced`` was sized from measured times on a shared
#: 2-core CPU (Beauty, SASRec: ~50-80 s per plain epoch + validation under load, data loading
#: ~60 s, a BASRec epoch ~3x a plain one) to finish in < 30 min; ``full`` is the reference's
#: GPU budget.
BUDGETS = {
    "reduced": {
        # Under 30 minutes on a 2-core CPU for SASRec and GRU4Rec (~5 s per plain epoch).
        name: {"stage1_epochs": 60, "stage1_eval_step": 2, "stage1_stopping_step": 3,
               "stage2_epochs": 20, "stage2_eval_step": 1, "stage2_stopping_step": 5}
        for name in ("SASRec", "GRU4Rec", "FMLPRec")
    },
    "full": {
        name: {"stage1_epochs": 200, "stage1_eval_step": 1, "stage1_stopping_step": 20,
               "stage2_epochs": 200, "stage2_eval_step": 1, "stage2_stopping_step": 20}
        for name in MODEL_PARAMS
    },
}


def budget_settings(budget, model):
    if isinstance(budget, dict):
        return dict(budget)
    try:
        return dict(BUDGETS[budget][model])
    except KeyError:
        raise ValueError(f"unknown budget {budget!r} or model {model!r}") from None


def _metrics(result):
    return {m: float(result[m]) for m in METRICS if m in result} if result else {}


def _gains(better, base):
    return {m: ((better[m] - base[m]) / base[m] if base.get(m) else None) for m in METRICS if m in better}


class _Data:
    """The dataset and its loaders, built once and shared by every phase."""

    def __init__(self, config):
        from recbole.data import create_dataset, data_preparation

        self.dataset = create_dataset(config)
        self.train, self.valid, self.test = data_preparation(config, self.dataset)


def _run_phase(name, model, dataset_name, config_dict, data, seed, eval_step):
    """Train one phase on the shared loaders; returns metrics, curve, times, checkpoint."""
    import torch
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    from recbole_basrec.quick_start.quick_start import build_config

    config = build_config(model, dataset_name, config_dict=config_dict)
    init_logger(config)
    if data is None:
        init_seed(config["seed"], config["reproducibility"])
        data = _Data(config)
    init_seed(seed, config["reproducibility"])
    data.train.generator.manual_seed(seed)  # same shuffling order in every phase
    net = get_model(config["model"])(config, data.train._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)
    marks = []
    start = time.perf_counter()
    trainer.fit(
        data.train, data.valid, saved=True, show_progress=False,
        callback_fn=lambda epoch, score: marks.append((epoch, time.perf_counter() - start)),
    )
    train_s = time.perf_counter() - start
    t0 = time.perf_counter()
    test_result = trainer.evaluate(data.test, load_best_model=True, show_progress=False)
    test_s = time.perf_counter() - t0
    history = trainer.valid_history
    curve = [
        {"epoch": int(epoch) + 1, "ndcg@10": float(h["ndcg@10"]), "hit@10": float(h["hit@10"]),
         "elapsed_s": elapsed}
        for h, (epoch, elapsed) in zip(history, marks)
    ]
    best = max(range(len(curve)), key=lambda i: curve[i]["ndcg@10"]) if curve else None
    epochs_run = (max(trainer.train_loss_dict) + 1 - trainer.start_epoch) if trainer.train_loss_dict else 0
    record = {
        "phase": name,
        "model": config["model"],
        "basrec": bool(config["basrec"]),
        "epochs_run": int(epochs_run),
        "best_epoch": curve[best]["epoch"] if best is not None else None,
        "valid": _metrics(trainer.best_valid_result),
        "test": _metrics(test_result),
        "curve": curve,
        "wall_s": {"train_and_valid": train_s, "test": test_s,
                   "per_epoch_incl_valid": train_s / max(epochs_run, 1)},
        "checkpoint": trainer.saved_model_file,
    }
    del net, trainer
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return record, data


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
    log=print,
):
    """Run stage 1, then (a) plain and (b) BASRec from its checkpoint; write JSON and PNG.

    Args:
        budget: ``'reduced'``, ``'full'`` or a dict with the keys of :data:`BUDGETS` entries.
        overrides: extra config keys applied to every phase (e.g. tiny model sizes in tests).

    Returns:
        dict: the record written to ``<out_dir>/accuracy-<model>-<dataset>-<budget>.json``,
        with ``json_path`` and ``png_path`` added.
    """
    wall_start = time.perf_counter()
    dataset_name, data_root = common.resolve_dataset(dataset, data_file, data_path, cache_dir)
    out_dir = out_dir or common.DEFAULT_OUT
    checkpoint_dir = checkpoint_dir or tempfile.mkdtemp(prefix="basrec-accuracy-")
    settings = budget_settings(budget, model)
    budget_name = budget if isinstance(budget, str) else "custom"
    base = dict(COMMON_PARAMS)
    base.update(MODEL_PARAMS.get(model, {}))
    base.update({"loss_type": loss_type, "seed": seed, "data_path": data_root, "stage1_epochs": 0})
    base.update(overrides or {})
    base = common.quiet_config(base)

    def phase_config(phase, **extra):
        cfg = dict(base)
        cfg["checkpoint_dir"] = os.path.join(checkpoint_dir, phase)
        cfg.update(extra)
        return cfg

    s = settings
    log(f"[accuracy] {model} on {dataset_name}: stage 1 (plain, up to {s['stage1_epochs']} epochs)")
    t0 = time.perf_counter()
    stage1, data = _run_phase(
        "stage1", model, dataset_name,
        phase_config("stage1", basrec=False, epochs=s["stage1_epochs"], eval_step=s["stage1_eval_step"],
                     stopping_step=s["stage1_stopping_step"]),
        None, seed, s["stage1_eval_step"],
    )
    stage1["wall_s"]["total_incl_data"] = time.perf_counter() - t0
    ckpt = stage1["checkpoint"]
    log(f"[accuracy] stage 1 done: valid NDCG@10 {stage1['valid'].get('ndcg@10', float('nan')):.4f} "
        f"after {stage1['epochs_run']} epochs ({stage1['wall_s']['total_incl_data']:.0f}s)")
    runs = {}
    for phase, basrec in (("plain", False), ("basrec", True)):
        log(f"[accuracy] stage 2 {phase} from the stage-1 checkpoint (up to {s['stage2_epochs']} epochs)")
        runs[phase], _ = _run_phase(
            phase, model, dataset_name,
            phase_config(phase, basrec=basrec, pretrained_path=ckpt, epochs=s["stage2_epochs"],
                         eval_step=s["stage2_eval_step"], stopping_step=s["stage2_stopping_step"]),
            data, seed, s["stage2_eval_step"],
        )
        log(f"[accuracy] {phase}: valid NDCG@10 {runs[phase]['valid'].get('ndcg@10', float('nan')):.4f}, "
            f"test NDCG@10 {runs[phase]['test'].get('ndcg@10', float('nan')):.4f} "
            f"({runs[phase]['wall_s']['train_and_valid']:.0f}s)")

    from recbole_basrec.quick_start.quick_start import build_config

    probe = build_config(model, dataset_name, config_dict=phase_config("basrec", basrec=True))
    basrec_params = {k: probe[k] for k in ("n_pairs", "n_whole_level", "beta", "rate_min", "rate_max",
                                             "rec_weight", "aml_weight", "wml_weight", "similarity_model",
                                             "sequence_windows")}
    hyper = {k: v for k, v in base.items() if k not in ("data_path", "show_progress", "state", "use_gpu")}
    hyper.update(basrec_params)
    record = {
        "job": "accuracy",
        "model": model,
        "dataset": dataset_name,
        "budget": budget_name,
        "budget_settings": settings,
        "seed": seed,
        "loss_type": loss_type,
        "environment": common.environment(),
        "protocol": (
            "stage 1 plain (early-stopped on valid NDCG@10) -> checkpoint; from it, (a) plain training "
            "continued and (b) BASRec stage 2, same seed, same epochs and patience (stopping_step counts "
            "validations); best-valid checkpoint of each tested once"
        ),
        "hyper_parameters": hyper,
        "data": {"users": int(data.dataset.user_num - 1), "items": int(data.dataset.item_num - 1),
                 "interactions": int(data.dataset.inter_num), "train_batches_per_epoch": len(data.train)},
        "stage1": {k: v for k, v in stage1.items() if k != "checkpoint"},
        "plain": {k: v for k, v in runs["plain"].items() if k != "checkpoint"},
        "basrec": {k: v for k, v in runs["basrec"].items() if k != "checkpoint"},
        "gain_basrec_over_plain": {
            "test": _gains(runs["basrec"]["test"], runs["plain"]["test"]),
            "valid": _gains(runs["basrec"]["valid"], runs["plain"]["valid"]),
        },
        "gain_basrec_over_stage1": {"test": _gains(runs["basrec"]["test"], stage1["test"])},
        "wall_s_total": time.perf_counter() - wall_start,
    }
    stem = f"accuracy-{model.lower()}-{dataset_name.lower()}-{tag or budget_name}"
    record["json_path"] = os.path.join(out_dir, stem + ".json")
    record["png_path"] = os.path.join(out_dir, stem + ".png")
    os.makedirs(out_dir, exist_ok=True)
    plot_curves(record, record["png_path"])
    common.write_json(record, record["json_path"])
    log(f"[accuracy] wrote {record['json_path']} and {record['png_path']}")
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
