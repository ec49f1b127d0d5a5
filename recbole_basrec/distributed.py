"""Training on several processes with torch.distributed: one per GPU (NCCL) or per CPU slot (gloo).

RecBole's own DDP path is used: ``local_rank`` in the config makes ``Config._init_device`` join
a process group (patched in :mod:`recbole_basrec.compat` for gloo and torchrun), the data
loaders shard with a ``DistributedSampler`` and the trainer wraps the model in
``DistributedDataParallel`` (what our trainer adds is in :mod:`recbole_basrec.trainer.distributed`).
This module is the launch: the runner's ``--nproc``, ``--world_size``, ``--ip``, ``--port``,
``--offset`` and the torchrun environment, and the spawned processes of one machine.

Conventions: ``train_batch_size`` is the global batch (RecBole splits it: each of N processes
trains on ``train_batch_size / N`` rows per step) and DDP averages gradients, so one step
equals a single process's step on the global batch and ``learning_rate`` needs no scaling.
"""
import glob
import os
import signal
import time

import torch
import torch.distributed as dist

from recbole_basrec.compat import ddp_backend

#: Keys of the launch, RecBole's names (``run(..., nproc, world_size, ip, port, group_offset)``).
LAUNCH_KEYS = ("nproc", "world_size", "ip", "port", "offset")
#: Seconds the launcher waits after Ctrl-C for the processes to stop before killing them.
_STOP_GRACE_S = 10


# ---------------------------------------------------------------------------- launch settings
def torchrun_env(environ=None):
    """The launch keys from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
    LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), or None outside torchrun."""
    env = os.environ if environ is None else environ
    if "LOCAL_RANK" not in env or "WORLD_SIZE" not in env:
        return None
    local_rank, global_rank = int(env["LOCAL_RANK"]), int(env.get("RANK", env["LOCAL_RANK"]))
    return {
        "local_rank": local_rank,
        "world_size": int(env["WORLD_SIZE"]),
        "nproc": int(env.get("LOCAL_WORLD_SIZE", env["WORLD_SIZE"])),
        "offset": global_rank - local_rank,
        "ip": env.get("MASTER_ADDR", "localhost"),
        "port": str(env.get("MASTER_PORT", "5678")),
    }


def launch_settings(nproc=None, world_size=None, ip=None, port=None, offset=None, environ=None):
    """What the runner's ``--nproc``, ``--world_size``, ``--ip``, ``--port``, ``--offset`` (or
    torchrun) ask for: None for one process, else a dict of RecBole's launch keys plus
    ``torchrun`` (True: this process is one rank, started by torchrun). Bad values raise
    ValueError with the fix."""
    given = {k: v for k, v in dict(nproc=nproc, world_size=world_size, ip=ip, port=port, offset=offset).items()
             if v is not None}
    from_env = torchrun_env(environ)
    if from_env is not None:
        if given:
            raise ValueError(f"--{sorted(given)[0]} cannot be combined with torchrun, which starts the processes "
                             "and sets their ranks: drop it (torchrun's --nproc_per_node and --nnodes set them).")
        if from_env["world_size"] <= 1:
            return None
        return {**from_env, "torchrun": True}
    nproc = 1 if nproc is None else nproc
    world = nproc if world_size in (None, -1) else world_size
    offset = 0 if offset is None else offset
    for key, value, low in (("nproc", nproc, 1), ("world_size", world, 1), ("offset", offset, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"--{key} must be an integer >= {low}, got {value!r}.")
    if offset + nproc > world:
        raise ValueError(f"--offset ({offset}) + --nproc ({nproc}) is more than --world_size ({world}): "
                         f"this machine's ranks must lie in 0..{world - 1}; set --world_size to the total "
                         f"number of processes on all machines.")
    if world == 1:
        return None
    port = "5678" if port is None else str(port)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--port must be a TCP port number, got {port!r}.")
    return {"nproc": nproc, "world_size": world, "ip": ip or "localhost", "port": port, "offset": offset,
            "torchrun": False}


def describe(settings, config):
    """The runner's one line about the launch."""
    machines = "" if settings["nproc"] == settings["world_size"] else \
        f" ({settings['nproc']} on this machine, ranks {settings['offset']}..{settings['offset'] + settings['nproc'] - 1})"
    return f"training on {settings['world_size']} processes{machines} with the {ddp_backend(config)} backend"


def default_gpu_ids(config_dict, nproc):
    """One GPU per process: ``gpu_id`` 0..nproc-1 unless the user named GPUs (RecBole's default
    ``'0'`` would give every process the same one)."""
    if "gpu_id" not in config_dict and torch.cuda.is_available() and config_dict.get("use_gpu", True):
        return {**config_dict, "gpu_id": ",".join(str(i) for i in range(nproc))}
    return config_dict


# ---------------------------------------------------------------------------- spawn launcher
class RankFailed(Exception):
    """A training process ended abnormally; the message says which and how to continue."""


def _plain_result(result):
    return {k: (dict(v) if hasattr(v, "items") else v) for k, v in result.items()}


def _peer_failure(error):
    """Whether ``error`` is a collective failing because another rank stopped."""
    if isinstance(error, getattr(dist, "DistError", ())):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(w in text for w in ("gloo", "Gloo", "NCCL", "Connection closed"))


def _worker(local_rank, queue, run, interrupted, model, dataset, config_file_list, config_dict, resume_file):
    """One rank of ``spawn``: ``run(...)`` trains, and rank 0 sends the result (or every rank its
    error). Exit codes: 0, 2 bad input, 130 interrupted, 1 a peer stopped (the launcher says which)."""
    import sys
    import traceback

    import recbole_basrec

    recbole_basrec.setup()  # the package sets itself up only outside the runner's command

    stopping = []

    def on_sigint(signum, frame):
        if not stopping:  # the terminal's Ctrl-C and the launcher's may both arrive: act on one
            stopping.append(signum)
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    config_dict = {**config_dict, "local_rank": local_rank}
    global_rank = config_dict["offset"] + local_rank
    try:
        result = run(model, dataset, config_file_list=config_file_list, config_dict=config_dict,
                     resume_file=resume_file)
    except interrupted as stop:
        queue.put(("interrupted", global_rank, str(stop)))
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except (ValueError, FileNotFoundError, NotImplementedError) as error:
        queue.put(("error", global_rank, str(error)))
        sys.exit(2)
    except Exception as error:
        if stopping:
            sys.exit(130)
        if not _peer_failure(error):  # a bug: its traceback is what helps
            traceback.print_exc()
        sys.exit(1)
    if global_rank == 0:
        queue.put(("result", 0, _plain_result(result)))


def newest_last_checkpoint(checkpoint_dir, since):
    """The ``-last.pth`` file a run started at ``since`` (epoch seconds) wrote last, or None."""
    files = [f for f in glob.glob(os.path.join(str(checkpoint_dir), "*-last.pth")) if os.path.getmtime(f) >= since]
    return max(files, key=os.path.getmtime) if files else None


def newest_checkpoint(checkpoint_dir, since):
    """The best-model checkpoint (not ``-last.pth``) a run started at ``since`` wrote last, or None."""
    files = [f for f in glob.glob(os.path.join(str(checkpoint_dir), "*.pth"))
             if not f.endswith("-last.pth") and os.path.getmtime(f) >= since]
    return max(files, key=os.path.getmtime) if files else None


def spawn(run, interrupted, model, dataset, config_file_list, config_dict, settings, resume_file=None,
          checkpoint_dir="saved"):
    """Run ``settings['nproc']`` ranks of this machine (torch's spawn, as RecBole's ``run``), each
    calling ``run(model, dataset, ...)`` (``run_recbole_basrec``), and return rank 0's result dict
    (None on a machine without rank 0).

    Ctrl-C stops every rank (they get SIGINT; any still running after a grace period are
    killed) and raises ``interrupted`` (the quick start's ``Interrupted``); a rank that dies stops
    the others and raises ``RankFailed`` naming it and the checkpoint to resume from; a bad input
    in any rank raises its ValueError."""
    import logging

    import torch.multiprocessing as mp

    # torch logs each rank it stops after a failure; our one line says it instead
    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)
    config_dict = {**config_dict, **{k: settings[k] for k in LAUNCH_KEYS}}
    queue = mp.get_context("spawn").SimpleQueue()
    started = time.time()
    context = mp.start_processes(
        _worker, args=(queue, run, interrupted, model, dataset, config_file_list, config_dict, resume_file),
        nprocs=settings["nproc"], join=False, start_method="spawn",
    )
    messages = []

    def drain():
        while not queue.empty():
            messages.append(queue.get())

    failure = None
    try:
        while True:
            try:
                if context.join(timeout=0.5, grace_period=5):
                    break
            except (mp.ProcessExitedException, mp.ProcessRaisedException) as error:  # the others are stopped
                failure = error
                break
            finally:
                drain()
    except KeyboardInterrupt:
        _stop(context)
        drain()
        said = [m[2] for m in messages if m[0] == "interrupted" and m[1] == 0]
        if said and "--resume=" in said[0]:  # rank 0's own account
            raise interrupted(said[0]) from None
        best = newest_checkpoint(checkpoint_dir, started) or "none yet"
        last = newest_last_checkpoint(checkpoint_dir, started)
        resume = f"; continue with --resume={last}" if last else ""
        raise interrupted(f"interrupted: best checkpoint so far: {best}{resume}") from None
    drain()
    for kind, _, text in messages:
        if kind == "error":
            raise ValueError(text)
    for kind, _, text in messages:
        if kind == "interrupted":
            raise interrupted(text)
    if failure is not None:
        how = f"ended by {signal.Signals(-failure.exit_code).name}" if getattr(failure, "exit_code", 0) < 0 \
            else f"failed ({type(failure).__name__}: {str(failure).strip().splitlines()[-1]})"
        last = newest_last_checkpoint(checkpoint_dir, started)
        resume = f"continue with --resume={last} and the same --nproc" if last else "no epoch had finished"
        raise RankFailed(f"process {settings['offset'] + failure.error_index} of {settings['world_size']} {how}; "
                         f"every process was stopped; {resume}.")
    results = [text for kind, _, text in messages if kind == "result"]
    return results[0] if results else None


def _stop(context):
    """After Ctrl-C: SIGINT to every rank still running (a terminal has sent it already; a
    ``kill -INT`` of the launcher alone has not), then SIGKILL to any that do not stop: a rank
    can be blocked in a collective its stopped peer never joins. Checkpoints are written
    atomically, so nothing written is lost."""
    for process in context.processes:
        if process.is_alive():
            try:
                os.kill(process.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + _STOP_GRACE_S
    for process in context.processes:
        while True:
            try:
                process.join(max(deadline - time.monotonic(), 0))
                break
            except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
                deadline = 0
        if process.is_alive():
            process.kill()
            process.join()
