"""Training on several processes with torch.distributed: one per GPU (NCCL) or per CPU slot (gloo).

RecBole's own DDP path is used: ``local_rank`` in the config makes ``Config._init_device`` join
a process group (patched in :mod:`recbole_basrec.compat` for gloo and torchrun), the data
loaders shard with a ``DistributedSampler`` and the trainer wraps the model in
``DistributedDataParallel``. This module adds what BASRec's trainer needs on top:

* rank 0's checkpoint names on every rank, checkpoints written by global rank 0 only and read
  back by rank 0 and broadcast (no shared file system needed for the best model);
* evaluation rows gathered from every rank in the single-process order, RecBole's padding
  duplicates dropped, so metrics equal a single process's on the same weights;
* per-rank random streams (``seed + rank``) saved in the resume checkpoint;
* the launch settings of ``--nproc=N`` and the torchrun environment (the launcher itself is
  :mod:`recbole_basrec.distributed.launch`).

Conventions: ``train_batch_size`` is the global batch (RecBole splits it: each of N processes
trains on ``train_batch_size / N`` rows per step) and DDP averages gradients, so one step
equals a single process's step on the global batch and ``learning_rate`` needs no scaling.
"""
import os
from logging import getLogger

import torch
import torch.distributed as dist
from recbole.evaluator import Collector

from recbole_basrec.config.schema import LAUNCH, living

#: What the launcher sets for each process besides its ``local_rank``: RecBole's names
#: (``run(..., nproc, world_size, ip, port, group_offset)``).
LAUNCH_KEYS = tuple(sorted(living(LAUNCH) - {"local_rank"}))
#: How long processes wait for each other where the configuration has no ``launch_timeout`` (a stock model's).
LAUNCH_TIMEOUT_S = 600


def active():
    return dist.is_available() and dist.is_initialized()


def rank():
    return dist.get_rank() if active() else 0


def world_size():
    return dist.get_world_size() if active() else 1


def is_main():
    """Whether this process writes checkpoints and results (global rank 0)."""
    return rank() == 0


def backend(config):
    """``nccl`` for a process group on GPUs, ``gloo`` on CPUs (RecBole's ``use_gpu`` and ``gpu_id``)."""
    use_cuda = bool(config["use_gpu"]) and config["gpu_id"] not in (None, "") and torch.cuda.is_available()
    return "nccl" if use_cuda else "gloo"


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
    if ip is not None and not str(ip).strip():
        raise ValueError("--ip= has no value: give the address of the machine that runs rank 0, or leave it out "
                         "(localhost)")
    nproc = 1 if nproc is None else nproc
    world = nproc if world_size in (None, -1) else world_size
    offset = 0 if offset is None else offset
    for key, value, low in (("nproc", nproc, 1), ("world_size", world, 1), ("offset", offset, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"--{key} must be an integer >= {low}, got {value!r}.")
    devices = torch.cuda.device_count() or os.cpu_count() or 1
    if nproc > max(devices, 1) * 4:
        raise ValueError(f"--nproc={nproc} processes on a machine with {devices} "
                         f"{'GPUs' if torch.cuda.device_count() else 'CPU cores'}: give one process per GPU (or a few "
                         f"per CPU core), at most {max(devices, 1) * 4}.")
    if offset + nproc > world:
        raise ValueError(f"--offset ({offset}) + --nproc ({nproc}) is more than --world_size ({world}): "
                         f"this machine's ranks must lie in 0..{world - 1}; set --world_size to the total "
                         f"number of processes on all machines.")
    if world == 1:
        unused = [f"--{k}" for k, v in (("ip", ip), ("port", port), ("offset", offset if offset else None)) if v is not None]
        if unused:
            raise ValueError(f"{unused[0]} has no effect with one process: add --nproc=N (or --world_size=N) to train "
                             "on several, or drop it.")
        return None
    port = "5678" if port is None else str(port)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--port must be a TCP port number, got {port!r}.")
    return {"nproc": nproc, "world_size": world, "ip": ip or "localhost", "port": port, "offset": offset,
            "torchrun": False}


def check_address(settings):
    """Refuse, in one line, an address this machine cannot resolve and, on the machine of rank 0,
    a port another program already listens on."""
    import socket

    ip, port = settings.get("ip"), settings.get("port")
    if ip is None or port is None or settings.get("torchrun"):
        return
    try:
        socket.getaddrinfo(ip, int(port), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise ValueError(f"--ip={ip} is not an address or a host name this machine can resolve: give the address of "
                         "the machine that runs rank 0 (localhost on one machine).") from None
    if settings.get("offset", 0) != 0:
        return
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(("", int(port)))
    except OSError:
        raise ValueError(f"port {port} is in use on this machine, which runs rank 0: choose a free one with "
                         "--port=N (every machine gives the same).") from None
    finally:
        probe.close()


def join_group(backend_name, ip, port, global_rank, world, timeout_s, say, every=10.0):
    """Join the process group through a TCP store at ``ip:port``, saying every ``every`` s what this
    process waits for (rank 0: how many of ``world`` processes joined so far) and giving up after
    ``timeout_s`` seconds with one line naming the address and the count."""
    import threading
    import time
    from datetime import timedelta

    where = f"{ip}:{port}"
    waiting = {"text": f"connecting to rank 0 at {where}"}
    done = threading.Event()

    def report():
        start = time.monotonic()
        while not done.wait(every):
            say(f"rank {global_rank}: {waiting['text']} ({time.monotonic() - start:.0f} s of {timeout_s} s)")

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        try:
            store = dist.TCPStore(ip, int(port), world, is_master=global_rank == 0,
                                  timeout=timedelta(seconds=timeout_s), wait_for_workers=False)
        except (RuntimeError, OSError, ValueError) as error:
            if global_rank == 0:
                raise ValueError(f"rank 0 cannot listen at {where} ({str(error).splitlines()[0][:120]}): choose a free "
                                 "--port, and an --ip of this machine") from None
            raise ValueError(f"rank {global_rank} could not reach rank 0 at {where} within {timeout_s} s: start "
                             "rank 0 first, with the same --ip and --port, or raise launch_timeout") from None
        joined = store.add("recbole_basrec/joined", 1)
        start = time.monotonic()
        while joined < world:
            waiting["text"] = f"waiting at {where} for {world} processes, {joined} joined"
            if time.monotonic() - start > timeout_s:
                raise ValueError(f"waited {timeout_s} s at {where} for {world} processes and {joined} joined: start "
                                 "the others (same --ip, --port and --world_size; each machine its --offset), or "
                                 "raise launch_timeout")
            time.sleep(0.2)
            joined = store.add("recbole_basrec/joined", 0)
        dist.init_process_group(backend=backend_name, store=store, rank=global_rank, world_size=world)
    finally:
        done.set()


def check_launch(config, settings):
    """Refuse, before any process starts, what DDP cannot run (ValueError with the fix)."""
    check_address(settings)
    n = settings["world_size"]
    batch = config["train_batch_size"]
    if batch % n:
        raise ValueError(f"train_batch_size ({batch}) is the global batch, split over {n} processes: "
                         f"make it a multiple of {n} (e.g. {batch - batch % n or n}).")
    if backend(config) == "nccl":
        gpus = [g for g in str(config["gpu_id"]).split(",") if g.strip()]
        if len(gpus) < settings["nproc"]:
            raise ValueError(f"{settings['nproc']} processes on this machine need {settings['nproc']} GPUs in gpu_id, "
                             f"got gpu_id='{config['gpu_id']}': set --gpu_id="
                             f"{','.join(str(i) for i in range(settings['nproc']))} (or --use_gpu=False for gloo on CPU).")


def init_device(cfg):
    """Join the process group of a launched process (``local_rank`` set) and set ``device``,
    ``single_spec`` and logging in ``cfg`` (our ``Config``'s final dict). RecBole 1.2.1 always
    joins with NCCL on ``cuda:<local_rank>``; here the backend is NCCL on GPUs and gloo on CPU
    (``use_gpu: False`` or no CUDA); the global rank is ``offset + local_rank`` and only global
    rank 0 logs; under torchrun the group is joined through its environment (``env://``); a
    group already joined is reused."""
    gpu_id = ",".join(map(str, cfg["gpu_id"])) if isinstance(cfg["gpu_id"], (tuple, list)) else str(cfg["gpu_id"])
    cfg["gpu_id"] = gpu_id
    group_backend = backend(cfg)
    missing = [k for k in ("nproc", "world_size", "ip", "port", "offset") if cfg.get(k) is None]
    if missing:
        raise ValueError(f"local_rank is set but {', '.join(missing)} not: start the processes with "
                         f"run_recbole_basrec.py --nproc=N, recbole.quick_start.run(..., nproc=N) or torchrun.")
    local_rank, nproc, offset, world = cfg["local_rank"], cfg["nproc"], cfg["offset"], cfg["world_size"]
    if group_backend == "nccl":
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_id  # as RecBole: before CUDA starts in this process
        check_launch(cfg, {"world_size": world, "nproc": nproc})
    global_rank = offset + local_rank
    if not 0 <= local_rank < nproc or global_rank >= world:
        raise ValueError(f"local_rank {local_rank} with nproc {nproc}, offset {offset}, world_size {world} names no rank "
                         f"of 0..{world - 1}; set world_size to the total number of processes.")
    if not dist.is_initialized():
        if "TORCHELASTIC_RUN_ID" in os.environ:
            dist.init_process_group(backend=group_backend, init_method="env://", rank=global_rank, world_size=world)
        else:
            import sys

            join_group(group_backend, cfg["ip"], cfg["port"], global_rank, world, cfg["launch_timeout"],
                                   lambda line: print(line, file=sys.stderr, flush=True))
    elif (dist.get_rank(), dist.get_world_size()) != (global_rank, world):
        raise ValueError(f"this process already joined a process group as rank {dist.get_rank()} of "
                         f"{dist.get_world_size()}, not {global_rank} of {world}; leave local_rank, offset and "
                         f"world_size to the launcher.")
    cfg["single_spec"] = False
    if group_backend == "nccl":
        cfg["device"] = torch.device("cuda", local_rank)
        torch.cuda.set_device(local_rank)
    else:
        cfg["device"] = torch.device("cpu")  # compat.patch_ddp_wrap lets RecBole's trainer wrap it
    if global_rank != 0:
        cfg["state"] = "error"
        cfg["show_progress"] = False
        cfg["verbose"] = False


def describe(settings, config):
    """The runner's one line about the launch."""
    machines = "" if settings["nproc"] == settings["world_size"] else \
        f" ({settings['nproc']} on this machine, ranks {settings['offset']}..{settings['offset'] + settings['nproc'] - 1})"
    return f"training on {settings['world_size']} processes{machines} with the {backend(config)} backend"


def default_gpu_ids(config_dict, nproc):
    """One GPU per process: ``gpu_id`` 0..nproc-1 unless the user named GPUs (RecBole's default
    ``'0'`` would give every process the same one)."""
    if "gpu_id" not in config_dict and torch.cuda.is_available() and config_dict.get("use_gpu", True):
        return {**config_dict, "gpu_id": ",".join(str(i) for i in range(nproc))}
    return config_dict


# ---------------------------------------------------------------------------- trainer support
def refuse_launch_keys(config):
    """In one process, ``nproc`` or ``world_size`` above 1 in a config would be silently ignored:
    RecBole reads them only from its launcher's arguments."""
    for key in ("nproc", "world_size"):
        value = config[key] if key in config else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 1:
            raise ValueError(f"{key}={value} in the config starts no processes: pass --{key}={value} to "
                             f"run_recbole_basrec.py (or nproc= to recbole.quick_start.run) instead.")


def prepare_trainer(trainer):
    """Make a trainer built inside a process group consistent across ranks: rank 0's checkpoint
    names, a random stream per global rank (``seed + rank``, reproducible), gathered evaluation
    (:class:`GatheringCollector`)."""
    from recbole.utils import init_seed

    config = trainer.config
    check_launch(config, {"world_size": world_size(), "nproc": config["nproc"]})
    names = [trainer.saved_model_file]
    dist.broadcast_object_list(names, src=0)
    trainer.saved_model_file = names[0]
    init_seed(config["seed"] + rank(), config["reproducibility"])
    trainer.eval_collector = GatheringCollector(config)
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


class GatheringCollector(Collector):
    """RecBole's evaluation ``Collector`` under DDP: the rows each rank collected (its share of a
    ``DistributedSampler(shuffle=False)`` split) are gathered, in order, into every rank's struct,
    so every rank computes the single-process metrics. The trainer sets :attr:`rows` to the
    split's size before each evaluation."""

    def __init__(self, config):
        super().__init__(config)
        #: Rows of the evaluation being collected (one per evaluated sequence).
        self.rows = None

    def get_data_struct(self):
        struct = super().get_data_struct()
        for key in _ROW_KEYS:
            if key in struct:
                struct.set(key, gather_rows(struct.get(key), self.rows))
        return struct


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
