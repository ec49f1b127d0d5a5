"""Memory of each loading stage on synthetic data (the scale job's data settings).

``python -m benchmarks.load_stages --users 1e5 --interactions 2e6 --items 1e5 [--set KEY=VALUE ...]``

Wraps RecBole's and our dataset stages and prints, for each, the process's resident memory
after it (``rss``) and the peak resident memory reached while it ran (``peak``, Linux: the
peak is reset before each stage through ``/proc/self/clear_refs``). Stages nest (e.g.
``data_augmentation`` runs inside ``_change_feat_format`` inside ``build``); a nested stage's
stage's peak counts in its parent's; ``peak_overall`` is the highest of them.
"""
import argparse
import functools
import json
import os
import resource
import sys
import tempfile
import time

from benchmarks import common

STAGES = []
_OPEN = []  # the highest nested peak of each running stage


def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _timed(name, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _OPEN:
            _OPEN[-1] = max(_OPEN[-1], _status("VmHWM"))
        _reset_peak()
        before = _status("VmRSS")
        t0 = time.perf_counter()
        _OPEN.append(0.0)
        try:
            out = fn(*args, **kwargs)
        finally:
            peak = max(_OPEN.pop(), _status("VmHWM"))
        if _OPEN:
            _OPEN[-1] = max(_OPEN[-1], peak)
        STAGES.append({"stage": name, "s": round(time.perf_counter() - t0, 2), "rss_before_mib": round(before),
                       "rss_mib": round(_status("VmRSS")), "peak_mib": round(peak)})
        print(f"[stage] {name:32s} {STAGES[-1]['s']:8.1f}s  rss {before:8.0f} -> {STAGES[-1]['rss_mib']:8.0f} MiB"
              f"  peak {STAGES[-1]['peak_mib']:8.0f} MiB", flush=True)
        _reset_peak()
        return out
    return wrapper


def _wrap_method(cls, name, label=None):
    setattr(cls, name, _timed(label or name, getattr(cls, name)))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load_stages")
    parser.add_argument("--users", type=float, required=True)
    parser.add_argument("--interactions", type=float, required=True)
    parser.add_argument("--items", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", dest="overrides")
    parser.add_argument("--work_dir", default=None)
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]
    import recbole_basrec

    recbole_basrec.setup()
    import recbole.data.utils as recbole_data_utils
    from benchmarks.synthetic import write_synthetic
    from recbole_basrec.data import dataset as ours
    from recbole_basrec.quick_start import build

    cls = ours.BASRecDataset
    for name in ("_load_data", "_data_filtering", "_remap_ID_all", "_change_feat_format", "data_augmentation",
                 "leave_one_out", "build"):
        _wrap_method(cls, name)
    for name in ("_windowed_train_split", "_warn_about_evaluation"):
        if hasattr(cls, name):
            _wrap_method(cls, name)
    for name in ("training_sequences", "eval_histories", "sequence_windows"):
        if hasattr(ours, name):
            setattr(ours, name, _timed(name, getattr(ours, name)))
    recbole_data_utils.create_samplers = _timed("create_samplers", recbole_data_utils.create_samplers)
    import recbole_basrec.quick_start.quick_start as qs

    qs.create_dataset = _timed("create_dataset", qs.create_dataset)
    qs.data_preparation = _timed("data_preparation", qs.data_preparation)
    qs.get_model = lambda name, _get=qs.get_model: _timed("model construction", _get(name))
    qs.get_trainer = lambda *a, _get=qs.get_trainer: _timed("trainer construction", _get(*a))

    work = args.work_dir or tempfile.mkdtemp(prefix="basrec-stages-")
    users, interactions, items = int(args.users), int(args.interactions), int(args.items)
    data = _timed("write_synthetic", write_synthetic)(work, "synthetic", users, interactions, items, seed=args.seed)
    overrides = dict(kv.split("=", 1) for kv in args.overrides)
    overrides = {k: json.loads(v) if v[:1] in "0123456789-[{tn" else v for k, v in overrides.items()}
    cfg = {"data_path": work, "checkpoint_dir": os.path.join(work, "saved"), "basrec": True, "train_mode": "sequence",
           "sequence_windows": "last", "loss_type": "BCE", "MAX_ITEM_LIST_LENGTH": 50, "train_batch_size": 256,
           "eval_batch_size": 256, "n_pairs": 2, "n_whole_level": 3, "seed": args.seed, **overrides}
    _timed("quick_start.build (all)", build)("SASRec", "synthetic", config_dict=common.quiet_config(cfg))
    out = {"users": users, "interactions": data["interactions"], "items": items, "settings": overrides,
           "stages": STAGES, "peak_overall_mib": max([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0]
                                   + [s["peak_mib"] for s in STAGES])}
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
