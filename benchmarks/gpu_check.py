"""GPU check of BASRec: step time and peak memory, a stage-2 epoch, the plain/BASRec step ratio,
a TTA-free validation pass, and a 2-GPU DDP run when two GPUs exist. One summary table.

    python benchmarks/gpu_check.py                  # on a CUDA machine: Beauty, published settings
    python benchmarks/gpu_check.py --cpu            # the same path on CPU, tiny data: a smoke test

Data: ``<repo>/../shared/data/Beauty.txt`` (the paper's file), converted once into
``<repo>/dataset``; absent, the Beauty rows are skipped. Installs nothing. Exit codes: 0 (also
when skipped for want of CUDA or data), 1 a check failed.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
sys.path.insert(0, ROOT)

# The authors' SASRec-on-Beauty settings come from properties/preset/SASRec-Beauty.yaml (applied
# by dataset name); a few keys are set here so the check is quick and quiet.
QUIET = {"state": "ERROR", "show_progress": False}


def synced():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


def write_ring_dataset(root, name="tiny", n_users=1024, n_items=200, seed=0):
    """RecBole atomic file of users walking a ring of items (learnable, no download)."""
    import random

    rng = random.Random(seed)
    os.makedirs(os.path.join(root, name))
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user in range(1, n_users + 1):
        start = rng.randrange(n_items)
        lines += [f"{user}\t{(start + k) % n_items + 1}\t{k}" for k in range(rng.randint(8, 16))]
    with open(os.path.join(root, name, f"{name}.inter"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def data_source(args):
    """``(dataset, data_path, note)``: Beauty from the shared file, or tiny data for --cpu."""
    if args.cpu:
        root = tempfile.mkdtemp(prefix="gpu-check-")
        write_ring_dataset(root)
        return "tiny", root, "tiny synthetic data (CPU fallback)"
    src = args.data_file or os.path.join(SHARED, "Beauty.txt")
    if not os.path.isfile(src):
        return None, None, f"no {src}"
    from recbole_basrec.data.convert import convert

    cache = os.path.join(ROOT, "dataset")
    inter = os.path.join(cache, "Beauty", "Beauty.inter")
    if not os.path.isfile(inter) or os.path.getmtime(inter) < os.path.getmtime(src):
        convert(src, cache, name="Beauty", force=True)  # missing or older than its source
    return "Beauty", cache, f"Beauty from {src}"


def build(dataset, data_path, checkpoint_dir, **overrides):
    """``quick_start.build`` of BASRec SASRec on ``dataset``: the pipeline a run trains."""
    import recbole_basrec  # noqa: F401
    from recbole_basrec.quick_start import build as build_pipeline

    cfg = {"data_path": data_path, "checkpoint_dir": checkpoint_dir, **QUIET, **overrides}
    if dataset == "tiny":  # the preset applies to Beauty only: give tiny data the same model shape
        cfg = {"train_batch_size": 128, "train_mode": "sequence", "loss_type": "BCE", "MAX_ITEM_LIST_LENGTH": 50, "n_layers": 2,
               "n_heads": 2, "hidden_size": 64, "inner_size": 256, "n_pairs": 2, "n_whole_level": 3, **cfg}
    return build_pipeline("SASRec", dataset, config_dict=cfg)


def time_steps(trainer, batches, augment):
    trainer.model.augment = augment
    times = []
    for batch in batches:
        t0 = synced()
        trainer.train_step(batch)
        times.append(synced() - t0)
    return statistics.median(times)


def single_device_checks(dataset, data_path, rows, steps):
    import torch

    from benchmarks.common import PeakMemory

    t0 = time.perf_counter()
    run = build(dataset, data_path, tempfile.mkdtemp())
    config, trainer, train, valid = run.config, run.trainer, run.train_data, run.valid_data
    device = torch.device(config["device"])
    rows.append(("data + model", f"{time.perf_counter() - t0:.1f} s", f"{len(train)} batches of {config['train_batch_size']}, "
                 f"{config['train_mode']}, {config['loss_type']}, L={config['MAX_ITEM_LIST_LENGTH']}, {device}"))
    batches = []
    for batch in train:
        batches.append(batch.to(device))
        if len(batches) == steps + 3:
            break
    for batch in batches[:3]:  # warm-up: kernels, allocator, similarity table already built
        trainer.train_step(batch)
    timed = batches[3:] or batches
    with PeakMemory(device) as memory:
        basrec = time_steps(trainer, timed, True)
    peak = f"{memory.peak_mib:.0f} MiB" if memory.kind == "cuda" else f"{memory.peak_mib:.0f} MiB resident"
    plain = time_steps(trainer, timed, False)
    rows.append(("BASRec step", f"{basrec * 1e3:.1f} ms", f"median of {len(timed)}; peak memory {peak}"))
    rows.append(("plain step", f"{plain * 1e3:.1f} ms", f"median of {len(timed)}, same batches"))
    rows.append(("BASRec / plain", f"{basrec / plain:.2f}x", "step time ratio"))
    trainer.enable_amp = True  # RecBole's enable_amp: the step under torch.autocast
    try:
        amp = time_steps(trainer, timed, True)
        loss = float(trainer.train_step(timed[0]))
    finally:
        trainer.enable_amp = bool(config["enable_amp"])
    rows.append(("BASRec step, autocast", f"{amp * 1e3:.1f} ms", f"enable_amp's path; loss {loss:.4f} (finite: "
                 f"{loss == loss and abs(loss) != float('inf')})"))
    trainer.model.augment = True
    t0 = synced()
    for batch in train:
        trainer.train_step(batch)
    epoch = synced() - t0
    rows.append(("stage-2 epoch", f"{epoch:.1f} s", f"{len(train)} steps, data loading included"))
    t0 = synced()
    result = trainer.evaluate(valid, load_best_model=False)
    rows.append(("validation", f"{synced() - t0:.1f} s", f"full ranking, history masked; ndcg@20 {result['ndcg@20']:.4f}"))


def ddp_check(dataset, data_path, rows, cpu):
    import torch

    n_gpus = torch.cuda.device_count()
    if not cpu and n_gpus < 2:
        rows.append(("DDP, 2 processes", "skipped", f"{n_gpus} GPU(s)"))
        return
    command = [sys.executable, os.path.join(ROOT, "run_recbole_basrec.py"), "--model=SASRec", f"--dataset={dataset}",
               f"--data_path={data_path}", f"--checkpoint_dir={tempfile.mkdtemp()}", "--nproc=2", "--epochs=1",
               "--stage1_epochs=0", "--valid_start_epoch=0", "--state=ERROR", "--port=29517"]
    if cpu:
        command += ["--use_gpu=False", "--MAX_ITEM_LIST_LENGTH=20", "--hidden_size=16", "--inner_size=32",
                    "--n_layers=1", "--n_heads=1"]
    else:
        command += ["--gpu_id=0,1"]
    t0 = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    wall = time.perf_counter() - t0
    lines = proc.stdout.splitlines()
    test = [line for line in lines if line.startswith("test")]
    detail = (lines[0] if lines else "") + (f"; {test[-1][:70]}" if test else "")
    if proc.returncode != 0:
        detail = f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''}"
    rows.append(("DDP, 2 processes, 1 epoch", f"{wall:.1f} s", detail))
    return proc.returncode == 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", action="store_true", help="no GPU: run every check on CPU with tiny data")
    parser.add_argument("--data_file", default=None, help="the paper's Beauty.txt (default: ../shared/data/)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--json", default=None, help="also write the table to this JSON file")
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]  # RecBole's Config reads the command line too
    os.environ.setdefault("OMP_NUM_THREADS", "1" if args.cpu else os.environ.get("OMP_NUM_THREADS", "8"))
    import torch

    if not args.cpu and not torch.cuda.is_available():
        print("gpu_check: SKIPPED: no CUDA device (torch.cuda.is_available() is False); "
              "`--cpu` runs the same checks on CPU with tiny data")
        return 0
    dataset, data_path, note = data_source(args)
    device = "CPU" if args.cpu else f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    rows, ok = [("device", device, f"torch {torch.__version__}, {note}")], True
    if dataset is None:
        rows.append(("Beauty checks", "skipped", note))
    else:
        try:
            single_device_checks(dataset, data_path, rows, 5 if args.cpu else args.steps)
        except Exception as error:  # report in the table, keep going to the DDP row
            rows.append(("single-device checks", "FAILED", f"{type(error).__name__}: {error}"[:160]))
            ok = False
        ok = ddp_check(dataset, data_path, rows, args.cpu) is not False and ok
    width = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    print(f"{'check':<{width[0]}}  {'value':>{width[1]}}  detail")
    for name, value, detail in rows:
        print(f"{name:<{width[0]}}  {value:>{width[1]}}  {detail}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([dict(zip(("check", "value", "detail"), r)) for r in rows], f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
