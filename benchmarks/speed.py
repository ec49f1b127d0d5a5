"""Speed job: cost of a BASRec training step against the plain backbone's.

For each model and ``train_mode`` one model is built (BASRec on) and timed on the *same*
process, weights and batches with ``model.augment`` off (plain) and on (BASRec), interleaved
(plain/BASRec, then BASRec/plain, ...) after a warm-up; a step is the trainer's ``train_step``
(forward, backward, Adam).
Also measured: one full epoch of each in ``train_mode=sequence`` (an estimate from the median
step time for ``prefix`` unless ``full_epochs``), peak memory, and the build time of the
ItemCF-IUF top-1 table. BASRec runs ``1 + 2 * n_pairs`` encoder passes per step, so
``1 + 2 * n_pairs`` is the floor of the step-time ratio; the target is 5 % above it.

The job reports only what it measured on this machine; other implementations' timings (the
authors' code) are not measured here.
"""
import os
import tempfile
import time

from benchmarks import common

def _timed_step(trainer, batch):
    common.sync(trainer.device)
    t0 = time.perf_counter()
    trainer.train_step(batch)
    common.sync(trainer.device)
    return time.perf_counter() - t0


def _memory(trainer, batches, augment):
    """Peak memory of a few steps (:class:`common.PeakMemory`: CUDA's peak allocation or the peak RSS)."""
    import gc

    trainer.model.augment = augment
    gc.collect()
    with common.PeakMemory(trainer.device) as memory:
        for batch in batches:
            trainer.train_step(batch)
    return memory.record()


def _epoch(trainer, train_data, augment):
    """One full pass over ``train_data`` (data loading included), seconds."""
    trainer.model.augment = augment
    common.sync(trainer.device)
    t0 = time.perf_counter()
    for batch in train_data:
        trainer.train_step(batch)
    common.sync(trainer.device)
    return time.perf_counter() - t0


def similarity_build_time(user_ptr, items, n_items, method="ItemCF_IUF", seed=2020, repeats=3):
    """Median seconds to build the top-1 table from scratch (in-process cache cleared)."""
    from recbole_basrec.data.similarity import clear_top1_cache, load_or_build_top1

    times = []
    for _ in range(repeats):
        clear_top1_cache()
        t0 = time.perf_counter()
        load_or_build_top1(user_ptr, items, n_items, method=method, seed=seed, cache_dir=None)
        times.append(time.perf_counter() - t0)
    clear_top1_cache()
    return {"method": method, "median_s": common.median(times), "runs_s": times, "repeats": repeats}


def measure(model_name, train_mode, dataset_name, data_root, settings, log=print):
    """Time one model in one ``train_mode``; returns its record (and the loaded dataset)."""
    from recbole_basrec.quick_start import build

    cfg = dict(common.MODEL_PARAMS.get(model_name, {}))
    cfg.update({
        "basrec": True,
        "train_mode": train_mode,
        "loss_type": settings["loss_type"],
        "n_pairs": settings["n_pairs"],
        "n_whole_level": settings["n_whole_level"],
        "train_batch_size": settings["batch_size"],
        "MAX_ITEM_LIST_LENGTH": settings["max_len"],
        "seed": settings["seed"],
        "data_path": data_root,
        "checkpoint_dir": settings["checkpoint_dir"],
    })
    if model_name == "FMLPRec" and train_mode == "prefix":
        cfg["filter_causal"] = False  # the paper's filter is leak-free with a last-position loss
    cfg.update(settings.get("overrides") or {})
    t0 = time.perf_counter()
    run = build(model_name, dataset_name, config_dict=common.quiet_config(cfg))  # its trainer sets the allocator
    build_s = time.perf_counter() - t0
    config, train_data, model, trainer = run.config, run.train_data, run.model, run.trainer
    device = config["device"]
    model.train()

    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    n_needed = settings["warmup"] + settings["steps"]
    batches = []
    for batch in train_data:
        batches.append(batch.to(device))
        if len(batches) >= n_needed:
            break
    n_batches = len(train_data)

    # Memory first (max RSS only grows): plain steps, then BASRec steps on top.
    mem_batches = batches[: min(3, len(batches))]
    memory = {"plain": _memory(trainer, mem_batches, False), "basrec": _memory(trainer, mem_batches, True)}

    # Warm-up both paths, then interleave, alternating which goes first.
    for batch in batches[: settings["warmup"]]:
        for augment in (False, True):
            model.augment = augment
            trainer.train_step(batch)
    timed = batches[settings["warmup"]:] or batches
    plain, basrec = [], []
    for i, batch in enumerate(timed):
        order = (False, True) if i % 2 == 0 else (True, False)
        for augment in order:
            model.augment = augment
            (basrec if augment else plain).append(_timed_step(trainer, batch))
    plain_ms, basrec_ms = common.median(plain) * 1e3, common.median(basrec) * 1e3
    paired = common.median([b / p for p, b in zip(plain, basrec)])

    epochs = {"batches_per_epoch": n_batches, "samples_per_epoch": len(train_data.dataset)}
    measured = settings.get("measure_epochs", True) and (train_mode == "sequence" or settings["full_epochs"])
    if measured:
        epochs["plain_s"] = _epoch(trainer, train_data, False)
        epochs["basrec_s"] = _epoch(trainer, train_data, True)
        epochs["kind"] = "measured (1 full epoch each, data loading included)"
    else:
        epochs["plain_s"] = plain_ms / 1e3 * n_batches
        epochs["basrec_s"] = basrec_ms / 1e3 * n_batches
        epochs["kind"] = "estimate: median step time x batches per epoch"
    epochs["ratio"] = epochs["basrec_s"] / epochs["plain_s"]

    floor = 1 + 2 * settings["n_pairs"]
    ratio = basrec_ms / plain_ms
    record = {
        "model": model_name,
        "train_mode": train_mode,
        "step_ms": {"plain_median": plain_ms, "basrec_median": basrec_ms,
                    "plain_min": min(plain) * 1e3, "basrec_min": min(basrec) * 1e3, "n_timed": len(plain)},
        "ratio": ratio,
        "ratio_paired_median": paired,
        "ratio_floor": floor,
        "ratio_target": 1.05 * floor,
        "within_target": ratio <= 1.05 * floor,
        "epoch": epochs,
        "memory": memory,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        # Other processes on the CPU inflate small-op steps far more than big ones (thread
        # barriers), which pushes the ratio towards the op-count ratio: compare runs by load.
        "load_average_1min": {"before": load_before,
                              "after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
        "build_s": build_s,  # config, data, model and trainer
    }
    log(f"[speed] {model_name}/{train_mode}: step plain {plain_ms:.1f} ms, BASRec {basrec_ms:.1f} ms, "
        f"ratio {ratio:.2f} (floor {floor}, target {1.05 * floor:.2f}); epoch plain "
        f"{epochs['plain_s']:.1f}s, BASRec {epochs['basrec_s']:.1f}s")
    sequences = common.training_sequences(run)
    n_items = model.n_items
    del model, trainer, batches, run
    return record, (sequences, n_items)


def run_speed(
    models=("SASRec",),
    modes=("sequence", "prefix"),
    dataset="Beauty",
    batch_size=256,
    max_len=50,
    n_pairs=2,
    n_whole_level=3,
    loss_type="BCE",
    warmup=3,
    steps=20,
    full_epochs=False,
    measure_epochs=True,
    threads=None,
    similarity_repeats=3,
    seed=2020,
    data_file=None,
    data_path=None,
    cache_dir=None,
    out_dir=None,
    tag=None,
    overrides=None,
    log=print,
):
    """Run the speed job; writes ``speed-<dataset>-<device>[-tag].json`` and ``.png``.

    Returns:
        dict: the record, with ``json_path`` and ``png_path``.
    """
    import torch

    dataset_name, data_root = common.resolve_dataset(dataset, data_file, data_path, cache_dir)
    out_dir = out_dir or common.DEFAULT_OUT
    if threads:
        torch.set_num_threads(threads)
    settings = {
        "batch_size": batch_size, "max_len": max_len, "n_pairs": n_pairs, "n_whole_level": n_whole_level,
        "loss_type": loss_type, "warmup": warmup, "steps": steps, "full_epochs": full_epochs,
        "measure_epochs": measure_epochs, "seed": seed,
        "checkpoint_dir": tempfile.mkdtemp(prefix="basrec-speed-"), "overrides": overrides,
    }
    device = "gpu" if torch.cuda.is_available() else "cpu"
    stem = f"speed-{dataset_name.lower()}-{device}" + (f"-{tag}" if tag else "")
    os.makedirs(out_dir, exist_ok=True)
    common.saving(f"{os.path.join(out_dir, stem + '.json')} (every finished measurement, marked incomplete)")
    results, sim_input, similarity = [], None, None
    for model_name in models:
        for mode in modes:
            record, sim_input = measure(model_name, mode, dataset_name, data_root, settings, log)
            results.append(record)
            # A partial record after every measurement: a killed run keeps what it measured.
            partial = _record(dataset_name, settings, results, similarity)
            partial["complete"] = False
            common.write_json(partial, os.path.join(out_dir, stem + ".json"))
    if sim_input is not None and similarity_repeats > 0:
        (user_ptr, items), n_items = sim_input
        similarity = similarity_build_time(user_ptr, items, n_items, seed=seed, repeats=similarity_repeats)
        log(f"[speed] ItemCF_IUF top-1 table: {similarity['median_s']:.2f}s (median of {similarity_repeats})")
    record = _record(dataset_name, settings, results, similarity)
    record["complete"] = True
    record["json_path"] = os.path.join(out_dir, stem + ".json")
    record["png_path"] = os.path.join(out_dir, stem + ".png")
    plot_speed(record, record["png_path"])
    common.write_json(record, record["json_path"])
    log(f"[speed] wrote {record['json_path']} and {record['png_path']}")
    return record


def _record(dataset_name, settings, results, similarity):
    return {
        "job": "speed",
        "dataset": dataset_name,
        "environment": common.environment(),
        "settings": {k: v for k, v in settings.items() if k != "checkpoint_dir"},
        "method": (
            "same model, process and batches; model.augment toggles BASRec; step = the trainer's train_step "
            "(forward, backward, Adam); memory = common.PeakMemory over 3 steps; warm-up then interleaved plain/BASRec with alternating order; medians reported"
        ),
        "results": results,
        "similarity_build": similarity,
    }


def plot_speed(record, path):
    plt = common.pyplot()
    results = record["results"]
    labels = [f"{r['model']}\n{r['train_mode']}" for r in results]
    x = range(len(results))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(8, 2.6 * len(results) + 3), 4.2))
    width = 0.38
    plain = [r["step_ms"]["plain_median"] for r in results]
    basrec = [r["step_ms"]["basrec_median"] for r in results]
    ax1.bar([i - width / 2 for i in x], plain, width, label="plain", color="tab:blue")
    ax1.bar([i + width / 2 for i in x], basrec, width, label="BASRec", color="tab:red")
    for i, r in enumerate(results):
        floor_ms = r["step_ms"]["plain_median"] * r["ratio_floor"]
        ax1.hlines(floor_ms, i + 0.02, i + width * 1.1, colors="k", linestyles="--",
                   label="floor (1+2·n_pairs)×plain" if i == 0 else None)
        ax1.text(i + width / 2, basrec[i], f"×{r['ratio']:.2f}", ha="center", va="bottom", fontsize=8)
    ax1.set_xticks(list(x))
    ax1.set_xticklabels(labels, fontsize=8)
    ax1.set_ylabel("median training step (ms)")
    s = record["settings"]
    ax1.set_title(f"{record['dataset']}: batch {s['batch_size']}, L={s['max_len']}, n_pairs={s['n_pairs']}, "
                  f"n_whole_level={s['n_whole_level']}, {s['loss_type']}", fontsize=9)
    ax1.legend(fontsize=8)
    ratios = [r["ratio"] for r in results]
    ax2.bar(list(x), ratios, 0.5, color="tab:purple", label="BASRec / plain (step)")
    if results:
        floor = results[0]["ratio_floor"]
        ax2.axhline(floor, color="k", ls="--", label=f"floor {floor}")
        ax2.axhline(1.05 * floor, color="tab:green", ls=":", label=f"target {1.05 * floor:.2f}")
    ax2.set_xticks(list(x))
    ax2.set_xticklabels(labels, fontsize=8)
    ax2.set_ylabel("ratio")
    env = record["environment"]
    ax2.set_title(f"{env['device']}, {env['torch_threads']} threads, torch {env['torch']}", fontsize=9)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
