"""Cost of the loss types in ``train_mode: sequence``: ``python -m benchmarks.ce_cost [--items N ...]``.

One process, BASRec SASRec at the published Beauty settings (n_pairs 2, n_whole_level 3, L 50,
batch 256) on Beauty, the same batches for every variant: BCE (one sampled negative per slot),
CE with the exact block-wise log-sum-exp (``ce_logits_mib`` 256, the default) and CE with every
logit at once (``ce_logits_mib`` 0). Per variant: median step time of interleaved steps and the
peak RSS over a baseline while stepping (``common.PeakMemory``), plus the count of target slots per
batch, from which the logits a step would hold at once unblocked (``11 x slots x items`` floats:
the rec term, 4 views, 6 CSA rounds) is given for larger catalogues. Writes
``results/ce-cost-beauty-cpu.json``.
"""
import argparse
import json
import os
import sys
import time

from benchmarks import common

VARIANTS = {"BCE": {"loss_type": "BCE"}, "CE-blocked": {"loss_type": "CE", "ce_logits_mib": 256},
            "CE-unblocked": {"loss_type": "CE", "ce_logits_mib": 0}}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ce_cost")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=common.DEFAULT_OUT)
    args = parser.parse_args(argv)
    common.COMMAND = "python -m benchmarks.ce_cost " + " ".join(argv if argv is not None else sys.argv[1:])
    sys.argv = sys.argv[:1]
    import torch

    import recbole_basrec

    recbole_basrec.setup()
    from recbole_basrec.quick_start import build

    torch.set_num_threads(args.threads)
    name, root = common.resolve_dataset("Beauty")
    runs, base = {}, None
    for variant, keys in VARIANTS.items():
        cfg = common.quiet_config({"data_path": root, "basrec": True, "checkpoint_dir": "/tmp/basrec-ce-cost", **keys})
        base = build("SASRec", name, config_dict=cfg, data=base)
        runs[variant] = base
    batches = []
    for batch in base.train_data:
        batches.append(batch)
        if len(batches) >= args.steps + 1:
            break
    slots = [int((b["target_item_list"] > 0).sum()) if "target_item_list" in b else None for b in batches]

    times = {v: [] for v in VARIANTS}
    memory = {}
    for variant, run in runs.items():
        run.trainer.train_step(batches[0])  # warm-up
        with common.PeakMemory("cpu") as peak:
            run.trainer.train_step(batches[1])
        memory[variant] = {"rss_peak_over_baseline_mib": peak.over_baseline_mib}
    load_before = os.getloadavg()[0]
    for i, batch in enumerate(batches[1:]):
        order = list(runs) if i % 2 == 0 else list(reversed(list(runs)))
        for variant in order:
            t0 = time.perf_counter()
            runs[variant].trainer.train_step(batch)
            times[variant].append(time.perf_counter() - t0)
    n_items = base.model.n_items
    mean_slots = sum(s for s in slots if s) / max(1, len([s for s in slots if s]))
    record = {
        "job": "ce_cost", "dataset": "Beauty", "environment": common.environment(),
        "settings": {"steps": args.steps, "threads": args.threads, "n_items": n_items,
                     "mean_target_slots_per_batch": mean_slots},
        "results": {v: {"step_ms_median": common.median(times[v]) * 1e3, "step_ms": [t * 1e3 for t in times[v]],
                        **memory[v]} for v in VARIANTS},
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "unblocked_logits_gib_per_step": {str(n): 11 * mean_slots * n * 4 / 2**30 for n in (n_items, 10**5, 10**6)},
        "unblocked_logits_gib_per_step_full_windows": {str(n): 11 * 256 * 50 * n * 4 / 2**30 for n in (10**5, 10**6)},
    }
    for v in ("CE-blocked", "CE-unblocked"):
        record["results"][v]["ratio_to_BCE"] = record["results"][v]["step_ms_median"] / record["results"]["BCE"]["step_ms_median"]
    path = os.path.join(args.out, "ce-cost-beauty-cpu.json")
    common.write_json(record, path)
    print(json.dumps(record["results"], indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
