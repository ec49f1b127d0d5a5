"""What the trainer does inside a torch.distributed process group (RecBole's DDP path).

* rank 0's checkpoint names on every rank; checkpoints are written by global rank 0 only and
  read back by rank 0 and broadcast, so no shared file system is needed;
* evaluation rows gathered from every rank in the single-process order, RecBole's padding
  duplicates dropped, so metrics equal a single process's on the same weights;
* per-rank random streams (``seed + rank``), saved in the resume checkpoint.
"""
from logging import getLogger

import torch
import torch.distributed as dist

from recbole_basrec.compat import check_ddp_launch


def active():
    return dist.is_available() and dist.is_initialized()


def rank():
    return dist.get_rank() if active() else 0


def world_size():
    return dist.get_world_size() if active() else 1


def is_main():
    """Whether this process writes checkpoints and results (global rank 0)."""
    return rank() == 0

def prepare_trainer(trainer):
    """Make a trainer built inside a process group consistent across ranks: rank 0's checkpoint
    names, a random stream per global rank (``seed + rank``, reproducible), gathered evaluation."""
    from recbole.utils import init_seed

    config = trainer.config
    check_ddp_launch(config, {"world_size": world_size(), "nproc": config["nproc"] or 1})
    names = [trainer.saved_model_file]
    dist.broadcast_object_list(names, src=0)
    trainer.saved_model_file = names[0]
    init_seed(config["seed"] + rank(), config["reproducibility"])
    collector = trainer.eval_collector
    collector.get_data_struct = _gathering(collector.get_data_struct, trainer)
    if is_main():
        getLogger().info(f"DDP: {world_size()} processes, {dist.get_backend()} backend, per-process batch "
                         f"{config['train_batch_size'] // world_size()} (global {config['train_batch_size']})")


#: Collected evaluation rows (one per evaluated sequence) that are gathered across ranks.
_ROW_KEYS = ("rec.topk", "rec.meanrank", "rec.score", "rec.items", "data.label")


def gather_rows(tensor, n_rows):
    """Every rank's ``(K, ...)`` rows of a ``DistributedSampler(shuffle=False)`` split, in the
    original order, the sampler's padding duplicates dropped: ``(n_rows, ...)`` on each rank.
    Rank r holds rows r, r + W, r + 2W, ... (wrapping round to the start to pad)."""
    device = tensor.device
    if backend_of_group() == "nccl" and device.type != "cuda":
        tensor = tensor.to(torch.device("cuda", torch.cuda.current_device()))
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    rows = torch.stack(parts, dim=1).flatten(0, 1)
    return rows[:n_rows].to(device)


def backend_of_group():
    return dist.get_backend() if active() else None


def _gathering(get_data_struct, trainer):
    def gathered():
        struct = get_data_struct()
        n_rows = trainer._eval_rows
        for key in _ROW_KEYS:
            if key in struct:
                struct.set(key, gather_rows(struct.get(key), n_rows))
        return struct

    return gathered


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def load_on_rank0(load):
    """``load()`` run by rank 0 only and its result sent to every rank; an error there is
    raised on every rank (so none waits for the others)."""
    outcome = None
    if is_main():
        try:
            outcome = ("ok", load())
        except (ValueError, FileNotFoundError) as error:
            outcome = (type(error).__name__, str(error))
    kind, value = broadcast_object(outcome)
    if kind == "ok":
        return value
    raise (FileNotFoundError if kind == "FileNotFoundError" else ValueError)(value)


def gather_rng_states():
    """Every rank's torch CPU (and current CUDA device's) random state, on every rank."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    states = [None] * world_size()
    dist.all_gather_object(states, state)
    return states


def restore_rng_state(states, seed, epoch):
    """This rank's saved random state; when the run had another number of processes, a fresh
    stream from ``seed``, the rank and the epoch (reproducible, but not the interrupted one's)."""
    if isinstance(states, list) and len(states) == world_size():
        state = states[rank()]
        torch.set_rng_state(state["cpu"].cpu())
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["cuda"].cpu())
        return True
    torch.manual_seed(int(seed) + 1000 * world_size() * (int(epoch) + 1) + rank())
    return False
