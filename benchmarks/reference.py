"""Side-by-side speed of the authors' BASRec code and ours: ``python -m benchmarks speed --reference PATH``.

``PATH`` is a checkout of the authors' public code (GitHub ``KingGugu/BASRec``; see
``docs/speed.md``). Their code is never modified or copied into this repository: each run
copies ``PATH/<model>/src`` to a temporary folder, imports their modules from there and drives
them the way their ``main.py`` does, with two CPU-only differences: the stage-1 checkpoint is read
with ``map_location="cpu"`` (they saved it on CUDA), and ``gensim`` (imported by their
``models.py`` for the Item2Vec similarity, which these runs do not use) is replaced by an empty
module when it is not installed.

Every measurement is its own process (``python -m benchmarks.reference worker ...``) with the
same thread count for both implementations, run in interleaved pairs (authors/ours, then
ours/authors, ...). A worker builds its implementation's data and model at the published settings
(``properties/preset/<model>-Beauty.yaml``; for theirs the README command), loads the same stage-1
checkpoint, runs ``warmup`` training steps, then times ``steps`` steps, data loading included
(their loader's per-sequence Python augmentation and negative sampling, our batched sampling in
the model). The epoch estimate is the timed steps' mean times the batches of an epoch (both 88 on
Beauty). Peak memory is the worker's peak RSS (``ru_maxrss``), data and model included.
"""
import argparse
import ast
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import types

from benchmarks import common

#: The authors' README commands for Beauty (stage 2 from their stage-1 checkpoint).
AUTHORS_FLAGS = {
    "SASRec": ["--data_name=Beauty", "--model_idx=1", "--load_pretrain", "--beta=0.4",
               "--attention_probs_dropout_prob=0.1", "--hidden_dropout_prob=0.1", "--n_pairs=2",
               "--n_whole_level=3", "--rate_min=0.2", "--rate_max=0.71"],
    "GRU4Rec": ["--data_name=Beauty", "--load_pretrain", "--model_idx=1", "--dropout_prob=0.2",
                "--rate_min=0.2", "--rate_max=0.51"],
}
#: Their stage-1 checkpoint names under ``<model>/data/``.
AUTHORS_CHECKPOINT = {"SASRec": "M4SRec-Beauty-2.pt", "GRU4Rec": "M4SRec-Beauty-5.pt"}
#: Our copy of the same checkpoints (``<repo>/../shared/data/reference/``).
SHARED_CHECKPOINT = {"SASRec": "SASRec-Beauty-stage1.pt", "GRU4Rec": "GRU4Rec-Beauty-stage1.pt"}


def _authors_parser(main_py):
    """An ``argparse`` parser with the ``add_argument`` calls of the authors' ``main()`` (read from
    its syntax tree, so their script is not run)."""
    with open(main_py, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    parser = argparse.ArgumentParser()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument"):
            args = [ast.literal_eval(a) for a in node.args]
            kwargs = {}
            for kw in node.keywords:
                if kw.arg == "type":
                    kwargs["type"] = {"int": int, "float": float, "str": str}[kw.value.id]
                else:
                    kwargs[kw.arg] = ast.literal_eval(kw.value)
            parser.add_argument(*args, **kwargs)
    return parser


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _FirstBatches:
    """The first ``n`` batches of a DataLoader, with ``len() == n`` (their loop divides by it)."""

    def __init__(self, loader, n):
        self.loader, self.n = loader, n

    def __len__(self):
        return self.n

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i >= self.n:
                return
            yield batch


def authors_worker(reference, model, data_file, checkpoint, threads, warmup, steps, work_dir):
    """Time the authors' training loop (their ``trainer.train``) on ``warmup + steps`` batches."""
    import torch

    torch.set_num_threads(threads)
    src = os.path.join(work_dir, "src")
    shutil.copytree(os.path.join(reference, model, "src"), src, dirs_exist_ok=True)
    data_dir = os.path.join(work_dir, "data")
    os.makedirs(data_dir, exist_ok=True)
    if not os.path.exists(os.path.join(data_dir, "Beauty.txt")):
        os.symlink(os.path.abspath(data_file), os.path.join(data_dir, "Beauty.txt"))
    try:
        import gensim  # noqa: F401
    except ImportError:
        sys.modules["gensim"] = types.ModuleType("gensim")  # only their Item2Vec similarity uses it
    sys.path.insert(0, src)
    sys.argv = [os.path.join(src, "main.py")]
    import datasets as their_datasets
    import models as their_models
    import trainers as their_trainers
    import utils as their_utils
    from torch.utils.data import DataLoader, RandomSampler

    args = _authors_parser(os.path.join(src, "main.py")).parse_args(AUTHORS_FLAGS[model])
    args.data_dir = data_dir + os.sep
    args.output_dir = os.path.join(work_dir, "output") + os.sep
    args.no_cuda = True
    t_build = time.perf_counter()
    their_utils.set_seed(args.seed)
    their_utils.check_path(args.output_dir)
    args.cuda_condition = False
    args.data_file = args.data_dir + args.data_name + ".txt"
    user_seq, max_item, valid_rating_matrix, _ = their_utils.get_user_seqs(args.data_file)
    args.item_size = max_item + 2
    args.log_file = os.path.join(args.output_dir, f"{args.model_name}-{args.data_name}-{args.model_idx}.txt")
    args.train_matrix = valid_rating_matrix
    args.checkpoint_path = os.path.join(args.output_dir, "model.pt")
    args.similarity_model_path = os.path.join(args.data_dir, f"{args.data_name}_{args.similarity_model_name}_similarity.pkl")
    had_similarity = os.path.exists(args.similarity_model_path)
    t_sim = time.perf_counter()
    args.offline_similarity_model = their_models.OfflineItemSimilarity(
        data_file=args.data_file, similarity_path=args.similarity_model_path,
        model_name=args.similarity_model_name, dataset_name=args.data_name)
    similarity_s = time.perf_counter() - t_sim
    args.online_similarity_model = their_models.OnlineItemSimilarity(item_size=args.item_size)
    train_dataset = their_datasets.SASRecDataset(args, user_seq, data_type="train")
    loader = DataLoader(train_dataset, sampler=RandomSampler(train_dataset), batch_size=args.batch_size)
    net = their_models.SASRecModel(args=args) if model == "SASRec" else their_models.GRU4Rec(args=args)
    net.load_state_dict(torch.load(checkpoint, map_location="cpu"))  # the CPU edit: saved on CUDA
    trainer = their_trainers.SASRecTrainer(net, loader, None, None, args)
    build_s = time.perf_counter() - t_build
    epoch = args.pretrain_epoch  # augmentation is on from this epoch
    trainer.iteration(epoch, _FirstBatches(loader, warmup))
    t0 = time.perf_counter()
    trainer.iteration(epoch, _FirstBatches(loader, steps))
    seconds = time.perf_counter() - t0
    return {
        "step_s": seconds / steps, "batches_per_epoch": len(loader), "build_s": build_s,
        "similarity_s": similarity_s, "similarity_cached": had_similarity,
        "settings": {k: getattr(args, k) for k in ("n_pairs", "n_whole_level", "beta", "rate_min", "rate_max",
                                                     "batch_size", "max_seq_length", "seed")
                     if hasattr(args, k)},
    }


def ours_worker(model, data_root, checkpoint, threads, warmup, steps, work_dir, overrides=None):
    """Time our training step (the trainer's model, optimizer and loader) on ``warmup + steps`` batches."""
    import torch

    import recbole_basrec

    recbole_basrec.setup()
    from recbole_basrec.quick_start import build

    torch.set_num_threads(threads)
    t_build = time.perf_counter()
    cfg = common.quiet_config({"data_path": data_root, "basrec": True, "checkpoint_dir": work_dir,
                               **(overrides or {})})
    run = build(model, "Beauty", config_dict=cfg)
    if checkpoint and os.path.isfile(checkpoint):
        run.trainer.load_weights(checkpoint)
    build_s = time.perf_counter() - t_build
    net, optimizer, device = run.model, run.trainer.optimizer, run.config["device"]
    net.train()

    def steps_of(n):
        done = 0
        while done < n:
            for batch in run.train_data:
                batch = batch.to(device)
                optimizer.zero_grad(set_to_none=True)
                losses = net.calculate_loss(batch)
                loss = sum(losses) if isinstance(losses, tuple) else losses
                loss.backward()
                optimizer.step()
                done += 1
                if done >= n:
                    return

    steps_of(warmup)
    t0 = time.perf_counter()
    steps_of(steps)
    seconds = time.perf_counter() - t0
    keys = ("n_pairs", "n_whole_level", "beta", "rate_min", "rate_max", "train_batch_size",
            "MAX_ITEM_LIST_LENGTH", "seed", "loss_type", "train_mode")
    return {"step_s": seconds / steps, "batches_per_epoch": len(run.train_data), "build_s": build_s,
            "settings": {k: run.config[k] for k in keys}}


def _worker_main(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reference worker")
    parser.add_argument("--impl", choices=("authors", "ours"), required=True)
    parser.add_argument("--model", choices=tuple(AUTHORS_FLAGS), required=True)
    parser.add_argument("--reference", default=None)
    parser.add_argument("--data_file", default=None)
    parser.add_argument("--data_root", default=None)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--work_dir", required=True)
    parser.add_argument("--overrides", default="{}", help="JSON dict of our config keys")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    if args.impl == "authors":
        out = authors_worker(args.reference, args.model, args.data_file, args.checkpoint, args.threads,
                             args.warmup, args.steps, args.work_dir)
    else:
        sys.argv = sys.argv[:1]
        out = ours_worker(args.model, args.data_root, args.checkpoint, args.threads, args.warmup, args.steps,
                          args.work_dir, json.loads(args.overrides))
    import torch

    out.update({"impl": args.impl, "model": args.model, "threads": torch.get_num_threads(),
                "steps": args.steps, "warmup": args.warmup, "peak_rss_mib": _rss_mib(),
                "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]}})
    out["epoch_s"] = out["step_s"] * out["batches_per_epoch"]
    print("RESULT " + json.dumps(out, default=str), flush=True)


def _run_worker(argv, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.reference", "worker", *argv], cwd=common.REPO_ROOT,
                          env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout)[-3000:]
    raise RuntimeError(f"worker {' '.join(argv)} failed (exit {proc.returncode}):\n{tail}")


def run_reference_speed(reference, models=("SASRec", "GRU4Rec"), threads=(1, 2), pairs=3, warmup=3, steps=20,
                        data_file=None, out_dir=None, tag=None, overrides=None, log=print):
    """Interleaved authors/ours pairs per model and thread count; writes
    ``results/speed-reference-beauty-cpu[-tag].json`` and ``.png``."""
    import torch

    reference = os.path.abspath(reference)
    for model in models:
        if not os.path.isdir(os.path.join(reference, model, "src")):
            raise common.BadRequest(f"--reference {reference} has no {model}/src (a checkout of KingGugu/BASRec)")
    data_file = data_file or os.path.join(common.SHARED_DATA, "Beauty.txt")
    if not os.path.isfile(data_file):
        raise common.DatasetMissing(f"no Beauty.txt at {data_file}")
    _, data_root = common.resolve_dataset("Beauty", data_file)
    out_dir = out_dir or common.DEFAULT_OUT
    os.makedirs(out_dir, exist_ok=True)
    device = "gpu" if torch.cuda.is_available() else "cpu"
    stem = f"speed-reference-beauty-{device}" + (f"-{tag}" if tag else "")
    json_path = os.path.join(out_dir, stem + ".json")
    common.saving(f"{json_path} (every finished pair, marked incomplete)")
    shared = tempfile.mkdtemp(prefix="basrec-reference-")  # the authors' similarity pickle, built once
    record = {
        "job": "speed --reference", "dataset": "Beauty", "environment": common.environment(),
        "method": ("separate processes per measurement, same thread count (torch.set_num_threads and "
                   "OMP_NUM_THREADS), interleaved pairs with alternating order; warm-up steps, then timed "
                   "steps (data loading included); epoch_s = mean timed step x batches per epoch (an "
                   "estimate from the timed steps, not a full epoch); peak_rss_mib = the worker's ru_maxrss "
                   "(data, model and training)"),
        "settings": {"warmup": warmup, "steps": steps, "pairs": pairs, "threads": list(threads),
                     "authors_flags": {m: AUTHORS_FLAGS[m] for m in models}, "ours": "published preset "
                     "properties/preset/<model>-Beauty.yaml", "overrides": overrides or {}},
        "results": [], "complete": False,
    }
    for model in models:
        checkpoint = os.path.join(reference, model, "data", AUTHORS_CHECKPOINT[model])
        if not os.path.isfile(checkpoint) or os.path.getsize(checkpoint) < 4096:  # absent or an LFS pointer
            checkpoint = os.path.join(common.SHARED_DATA, "reference", SHARED_CHECKPOINT[model])
        for n_threads in threads:
            runs = {"authors": [], "ours": []}
            for pair in range(pairs):
                order = ("authors", "ours") if pair % 2 == 0 else ("ours", "authors")
                for impl in order:
                    work = tempfile.mkdtemp(prefix=f"basrec-{impl}-")
                    argv = ["--impl", impl, "--model", model, "--threads", str(n_threads), "--warmup", str(warmup),
                            "--steps", str(steps), "--work_dir", work, "--checkpoint", checkpoint]
                    if impl == "authors":
                        os.makedirs(os.path.join(work, "data"), exist_ok=True)
                        pkl = os.path.join(shared, "Beauty_ItemCF_IUF_similarity.pkl")
                        if os.path.isfile(pkl):
                            shutil.copy(pkl, os.path.join(work, "data"))
                        argv += ["--reference", reference, "--data_file", data_file]
                    else:
                        argv += ["--data_root", data_root, "--overrides", json.dumps(overrides or {})]
                    result = _run_worker(argv, n_threads)
                    if impl == "authors" and not os.path.isfile(os.path.join(shared, "Beauty_ItemCF_IUF_similarity.pkl")):
                        shutil.copy(os.path.join(work, "data", "Beauty_ItemCF_IUF_similarity.pkl"), shared)
                    shutil.rmtree(work, ignore_errors=True)
                    runs[impl].append(result)
                    log(f"[speed --reference] {model} {n_threads} thread(s) pair {pair + 1}/{pairs} {impl}: "
                        f"step {result['step_s'] * 1e3:.0f} ms, epoch ~{result['epoch_s']:.1f} s, "
                        f"peak RSS {result['peak_rss_mib']:.0f} MiB, load {result['load_average_1min']['before']:.2f}")
            ratios = [o["step_s"] / a["step_s"] for a, o in zip(runs["authors"], runs["ours"])]
            entry = {
                "model": model, "threads": n_threads, "runs": runs,
                "authors_epoch_s_median": common.median([r["epoch_s"] for r in runs["authors"]]),
                "ours_epoch_s_median": common.median([r["epoch_s"] for r in runs["ours"]]),
                "ratio_per_pair": ratios, "ratio_median": common.median(ratios),
                "authors_peak_rss_mib_median": common.median([r["peak_rss_mib"] for r in runs["authors"]]),
                "ours_peak_rss_mib_median": common.median([r["peak_rss_mib"] for r in runs["ours"]]),
                "target_ratio": 0.2 if model == "SASRec" else 0.3,
            }
            entry["within_target"] = entry["ratio_median"] <= entry["target_ratio"]
            record["results"].append(entry)
            common.write_json(record, json_path)
    shutil.rmtree(shared, ignore_errors=True)
    record["complete"] = True
    record["environment_end"] = {"load_average": [round(x, 2) for x in os.getloadavg()]}
    png = os.path.join(out_dir, stem + ".png")
    plot_reference(record, png)
    record["png_path"] = png
    common.write_json(record, json_path)
    log(f"[speed --reference] wrote {json_path} and {png}")
    return record


def plot_reference(record, path):
    plt = common.pyplot()
    results = record["results"]
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(results) + 2), 4))
    x = range(len(results))
    width = 0.38
    authors = [r["authors_epoch_s_median"] for r in results]
    ours = [r["ours_epoch_s_median"] for r in results]
    ax.bar([i - width / 2 for i in x], authors, width, label="authors' code", color="tab:gray")
    ax.bar([i + width / 2 for i in x], ours, width, label="recbole-basrec", color="tab:red")
    for i, r in enumerate(results):
        ax.text(i + width / 2, ours[i], f"x{r['ratio_median']:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x))
    ax.set_xticklabels([f"{r['model']}\n{r['threads']} thread(s)" for r in results], fontsize=8)
    ax.set_ylabel("stage-2 epoch on Beauty (s, estimated from timed steps)")
    ax.set_title("published settings; median of interleaved pairs", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        _worker_main(sys.argv[2:])
    else:
        sys.exit("usage: python -m benchmarks speed --reference PATH  (this module's 'worker' is internal)")
