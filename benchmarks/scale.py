"""Scale job: cost against data size on synthetic data (``benchmarks/synthetic.py``).

``python -m benchmarks scale --points 1e4:2e5:1e4 1e5:2e6:1e5 1e6:2e7:1e5`` (users:interactions:items).
Each point runs in its own process (so its peak RSS is its own) and measures, with BASRec SASRec at
the published Beauty settings (sequence mode, BCE, n_pairs 2, n_whole_level 3, L 50, batch 256):

* ``load_s``: RecBole's dataset loading and our data preparation (``create_dataset`` +
  ``data_preparation`` inside ``quick_start.build``, model and trainer construction included, the
  similarity table too, which is also timed alone);
* ``similarity_s``: the ItemCF-IUF top-1 table from scratch (``load_or_build_top1``, no cache);
* ``epoch_s``: one stage-2 epoch, estimated as the mean of ``steps`` timed training steps (after
  ``warmup``) times the batches of an epoch (said so in the record);
* ``eval_s``: one full-ranking validation with history masking, estimated the same way from
  ``eval_batches`` batches of the trainer's ``score_batch`` (history masked, as evaluation
  scores) and a top-20, times the batches of the validation set;
* ``peak_rss_mib``: the point's peak resident memory (``common.PeakMemory``); ``rss_mib``: the
  peak so far after generating and after loading.

The record fits log-log slopes of each cost against interactions (``slopes``; also over the points
with the largest item count alone, ``slopes_fixed_items``) and plots them
(``results/scale-cpu.png``). ``--resume`` keeps the points already in the record (same request and
settings) and measures the rest.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchmarks import common


def _point_main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--interactions", type=int, required=True)
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--eval_batches", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work_dir", required=True)
    parser.add_argument("--overrides", default="{}")
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]
    with common.PeakMemory("cpu") as whole:
        out = _measure_point(args)
    out["peak_rss_mib"] = whole.peak_mib
    print("RESULT " + json.dumps(out), flush=True)


def _measure_point(args):
    import torch

    import recbole_basrec

    recbole_basrec.setup()
    from benchmarks.synthetic import write_synthetic
    from recbole_basrec.data.dataset import drop_last_items
    from recbole_basrec.data.similarity import clear_top1_cache, load_or_build_top1
    from recbole_basrec.quick_start import build

    torch.set_num_threads(args.threads)
    name = "synthetic"
    t0 = time.perf_counter()
    with common.PeakMemory("cpu") as generating:
        data = write_synthetic(args.work_dir, name, args.users, args.interactions, args.items, seed=args.seed)
    generate_s = time.perf_counter() - t0
    cfg = {
        "data_path": args.work_dir, "checkpoint_dir": os.path.join(args.work_dir, "saved"), "basrec": True,
        "train_mode": "sequence", "sequence_windows": "last", "loss_type": "BCE", "MAX_ITEM_LIST_LENGTH": 50,
        "train_batch_size": 256, "eval_batch_size": 256, "n_pairs": 2, "n_whole_level": 3, "beta": 0.4,
        "rate_min": 0.2, "rate_max": 0.71, "n_layers": 2, "n_heads": 2, "hidden_size": 64, "inner_size": 256,
        "hidden_dropout_prob": 0.1, "attn_dropout_prob": 0.1, "hidden_act": "gelu", "seed": args.seed,
        **json.loads(args.overrides),
    }
    t0 = time.perf_counter()
    with common.PeakMemory("cpu") as loading:
        run = build("SASRec", name, config_dict=common.quiet_config(cfg))
    load_s = time.perf_counter() - t0

    user_ptr, items = drop_last_items(*common.training_sequences(run))
    clear_top1_cache()
    t0 = time.perf_counter()
    load_or_build_top1(user_ptr, items, run.model.n_items, method="ItemCF_IUF", seed=args.seed, cache_dir=None)
    similarity_s = time.perf_counter() - t0
    clear_top1_cache()

    trainer = run.trainer
    it = iter(run.train_data)
    times = []
    for i in range(args.warmup + args.steps):
        try:
            t0 = time.perf_counter()
            batch = next(it)
        except StopIteration:
            break
        trainer.train_step(batch)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    step_s = sum(times) / len(times)
    train_batches = len(run.train_data)

    eval_times = []
    t0 = time.perf_counter()
    with trainer.scoring(run.valid_data):
        history_s = time.perf_counter() - t0  # the evaluation's preparation: the history on the device
        for i, batched in enumerate(run.valid_data):
            if i >= args.eval_batches + 1:
                break
            t0 = time.perf_counter()
            scores = trainer.score_batch(batched)
            torch.topk(scores, 20)
            if i >= 1:
                eval_times.append(time.perf_counter() - t0)
    eval_batch_s = sum(eval_times) / max(len(eval_times), 1)
    return {
        "users": args.users, "interactions": data["interactions"], "items": args.items, "data": data,
        "generate_s": generate_s, "load_s": load_s, "similarity_s": similarity_s,
        "step_s": step_s, "train_batches": train_batches, "epoch_s": step_s * train_batches,
        "eval_batch_s": eval_batch_s, "eval_batches": len(run.valid_data),
        "eval_s": eval_batch_s * len(run.valid_data), "history_s": history_s,
        "timed": {"train_steps": len(times), "eval_batches": len(eval_times)},
        # the peak so far after each step (the process's imports stay resident while generating)
        "rss_mib": {"after_generate": generating.peak_mib, "after_load": max(generating.peak_mib, loading.peak_mib)},
        "threads": torch.get_num_threads(), "history_masking": trainer.mask_history,
    }


def _fit_slope(xs, ys):
    import math

    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def run_scale(points, steps=10, warmup=2, eval_batches=5, threads=1, seed=0, out_dir=None, tag=None, log=print,
              resume=False):
    """Measure each point in its own process; ``resume`` keeps the points of the existing record
    measured with the same request and settings, and runs the others."""
    out_dir = out_dir or common.DEFAULT_OUT
    os.makedirs(out_dir, exist_ok=True)
    stem = "scale-cpu" + (f"-{tag}" if tag else "")
    json_path = os.path.join(out_dir, stem + ".json")
    common.saving(f"{json_path} (every finished point)")
    record = {"job": "scale", "environment": common.environment(),
              "method": ("one process per point on synthetic data (benchmarks/synthetic.py: Zipf(1.0) item "
                         "popularity, power-law lengths >= 5); BASRec SASRec, sequence mode, BCE, n_pairs 2, "
                         "n_whole_level 3, L 50, batch 256; epoch_s and eval_s are estimates: mean timed "
                         "step (or eval batch) x batches; load_s = quick_start.build (RecBole loading, our "
                         "preparation, model with its similarity table); similarity_s = the table alone"),
              "settings": {"steps": steps, "warmup": warmup, "eval_batches": eval_batches, "threads": threads,
                           "seed": seed},
              "points": [], "complete": False}
    earlier = {}
    if resume:
        previous = common.read_json(json_path, missing={}) or {}
        if previous.get("settings") == record["settings"]:
            earlier = {tuple(p["requested"]): p for p in previous.get("points", [])
                       if "requested" in p and "failed" not in p}
    for users, interactions, items in points:
        if (users, interactions, items) in earlier:
            record["points"].append(earlier[(users, interactions, items)])
            log(f"[scale] {users} users, {interactions} interactions, {items} items: kept from {json_path}")
            continue
        work = tempfile.mkdtemp(prefix="basrec-scale-")
        argv = [sys.executable, "-m", "benchmarks.scale", "point", "--users", str(users), "--interactions",
                str(interactions), "--items", str(items), "--seed", str(seed), "--steps", str(steps), "--warmup",
                str(warmup), "--eval_batches", str(eval_batches), "--threads", str(threads), "--work_dir", work]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=common.REPO_ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        shutil.rmtree(work, ignore_errors=True)
        result = next((json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")), None)
        if result is None:
            record["points"].append({"users": users, "interactions": interactions, "items": items,
                                     "failed": (proc.stderr or proc.stdout)[-2000:], "exit": proc.returncode})
            log(f"[scale] {users} users, {interactions} interactions: failed (exit {proc.returncode})")
            common.write_json(record, json_path)
            break
        result["requested"] = [users, interactions, items]
        result["wall_s"] = wall
        result["load_average_1min"] = {"before": load_before, "after": os.getloadavg()[0]}
        record["points"].append(result)
        log(f"[scale] {users} users, {result['interactions']} interactions, {items} items: load {result['load_s']:.1f}s, "
            f"similarity {result['similarity_s']:.2f}s, epoch ~{result['epoch_s']:.1f}s, eval ~{result['eval_s']:.1f}s, "
            f"peak RSS {result['peak_rss_mib']:.0f} MiB, load avg {load_before:.2f}")
        common.write_json(record, json_path)
    ok = [p for p in record["points"] if "failed" not in p]
    xs = [p["interactions"] for p in ok]
    keys = ("load_s", "similarity_s", "epoch_s", "eval_s", "peak_rss_mib")
    record["slopes"] = {key: _fit_slope(xs, [p[key] for p in ok]) for key in keys}
    # Full-rank evaluation costs users x items: also fit the points that share the largest catalogue.
    fixed = [p for p in ok if p["items"] == max(q["items"] for q in ok)] if ok else []
    record["slopes_fixed_items"] = {
        "items": fixed[0]["items"], "points": len(fixed),
        **{key: _fit_slope([p["interactions"] for p in fixed], [p[key] for p in fixed]) for key in keys},
    } if len(fixed) >= 2 else None
    record["complete"] = True
    png = os.path.join(out_dir, stem + ".png")
    plot_scale(record, png)
    record["png_path"] = png
    common.write_json(record, json_path)
    log(f"[scale] slopes vs interactions: {record['slopes']}; wrote {json_path} and {png}")
    return record


def plot_scale(record, path):
    plt = common.pyplot()
    ok = [p for p in record["points"] if "failed" not in p]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    xs = [p["interactions"] for p in ok]
    for key, label in (("load_s", "loading (RecBole + ours)"), ("similarity_s", "similarity table"),
                       ("epoch_s", "BASRec epoch (est.)"), ("eval_s", "full-rank validation (est.)")):
        slope = record["slopes"].get(key)
        ax1.loglog(xs, [p[key] for p in ok], "o-", label=f"{label}, slope {slope:.2f}" if slope else label)
    ax1.set_xlabel("interactions")
    ax1.set_ylabel("seconds")
    ax1.legend(fontsize=7)
    ax1.grid(True, which="both", alpha=0.3)
    slope = record["slopes"].get("peak_rss_mib")
    ax2.loglog(xs, [p["peak_rss_mib"] for p in ok], "o-", color="tab:purple",
               label=f"peak RSS, slope {slope:.2f}" if slope else "peak RSS")
    ax2.axhline(16 * 1024, color="tab:red", ls=":", label="16 GiB")
    ax2.set_xlabel("interactions")
    ax2.set_ylabel("MiB")
    ax2.legend(fontsize=7)
    ax2.grid(True, which="both", alpha=0.3)
    env = record["environment"]
    fig.suptitle(f"synthetic data, {record['settings']['threads']} thread(s), {env['cpu_model']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "point":
        _point_main(sys.argv[2:])
    else:
        sys.exit("usage: python -m benchmarks scale ...  (this module's 'point' is internal)")
