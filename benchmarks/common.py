"""Shared helpers of the benchmark jobs: data location, environment record, JSON, plots and the
one peak-memory measure.

The jobs use recbole-basrec's and RecBole's public API only (``recbole_basrec.quick_start.build``,
the trainer's ``train_step``, ``scoring`` and ``score_batch``, a loader's ``dataset``);
``tests/test_benchmark.py`` checks that no job reads a private attribute."""
import os
import resource
import statistics

from recbole_basrec.quick_start.record import cpu_model, read_json, rounded, write_json  # noqa: F401
from recbole_basrec.quick_start.record import environment as _environment

#: Repository root (the folder holding ``benchmarks/`` and ``results/``).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Where the paper's data files live in this project layout: ``<repo>/../shared/data``.
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")
#: Git-ignored cache of converted atomic files.
DEFAULT_CACHE = os.path.join(REPO_ROOT, "dataset")
DEFAULT_OUT = os.path.join(REPO_ROOT, "results")
#: Reference-like model hyper-parameters (KingGugu/BASRec, Beauty), set explicitly.
MODEL_PARAMS = {
    "SASRec": {
        "n_layers": 2,
        "n_heads": 2,
        "hidden_size": 64,
        "inner_size": 256,
        "hidden_dropout_prob": 0.2,
        "attn_dropout_prob": 0.2,
        "hidden_act": "gelu",
        "initializer_range": 0.02,
    },
    "GRU4Rec": {"embedding_size": 64, "hidden_size": 128, "num_layers": 1, "dropout_prob": 0.3},
    "FMLPRec": {
        "n_layers": 2,
        "hidden_size": 64,
        "inner_size": 256,
        "hidden_dropout_prob": 0.5,
        "hidden_act": "gelu",
        "initializer_range": 0.02,
        "filter_causal": True,
    },
}

#: The metrics every benchmark record carries.
METRICS = ["hit@5", "ndcg@5", "hit@10", "ndcg@10", "hit@20", "ndcg@20"]

#: Datasets RecBole ships (or downloads) itself: no conversion.
RECBOLE_BUILTIN = ("ml-100k",)


#: The command line recorded in every JSON; ``__main__`` sets it before hiding ``sys.argv`` from RecBole.
COMMAND = None


class DatasetMissing(Exception):
    """The source data file of a benchmark is absent: the job is skipped, not failed."""


#: What the running job has written so far, for the line Ctrl-C prints (each job sets it).
SAVED = None


def saving(description):
    """Record what an interrupted job leaves behind, e.g. ``"results/tta-beauty.json (every finished variant)"``."""
    global SAVED
    SAVED = description


class BadRequest(ValueError):
    """A benchmark asked for something it cannot do (bad option, mismatched resume): a one-line error."""


def resolve_dataset(dataset="Beauty", data_file=None, data_path=None, cache_dir=None):
    """``(dataset_name, data_path)`` ready for RecBole.

    * ``data_path`` given: the atomic files are already there (``data_path/NAME/NAME.inter``), or for a
      RecBole built-in, RecBole's own copy is read (as the jobs pass on the folder this returned).
    * a RecBole built-in (``ml-100k``): RecBole's own copy.
    * otherwise the paper's text file (``data_file`` or ``<repo>/../shared/data/NAME.txt``) is
      converted once into ``cache_dir`` (default ``<repo>/dataset``).

    Raises:
        DatasetMissing: the source file does not exist.
    """
    if data_path is not None:
        inter = os.path.join(data_path, dataset, f"{dataset}.inter")
        if not os.path.isfile(inter) and dataset not in RECBOLE_BUILTIN:  # RecBole's own copy otherwise
            raise DatasetMissing(f"no atomic file {inter}")
        return dataset, data_path
    if dataset in RECBOLE_BUILTIN and data_file is None:
        return dataset, os.path.join(REPO_ROOT, "dataset")
    src = data_file or os.path.join(SHARED_DATA, f"{dataset}.txt")
    if not os.path.isfile(src):
        raise DatasetMissing(f"source file {src} not found")
    cache_dir = cache_dir or DEFAULT_CACHE
    inter = os.path.join(cache_dir, dataset, f"{dataset}.inter")
    if not os.path.isfile(inter) or os.path.getmtime(inter) < os.path.getmtime(src):
        from recbole_basrec.data.convert import convert

        convert(src, cache_dir, name=dataset, force=True)  # missing or older than its source
    return dataset, cache_dir


def say(line):
    """Print a progress line now (also when stdout is a file, e.g. under nohup)."""
    print(line, flush=True)


def skip_message(job, error):
    return f"[benchmark {job}] skipped: {error} (pass --data_file PATH, or --dataset ml-100k)"


def environment():
    """Hardware and software facts every record carries (with the job's command line)."""
    return _environment(COMMAND)


def _proc_status_mib(key):
    """``VmRSS`` (resident now) or ``VmHWM`` (its high-water mark) of this process, MiB; None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _reset_high_water():
    """Restart the kernel's resident high-water mark from the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak memory while the block runs, MiB: on a CUDA device the peak of allocated tensor
    memory, else the peak resident set (the kernel's high-water mark, restarted as the block
    starts; where it cannot be restarted, the process's peak so far). Blocks nest, per kind: a
    nested block's peak counts in its parent's.

    ``record()``: ``{"<kind>_baseline_mib", "<kind>_peak_mib", "<kind>_peak_over_baseline_mib"}``
    with kind ``cuda`` or ``rss``."""

    _open = {"cuda": [], "rss": []}  # the running blocks of each kind, innermost last

    def __init__(self, device="cpu"):
        self.device = str(device)
        self.kind = "cuda" if self.device.startswith("cuda") else "rss"
        self.baseline_mib = self.peak_mib = self.end_mib = None

    def _now_and_high(self):
        if self.kind == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
            return torch.cuda.memory_allocated(self.device) / 2**20, torch.cuda.max_memory_allocated(self.device) / 2**20
        now = _proc_status_mib("VmRSS")
        if now is None:  # not Linux: the process's peak so far stands for both
            now = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
            return now, now
        return now, _proc_status_mib("VmHWM")

    def _restart(self):
        if self.kind == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            _reset_high_water()

    def __enter__(self):
        running = self._open[self.kind]
        if running:  # the high-water mark restarts: what the parent reached so far is kept
            running[-1].peak_mib = max(running[-1].peak_mib, self._now_and_high()[1])
        self._restart()
        self.baseline_mib, high = self._now_and_high()
        self.peak_mib = max(self.baseline_mib, high)
        running.append(self)
        return self

    def __exit__(self, *exc):
        self.end_mib, high = self._now_and_high()
        self.peak_mib = max(self.peak_mib, high)
        running = self._open[self.kind]
        running.pop()
        if running:
            running[-1].peak_mib = max(running[-1].peak_mib, self.peak_mib)

    @property
    def over_baseline_mib(self):
        return self.peak_mib - self.baseline_mib

    def record(self):
        return {f"{self.kind}_baseline_mib": self.baseline_mib, f"{self.kind}_peak_mib": self.peak_mib,
                f"{self.kind}_peak_over_baseline_mib": self.over_baseline_mib}


def sync(device):
    """Wait for ``device``'s queued work (CUDA), so that a clock read after it times the work."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def training_sequences(run):
    """Each user's training sequence ``(user_ptr, items)`` as the run's training split holds it."""
    return run.train_data.dataset.train_sequences


def metrics_of(result):
    """RecBole's result dict reduced to :data:`METRICS` as plain floats (``{}`` for none)."""
    return {m: float(result[m]) for m in METRICS if m in result} if result else {}


def relative_gains(better, base):
    """``{metric: better / base - 1}`` for every metric of ``better`` (``None`` where ``base`` is 0 or absent)."""
    return {m: ((better[m] - base[m]) / base[m] if base.get(m) else None) for m in METRICS if m in better}


def median(values):
    return float(statistics.median(values)) if values else None


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def quiet_config(extra=None):
    """Overrides that keep RecBole silent and on the available device."""
    import torch

    cfg = {"show_progress": False, "state": "ERROR", "use_gpu": torch.cuda.is_available()}
    cfg.update(extra or {})
    return cfg
