"""Plain vs BASRec for stock RecBole sequential models (generic path or hand-written adapter), at a reduced
CPU budget: same data, seed, schedule and evaluation (full ranking, history masked) per arm.

    python -m recbole_basrec.benchmark models --models NARM STAMP SASRec GRU4Rec LightSANs SHAN --epochs 4

SASRec and GRU4Rec go through their hand-written adapters, the others through the generic path;
``SETTINGS`` override what differs between them (the published presets included).

Every finished arm is written to the JSON at once; running the same command again skips them.
"""
import os
import time

from recbole_basrec.benchmark import common

#: Shared by every model and arm (each model's other keys: RecBole's YAML for it).
SETTINGS = {
    "train_mode": "prefix",
    "loss_type": "BCE",  # the authors' loss; CE would score all items once per view and round
    "embedding_size": 64,
    "hidden_size": 64,
    "MAX_ITEM_LIST_LENGTH": 50,
    "train_batch_size": 256,
    "learning_rate": 0.001,
    "valid_metric": "NDCG@10",
    "eval_mask_history": True,
    "stopping_step": 100,  # the budget is the epochs; the best-validation epoch is tested
    "valid_start_epoch": 0,  # every epoch validated (the SASRec / GRU4Rec presets start at 101)
    "n_pairs": 1,
    "n_whole_level": 1,
}


def run_arm(model, dataset_name, data_path, basrec, epochs, seed, checkpoint_dir):
    """Train one arm; returns its record (metrics, wall times)."""
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    from recbole_basrec.quick_start.quick_start import build_config

    config_dict = common.quiet_config({
        **SETTINGS, "data_path": data_path, "epochs": epochs, "seed": seed, "basrec": basrec,
        "checkpoint_dir": checkpoint_dir,
    })
    config = build_config(model, dataset_name, config_dict=config_dict)
    init_seed(seed, config["reproducibility"])
    train, valid, test = data_preparation(config, create_dataset(config))
    init_seed(seed, config["reproducibility"])
    net = get_model(config["model"])(config, train._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)
    trainer.progress_sink = lambda line: common.say(f"[{model} {'basrec' if basrec else 'plain'}] {line}")
    valid_s = []
    evaluate = trainer._valid_epoch

    def timed_valid(*args, **kwargs):  # validation time, to report training time alone
        start = time.perf_counter()
        try:
            return evaluate(*args, **kwargs)
        finally:
            valid_s.append(time.perf_counter() - start)

    trainer._valid_epoch = timed_valid
    start = time.perf_counter()
    trainer.fit(train, valid, saved=True, show_progress=False)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    test_result = trainer.evaluate(test, load_best_model=True, show_progress=False)
    test_s = time.perf_counter() - start
    epochs_run = len(trainer.epoch_losses)
    return {
        "model": config["model"],
        "basrec": basrec,
        "epochs_run": epochs_run,
        "valid": common.metrics_of(trainer.best_valid_result),
        "test": common.metrics_of(test_result),
        "train_s_per_epoch": (fit_s - sum(valid_s)) / max(epochs_run, 1),
        "test_eval_s": test_s,
        "checkpoint": trainer.saved_model_file,
    }


def run_models(models, dataset="Beauty", epochs=6, seed=2020, data_file=None, data_path=None, cache_dir=None,
               out_dir=common.DEFAULT_OUT, tag=None):
    dataset_name, data_path = common.resolve_dataset(dataset, data_file, data_path, cache_dir)
    stem = f"models-{dataset_name.lower()}-{tag or f'{epochs}ep'}"
    json_path = os.path.join(out_dir, f"{stem}.json")
    record = {"job": "models", "dataset": dataset_name, "epochs": epochs, "seed": seed, "settings": SETTINGS,
              "protocol": "full ranking, history masked, leave-one-out; best-validation epoch tested",
              "environment": common.environment(), "arms": []}
    if os.path.isfile(json_path):  # resume: keep the finished arms
        record["arms"] = common.read_json(json_path).get("arms", [])
    done = {(a["backbone"], a["basrec"]) for a in record["arms"]}
    checkpoint_dir = os.path.join(common.REPO_ROOT, "saved", stem)
    for model in models:
        for basrec in (False, True):
            if (model, basrec) in done:
                continue
            common.say(f"[models] {model} {'BASRec' if basrec else 'plain'}: {epochs} epochs on {dataset_name}")
            arm = run_arm(model, dataset_name, data_path, basrec, epochs, seed, checkpoint_dir)
            record["arms"].append({"backbone": model, **arm})
            common.say(f"[models] {model} {'BASRec' if basrec else 'plain'}: test NDCG@10 {arm['test']['ndcg@10']:.4f}, "
                       f"{arm['train_s_per_epoch']:.1f} s/epoch")
            common.write_json(record, json_path)
    plot(record, os.path.join(out_dir, f"{stem}.png"))
    common.say(f"[models] wrote {json_path}")
    return record


def plot(record, path):
    plt = common.pyplot()
    backbones = list(dict.fromkeys(a["backbone"] for a in record["arms"]))
    score = {(a["backbone"], a["basrec"]): a["test"]["ndcg@10"] for a in record["arms"]}
    fig, ax = plt.subplots(figsize=(1.2 * len(backbones) + 2, 3.5))
    xs = range(len(backbones))
    ax.bar([x - 0.2 for x in xs], [score.get((b, False), 0) for b in backbones], 0.4, label="plain")
    ax.bar([x + 0.2 for x in xs], [score.get((b, True), 0) for b in backbones], 0.4, label="BASRec")
    ax.set_xticks(list(xs), backbones)
    ax.set_ylabel("test NDCG@10 (history masked)")
    ax.set_title(f"{record['dataset']}, {record['epochs']} epochs, prefix training")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
