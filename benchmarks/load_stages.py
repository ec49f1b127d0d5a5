"""Memory of each loading stage on synthetic data (the scale job's data settings).

``python -m benchmarks.load_stages --users 1e5 --interactions 2e6 --items 1e5 [--set KEY=VALUE ...]``

Prints, for each of RecBole's and our loading stages, the process's resident memory before and
after it (``rss``) and the peak reached while it ran (``peak``, :class:`common.PeakMemory`). The
stages are observed, nothing is patched: a profile hook (``sys.setprofile``) notes when a listed
function starts and returns. Stages nest (e.g. ``data_augmentation`` runs inside
``_change_feat_format`` inside ``build``); a nested stage's peak counts in its parent's;
``peak_overall`` is the highest of them. The hook runs on every Python call, so the times are
upper bounds.
"""
import argparse
import json
import os
import sys
import tempfile
import time

from benchmarks import common

STAGES = []
_DATA = ("recbole.data", "recbole_basrec.data")
#: function name -> the modules (name prefixes) whose function of that name is a stage
WATCHED = {name: _DATA for name in (
    "_load_data", "_data_filtering", "_remap_ID_all", "_change_feat_format", "data_augmentation", "leave_one_out",
    "build", "_windowed_train_split", "_warn_about_evaluation", "training_sequences", "eval_histories",
    "sequence_windows", "create_samplers", "data_preparation")}
WATCHED["create_dataset"] = ("recbole.data", "recbole_basrec")
WATCHED["__init__"] = ("recbole_basrec.model.basrec", "recbole_basrec.trainer.trainer")
#: stage labels other than the function's name, by (module, name)
LABELS = {("recbole_basrec.model.basrec", "__init__"): "model construction",
          ("recbole_basrec.trainer.trainer", "__init__"): "trainer construction"}


class _Observer:
    """A profile hook timing and measuring every call of a :data:`WATCHED` function."""

    def __init__(self):
        self.running = []  # (frame, label, PeakMemory, start) of the open stages, innermost last

    def __call__(self, frame, event, arg):
        if event == "call":
            name = frame.f_code.co_name
            if name not in WATCHED:
                return
            module = frame.f_globals.get("__name__", "")
            if not module.startswith(WATCHED[name]):
                return
            label = LABELS.get((module, name), name)
            if self.running and self.running[-1][1] == label:  # an override calling its parent: one stage
                return
            memory = common.PeakMemory("cpu").__enter__()
            self.running.append((frame, label, memory, time.perf_counter()))
        elif event == "return" and self.running and self.running[-1][0] is frame:
            _, label, memory, start = self.running.pop()
            memory.__exit__(None, None, None)
            _record(label, time.perf_counter() - start, memory)


def _record(label, seconds, memory):
    STAGES.append({"stage": label, "s": round(seconds, 2), "rss_before_mib": round(memory.baseline_mib),
                   "rss_mib": round(memory.end_mib), "peak_mib": round(memory.peak_mib)})
    print(f"[stage] {label:32s} {seconds:8.1f}s  rss {memory.baseline_mib:8.0f} -> {memory.end_mib:8.0f} MiB"
          f"  peak {memory.peak_mib:8.0f} MiB", flush=True)


def _measured(label, fn, *args, **kwargs):
    start = time.perf_counter()
    with common.PeakMemory("cpu") as memory:
        out = fn(*args, **kwargs)
    _record(label, time.perf_counter() - start, memory)
    return out


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
    from benchmarks.synthetic import write_synthetic
    from recbole_basrec.quick_start import build

    work = args.work_dir or tempfile.mkdtemp(prefix="basrec-stages-")
    users, interactions, items = int(args.users), int(args.interactions), int(args.items)
    data = _measured("write_synthetic", write_synthetic, work, "synthetic", users, interactions, items, seed=args.seed)
    overrides = dict(kv.split("=", 1) for kv in args.overrides)
    overrides = {k: json.loads(v) if v[:1] in "0123456789-[{tn" else v for k, v in overrides.items()}
    cfg = {"data_path": work, "checkpoint_dir": os.path.join(work, "saved"), "basrec": True, "train_mode": "sequence",
           "sequence_windows": "last", "loss_type": "BCE", "MAX_ITEM_LIST_LENGTH": 50, "train_batch_size": 256,
           "eval_batch_size": 256, "n_pairs": 2, "n_whole_level": 3, "seed": args.seed, **overrides}
    observer = _Observer()
    sys.setprofile(observer)
    try:
        _measured("quick_start.build (all)", build, "SASRec", "synthetic", config_dict=common.quiet_config(cfg))
    finally:
        sys.setprofile(None)
    out = {"users": users, "interactions": data["interactions"], "items": items, "settings": overrides,
           "stages": STAGES, "peak_overall_mib": max(s["peak_mib"] for s in STAGES)}
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
