"""Plain vs BASRec for RecBole sequential models (any served one), at a reduced CPU budget, with the
accuracy job's two-stage protocol:

    python -m benchmarks models --models NARM STAMP LightSANs SHAN FOSSIL SINE --stage1_epochs 6 --stage2_epochs 10

Per model: a plain stage 1 of ``stage1_epochs``, then from its best-validation weights (a) plain
training continued and (b) BASRec, ``stage2_epochs`` each, same seed and data order; each arm's
best-validation epoch is tested once, history masked (:func:`~benchmarks.accuracy.run_accuracy`
does the phases). ``SETTINGS`` hold what is shared by every model, :func:`model_settings` what
differs (width keys, loss, item features); ``--set KEY=VALUE`` overrides both.

Finished models are kept in the JSON and finished phases in ``saved/<stem>/<model>/``: running the
same command again resumes. Two processes may share one JSON with disjoint ``--models`` lists: each keeps
the models the other wrote.
"""
import os

from benchmarks import common

#: Shared by every model and arm; each model's other keys are RecBole's defaults for it, plus
#: :func:`model_settings`.
SETTINGS = {
    "train_mode": "prefix",
    "MAX_ITEM_LIST_LENGTH": 50,
    "train_batch_size": 256,
    "learning_rate": 0.001,
    "valid_metric": "NDCG@10",
    "eval_mask_history": True,
    "valid_start_epoch": 0,  # every epoch validated (the SASRec / GRU4Rec presets start at 101)
    "n_pairs": 1,
    "n_whole_level": 1,
}
#: The job's default loss (the authors'); CE would score all items once per view and round.
DEFAULT_LOSS = "BCE"
#: Models that train with some losses only, as served: the first is used when the job's is not one.
SERVED_LOSSES = {"CORE": ("CE",), "BERT4Rec": ("CE", "BPR")}
#: Every model gets this width on whichever of ``WIDTH_KEYS`` its RecBole defaults have (setting a
#: key a model does not read is refused by the strict key check).
WIDTH = 64
WIDTH_KEYS = ("embedding_size", "hidden_size")
#: Models that read item features (``selected_features``): the job loads those fields of the dataset's
#: ``.item`` file.
FEATURE_MODELS = ("SASRecF", "FDSA", "GRU4RecF")
#: The budget is the epochs: no early stop within them; the best-validation epoch is tested.
NO_EARLY_STOP = 100


def model_settings(model, loss_type=DEFAULT_LOSS, overrides=None):
    """The keys the job sets for ``model`` beyond :data:`SETTINGS`: its width keys, its loss and, for a
    feature model, the item fields to load. ``overrides`` (``--set``) win over all of them."""
    from recbole_basrec.config import default_config_dict

    overrides = overrides or {}
    defaults = default_config_dict(model)
    settings = {key: WIDTH for key in WIDTH_KEYS if key in defaults}
    accepted = SERVED_LOSSES.get(model)
    settings["loss_type"] = loss_type if accepted is None or loss_type in accepted else accepted[0]
    if model in FEATURE_MODELS:
        features = list(overrides.get("selected_features", defaults["selected_features"]))
        load_col = dict(defaults.get("load_col") or {"inter": ["user_id", "item_id", "timestamp"]})
        load_col["item"] = ["item_id", *features]
        settings.update(selected_features=features, load_col=load_col)
    settings.update(overrides)
    return settings


def item_fields(dataset, data_path):
    """Field names of ``dataset``'s ``.item`` file (RecBole's bundled copy for ml-100k); ``[]`` if it has none."""
    import recbole

    candidates = [os.path.join(data_path, dataset, f"{dataset}.item")]
    if dataset in common.RECBOLE_BUILTIN:
        candidates.append(os.path.join(os.path.dirname(recbole.__file__), "dataset_example", dataset,
                                       f"{dataset}.item"))
    for path in candidates:
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return [column.split(":")[0] for column in f.readline().rstrip("\n").split("\t")]
    return []


def _check_features(models, per_model, dataset, data_path):
    fields = None
    for model in models:
        if model not in FEATURE_MODELS:
            continue
        fields = item_fields(dataset, data_path) if fields is None else fields
        missing = [f for f in per_model[model]["selected_features"] if f not in fields]
        if missing:
            have = f"its .item fields are {', '.join(fields)}" if fields else "it has no .item file"
            raise common.BadRequest(f"{model} reads item features {missing}, which {dataset} lacks ({have}); "
                                    "use --dataset ml-100k, or --set selected_features=[<field>]")


def _arm(phase):
    keep = ("epochs_run", "best_epoch", "valid", "test", "curve")
    arm = {k: phase[k] for k in keep}
    arm["s_per_epoch_incl_valid"] = phase["wall_s"]["per_epoch_incl_valid"]
    arm["test_eval_s"] = phase["wall_s"]["test"]
    return arm


def _saved_models(json_path):
    """The models a JSON written by :func:`run_models` holds (none if there is no file yet)."""
    return common.read_json(json_path, missing={}).get("models", [])


def run_models(models, dataset="Beauty", stage1_epochs=4, stage2_epochs=2, seed=2020, data_file=None,
               data_path=None, cache_dir=None, out_dir=common.DEFAULT_OUT, tag=None, overrides=None,
               loss_type=DEFAULT_LOSS, log=common.say):
    """Run the protocol for each model; returns the record written to ``models-<dataset>-<tag>.json``.

    ``overrides`` are config keys set for every model and arm after the job's own (``--set``);
    ``loss_type`` is every model's but those of :data:`SERVED_LOSSES`.
    """
    from benchmarks.accuracy import run_accuracy

    if stage1_epochs < 1 or stage2_epochs < 1:
        raise common.BadRequest(f"stage1_epochs and stage2_epochs must be >= 1, got {stage1_epochs} and "
                                f"{stage2_epochs}")
    overrides = dict(overrides or {})
    if not models:
        raise common.BadRequest("models: name at least one model, e.g. --models NARM")
    dataset_name, data_path = common.resolve_dataset(dataset, data_file, data_path, cache_dir)
    per_model = {model: model_settings(model, loss_type, overrides) for model in models}
    _check_features(models, per_model, dataset_name, data_path)
    stem = f"models-{dataset_name.lower()}-{tag or f'{stage1_epochs}+{stage2_epochs}ep'}"
    json_path = os.path.join(out_dir, f"{stem}.json")
    common.saving(f"{json_path} (every finished model) and the running model's phases in saved/{stem}/: "
                  "run the same command again to resume")
    work_dir = os.path.join(common.REPO_ROOT, "saved", stem)
    settings = {**SETTINGS, **overrides}
    record = {"job": "models", "dataset": dataset_name, "stage1_epochs": stage1_epochs,
              "stage2_epochs": stage2_epochs, "seed": seed, "loss_type": loss_type, "settings": settings,
              "protocol": f"plain stage 1 ({stage1_epochs} epochs), then from its best-validation weights "
                          f"(a) plain continued and (b) BASRec, {stage2_epochs} epochs each; full ranking, history masked, leave-one-out; best-validation epoch of each arm tested once",
              "environment": common.environment(), "models": []}
    saved = common.read_json(json_path, missing={})
    for key in ("settings", "seed", "loss_type"):
        if saved.get("models") and saved.get(key, record[key]) != record[key]:
            raise common.BadRequest(f"{json_path} holds models run with {key} {saved.get(key)}, not {record[key]}: "
                                    "give this run another --tag")
    record["models"] = saved.get("models", [])  # resume: keep the finished models
    done = {m["backbone"] for m in record["models"]}
    budget = {"name": stem, "stage1_epochs": stage1_epochs, "stage1_eval_step": 1,
              "stage1_stopping_step": NO_EARLY_STOP, "stage2_epochs": stage2_epochs,
              "stage2_eval_step": 1, "stage2_stopping_step": NO_EARLY_STOP}
    for model in models:
        if model in done:
            log(f"[models] {model}: already in {json_path}, skipped")
            continue
        model_dir = os.path.join(work_dir, model)
        config = {**SETTINGS, **per_model[model]}
        result = run_accuracy(model=model, dataset=dataset_name, budget=budget, seed=seed,
                              loss_type=config["loss_type"], data_path=data_path, out_dir=model_dir,
                              checkpoint_dir=model_dir, overrides=config, log=log)
        entry = {"backbone": model, "model": result["basrec"]["model"], "settings": per_model[model],
                 "plain": _arm(result["plain"]), "basrec": _arm(result["basrec"]),
                 "stage1": _arm(result["stage1"]), "gain_test": result["gain_basrec_over_plain"]["test"]}
        # keep the models another process (a disjoint --models list) finished meanwhile
        mine = {m["backbone"] for m in record["models"]} | {model}
        record["models"] += [m for m in _saved_models(json_path) if m["backbone"] not in mine]
        record["models"].append(entry)
        log(f"[models] {model}: test NDCG@10 plain {entry['plain']['test']['ndcg@10']:.4f}, "
            f"BASRec {entry['basrec']['test']['ndcg@10']:.4f}")
        common.write_json(record, json_path)
    plot(record, os.path.join(out_dir, f"{stem}.png"))
    log(f"[models] wrote {json_path}")
    record["json_path"] = json_path
    return record


def plot(record, path):
    plt = common.pyplot()
    backbones = [m["backbone"] for m in record["models"]]
    fig, ax = plt.subplots(figsize=(1.2 * len(backbones) + 2, 3.5))
    xs = range(len(backbones))
    ax.bar([x - 0.2 for x in xs], [m["plain"]["test"]["ndcg@10"] for m in record["models"]], 0.4, label="plain")
    ax.bar([x + 0.2 for x in xs], [m["basrec"]["test"]["ndcg@10"] for m in record["models"]], 0.4, label="BASRec")
    ax.set_xticks(list(xs), backbones)
    ax.set_ylabel("test NDCG@10 (history masked)")
    ax.set_title(f"{record['dataset']}: stage 1 {record['stage1_epochs']} epochs, "
                 f"then {record['stage2_epochs']} per arm (prefix training)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
