"""Test-time augmentation on trained models: no augmentation vs TNoise vs TMask, valid and test,
with the evaluation time each costs. The trained models are the BASRec authors' stage-1
checkpoints (``../shared/data/reference/``), or any checkpoint given with ``--checkpoint``.

    python -m benchmarks tta --models SASRec GRU4Rec

Valid scores are given so that TTA settings can be chosen without looking at the test.
"""
import os
import time

from benchmarks import common
from benchmarks.accuracy import reference_checkpoint

#: variant -> its settings over ``BASE``: the authors' Beauty settings in full (``-authors``: TNoise
#: U(0.5, 1) on 7 inputs + 5 outputs, TMask rate 0.5 on 10 inputs, the original input not averaged
#: in), and cheaper ones with 5 input views averaged with the original.
BASE = {"tta": "none", "tta_views": 5, "tta_output_views": 0, "tta_noise": [0.5, 1.0], "tta_mask_rate": 0.5,
        "tta_keep_original": True}
VARIANTS = {
    "none": {},
    "tnoise": {"tta": "tnoise"},
    "tnoise-0.1": {"tta": "tnoise", "tta_noise": [0.0, 0.1]},
    "tnoise-authors": {"tta": "tnoise", "tta_views": 7, "tta_output_views": 5, "tta_keep_original": False},
    "tmask": {"tta": "tmask"},
    "tmask-0.2": {"tta": "tmask", "tta_mask_rate": 0.2},
    "tmask-authors": {"tta": "tmask", "tta_views": 10, "tta_keep_original": False},
}


def run_tta(models, dataset="Beauty", checkpoint=None, variants=None, seed=2020, data_file=None, data_path=None,
            cache_dir=None, out_dir=common.DEFAULT_OUT, tag=None):
    from recbole_basrec.quick_start import build

    dataset_name, data_path = common.resolve_dataset(dataset, data_file, data_path, cache_dir)
    stem = f"tta-{dataset_name.lower()}" + (f"-{tag}" if tag else "")
    json_path = os.path.join(out_dir, f"{stem}.json")
    common.saving(f"{json_path} (every finished variant; the same command runs the rest)")
    record = {"job": "tta", "dataset": dataset_name, "seed": seed,
              "protocol": "full ranking, history masked, leave-one-out; TTA on valid and test inputs",
              "environment": common.environment(), "runs": []}
    # Runs of other models or variants already in the file are kept (each with its own environment).
    earlier = common.read_json(json_path)
    if earlier and earlier.get("seed") == seed:
        record["runs"] = [dict(run, environment=run.get("environment", earlier["environment"]))
                          for run in earlier["runs"]]
    for model in models:
        path = checkpoint or reference_checkpoint(model, dataset_name)
        if not path or not os.path.isfile(path):
            raise common.DatasetMissing(f"no trained {model} checkpoint for {dataset_name} (pass --checkpoint)")
        run = build(model, dataset_name, config_dict=common.quiet_config(
            {"data_path": data_path, "seed": seed, "basrec": False}))
        config, trainer, valid, test = run.config, run.trainer, run.valid_data, run.test_data
        trainer.load_weights(path)
        for name in variants or VARIANTS:
            settings = {**BASE, **VARIANTS[name]}
            for key, value in settings.items():
                config[key] = value
            start = time.perf_counter()
            valid_result = trainer.evaluate(valid, load_best_model=False)
            valid_s = time.perf_counter() - start
            start = time.perf_counter()
            test_result = trainer.evaluate(test, load_best_model=False)
            test_s = time.perf_counter() - start
            run = {"model": model, "variant": name, "settings": settings, "checkpoint": path,
                   "valid": common.metrics_of(valid_result), "test": common.metrics_of(test_result),
                   "valid_eval_s": valid_s, "test_eval_s": test_s, "environment": record["environment"]}
            record["runs"] = [r for r in record["runs"] if (r["model"], r["variant"]) != (model, name)] + [run]
            common.write_json(record, json_path)  # after every variant: an interrupted job keeps its runs
            common.say(f"[tta] {model} {name}: valid NDCG@10 {run['valid']['ndcg@10']:.4f}, "
                       f"test NDCG@10 {run['test']['ndcg@10']:.4f}, test evaluation {test_s:.1f} s")
    common.say(f"[tta] wrote {json_path}")
    return record
