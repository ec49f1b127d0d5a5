"""Checkpoint files: atomic writes, weights-only reads, and what a run saves to resume from.

A best-model checkpoint (``<model>-<time>-<pid>.pth``, and ``-stage1.pth`` for stage 1) holds a
:class:`ModelState`; the ``-last.pth`` file written after every epoch holds a :class:`ResumeState`.
On disk both are dicts of tensors and plain Python values, read with ``torch.load(...,
weights_only=True)`` (RecBole's own checkpoints pickle their ``Config``). The key order is that of
the fields, so files written before these classes existed read back unchanged.
"""
import dataclasses
import errno
import glob
import os
import re
import shutil
import warnings
from typing import Optional

import torch


class DiskFull(OSError):
    """A checkpoint did not fit on its disk; the message names the folder and the space needed."""


def _tensor_bytes(value):
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def save_atomically(state, path, write=None):
    """``torch.save`` (or ``write(file)``) to a temporary file beside ``path``, flushed to disk,
    then renamed over it: a kill during the write never leaves a truncated checkpoint, and a
    full disk leaves no partial file (:class:`DiskFull`, naming the folder and the space needed)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            (write or (lambda out: torch.save(state, out)))(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        folder = os.path.dirname(os.path.abspath(path))
        free = shutil.disk_usage(folder).free
        needed = _tensor_bytes(state) if write is None else os.path.getsize(getattr(write, "source", path))
        raise DiskFull(f"no space left in {folder} for {os.path.basename(path)} (about {needed / 2**20:.1f} MiB "
                       f"needed, {free / 2**20:.1f} MiB free)") from None


def copy_atomically(source, path):
    """Copy ``source`` to ``path`` the way :func:`save_atomically` writes."""
    def write(out):
        with open(source, "rb") as f:
            shutil.copyfileobj(f, out)

    write.source = source
    save_atomically(None, path, write)


def another_process_alive(pid):
    """Whether ``pid`` is a running process other than this one (one of another user's counts)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder):
    """Delete the temporary files of :func:`save_atomically` left in ``folder`` by a process
    that was killed while writing. Returns the paths removed."""
    removed = []
    for path in glob.glob(os.path.join(glob.escape(str(folder)), "*.tmp-*")):
        match = re.search(r"\.tmp-(\d+)$", path)
        if not match:
            continue
        if not another_process_alive(int(match.group(1))):
            try:
                os.remove(path)
            except FileNotFoundError:  # another rank of the same run removed it first
                continue
            removed.append(path)
    return removed


def load_checkpoint(path, device="cpu"):
    """Read a checkpoint with ``weights_only=True``; explain what to do with RecBole's pickled ones."""
    if os.path.isdir(path):
        raise ValueError(f"Checkpoint '{path}' is a directory; give a checkpoint file in it.")
    try:
        with warnings.catch_warnings():
            # torch warns about unusual pickle protocols before refusing them: our message says it
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"Checkpoint '{path}' does not exist.") from None
    except Exception as error:  # unpickling refused: not a weights-only checkpoint
        if isinstance(error, (OSError, EOFError, RuntimeError)) and _looks_like_ours(path):
            raise ValueError(f"Checkpoint '{path}' is damaged or cut short ({type(error).__name__}); use an earlier "
                             "complete checkpoint (a run writes its files atomically, so a copy or download broke it).") from None
        raise ValueError(
            f"Checkpoint '{path}' cannot be loaded with weights_only=True ({type(error).__name__}); "
            f"use a checkpoint saved by recbole-basrec, or save `model.state_dict()` with torch.save."
        ) from None


def _looks_like_ours(path):
    """Whether ``path`` starts as a torch zip archive (what ``torch.save`` writes)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _plain(value):
    """A metric value as the file keeps it: ints and strings as they are, numbers as ``float``."""
    return value if isinstance(value, (int, str)) else float(value)


@dataclasses.dataclass
class ModelState:
    """A best-model checkpoint: the weights of the best validated epoch so far."""

    config: dict  # the run's settings (``config_snapshot``), read back by ``load_data_and_model``
    epoch: int  # -1: saved before training (``epochs: 0``)
    cur_step: int  # validations without improvement so far
    best_valid_score: float
    stage: int
    state_dict: dict
    optimizer: dict

    def to_dict(self):
        return {"config": self.config, "epoch": self.epoch, "cur_step": self.cur_step,
                "best_valid_score": float(self.best_valid_score), "stage": self.stage,
                "state_dict": self.state_dict, "optimizer": self.optimizer}

    def save(self, path):
        save_atomically(self.to_dict(), path)


@dataclasses.dataclass
class ResumeState:
    """What ``--resume`` continues from: the ``-last.pth`` file written after every epoch.

    Read from a best-model checkpoint, the fields it lacks keep their defaults."""

    config: dict
    epoch: int  # the last epoch trained (RecBole's 0-based index, counted on across stages)
    cur_step: int
    best_valid_score: float
    state_dict: dict
    optimizer: dict
    best_valid_result: Optional[dict] = None
    best_model_file: Optional[str] = None  # the best-model checkpoint of the current stage
    stage: Optional[int] = None
    stage_start: int = 0  # first epoch index of the current stage
    epochs: Optional[int] = None  # the end (exclusive) of the current stage's epochs
    valid_history: list = dataclasses.field(default_factory=list)
    rng: Optional[torch.Tensor] = None  # torch's CPU random state (one process)
    epoch_losses: dict = dataclasses.field(default_factory=dict)  # epoch -> mean loss terms per batch
    finished: bool = False  # fit() returned: resuming trains nothing more
    generator: Optional[torch.Tensor] = None  # the training data order's random state
    rng_per_rank: Optional[list] = None  # every process's random states (several processes)

    #: Fields a file must hold to be resumed from.
    REQUIRED = ("epoch", "cur_step", "best_valid_score", "state_dict", "optimizer")

    def to_dict(self):
        state = {
            "config": self.config,
            "epoch": self.epoch,
            "cur_step": self.cur_step,
            "best_valid_score": float(self.best_valid_score),
            "best_valid_result": {k: float(v) for k, v in (self.best_valid_result or {}).items()},
            "best_model_file": self.best_model_file,
            "stage": self.stage,
            "stage_start": self.stage_start,
            "epochs": self.epochs,
            "state_dict": self.state_dict,
            "optimizer": self.optimizer,
            "valid_history": [{k: _plain(v) for k, v in h.items()} for h in self.valid_history],
            "rng": self.rng,
            "epoch_losses": [[int(e), [float(v) for v in terms]] for e, terms in sorted(self.epoch_losses.items())],
            "finished": bool(self.finished),
        }
        if self.generator is not None:
            state["generator"] = self.generator
        if self.rng_per_rank is not None:
            state["rng_per_rank"], state["world_size"] = self.rng_per_rank, len(self.rng_per_rank)
        return state

    def save(self, path):
        save_atomically(self.to_dict(), path)

    @classmethod
    def from_dict(cls, checkpoint, path="the checkpoint"):
        """The state in a loaded checkpoint (a ``-last.pth`` or best-model file); keys of other
        versions are ignored, and a file without training state is a one-line ValueError."""
        missing = [key for key in cls.REQUIRED if key not in checkpoint]
        if missing:
            raise ValueError(f"Checkpoint '{path}' holds no training state ({', '.join(missing)} missing): resume "
                             "from a '-last.pth' file or a best-model checkpoint of recbole-basrec.")
        known = {field.name for field in dataclasses.fields(cls)}
        state = cls(**{"config": {}, **{key: value for key, value in checkpoint.items() if key in known}})
        state.best_valid_result = state.best_valid_result or None
        state.epoch_losses = {int(e): tuple(terms) for e, terms in state.epoch_losses}
        state.finished = bool(state.finished)
        return state
