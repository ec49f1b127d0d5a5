"""The launcher behind ``recbole-basrec --nproc=N``: one training process per rank, spawned
with torch.multiprocessing; rank 0's result is returned, a failing rank is named.

What every rank does inside the process group is in :mod:`recbole_basrec.distributed`.
"""
import glob
import os
import signal
import time

import torch.distributed as dist

from recbole_basrec.distributed import LAUNCH_KEYS

#: Seconds the launcher waits after Ctrl-C for the processes to stop before killing them.
_STOP_GRACE_S = 10

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


def _worker(local_rank, queue, model, dataset, config_file_list, config_dict, resume_file, compare=None):
    """One rank of ``spawn``: trains (or, with ``compare``, the keyword arguments of
    ``run_compare``, compares), and rank 0 sends the result (or every rank its error).
    Exit codes: 0, 2 bad input, 130 interrupted, 1 a peer stopped (the launcher says which)."""
    import sys
    import traceback

    from recbole_basrec.quick_start.quick_start import Interrupted, run_recbole_basrec

    stopping = []

    def on_sigint(signum, frame):
        if not stopping:  # the terminal's Ctrl-C and the launcher's may both arrive: act on one
            stopping.append(signum)
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    config_dict = {**config_dict, "local_rank": local_rank}
    global_rank = config_dict["offset"] + local_rank
    try:
        if compare is None:
            result = run_recbole_basrec(model, dataset, config_file_list=config_file_list, config_dict=config_dict,
                                        resume_file=resume_file)
        else:
            from recbole_basrec.quick_start.compare import run_compare

            result = run_compare(model, dataset, config_file_list=config_file_list, config_dict=config_dict,
                                 **compare)
            dist.destroy_process_group()
    except Interrupted as stop:
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


def spawn(model, dataset, config_file_list, config_dict, settings, resume_file=None, checkpoint_dir="saved",
          compare=None):
    """Run ``settings['nproc']`` ranks of this machine (torch's spawn, as RecBole's ``run``) and
    return rank 0's result dict (None on a machine without rank 0); with ``compare`` (keyword
    arguments of ``run_compare``) every rank runs that comparison instead.

    Ctrl-C stops every rank (they get SIGINT; any still running after a grace period are
    killed) and raises ``Interrupted``; a rank that dies stops the others and raises
    ``RankFailed`` naming it and the checkpoint to resume from; a bad input in any rank raises
    its ValueError."""
    # c10d logs every failed store read with C++ stack frames; the launcher's own line says what failed.
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    import logging

    import torch.multiprocessing as mp

    from recbole_basrec.quick_start.quick_start import Interrupted

    # torch logs each rank it stops after a failure; our one line says it instead
    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)
    config_dict = {**config_dict, **{k: settings[k] for k in LAUNCH_KEYS}}
    queue = mp.get_context("spawn").SimpleQueue()
    started = time.time()
    context = mp.start_processes(
        _worker, args=(queue, model, dataset, config_file_list, config_dict, resume_file, compare),
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
            raise Interrupted(said[0]) from None
        best = newest_checkpoint(checkpoint_dir, started) or "none yet"
        last = newest_last_checkpoint(checkpoint_dir, started)
        resume = f"; continue with --resume={last}" if last else ""
        raise Interrupted(f"interrupted: best checkpoint so far: {best}{resume}") from None
    drain()
    for kind, _, text in messages:
        if kind == "error":
            raise ValueError(text)
    for kind, _, text in messages:
        if kind == "interrupted":
            raise Interrupted(text)
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


