"""recbole 1.2.1 on today's numpy and pandas, and its DDP path on CPU: small patches, applied once by ``import recbole_basrec``.

Each patch names the RecBole file it covers and does nothing where it is not needed.
"""
import os

import numpy as np

_APPLIED = False


def restore_numpy_aliases():
    """``recbole/config/configurator.py`` (``compatibility_settings``) reads ``np.float_``,
    ``np.complex_`` and ``np.unicode_``, which numpy 2 removed. Returns the names restored."""
    restored = []
    for alias, target in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if alias not in np.__dict__:
            setattr(np, alias, target)
            restored.append(alias)
    return restored


def _fill_nan(self):
    """``Dataset._fill_nan`` of ``recbole/data/dataset/dataset.py`` without chained in-place
    assignment: pandas' copy-on-write (the default from pandas 3) silently ignores
    ``df[col].fillna(..., inplace=True)``, which left NaNs in the features, and pandas 2 warns
    about it at every load. Same imputation: 0 (``[PAD]``) for tokens, the column mean for
    floats, an empty array for missing sequences."""
    from recbole.utils import FeatureType

    for feat_name in self.feat_name_list:
        feat = getattr(self, feat_name)
        for field in list(feat):
            ftype = self.field2type[field]
            if ftype == FeatureType.TOKEN:
                feat[field] = feat[field].fillna(value=0)
            elif ftype == FeatureType.FLOAT:
                feat[field] = feat[field].fillna(value=feat[field].mean())
            else:
                dtype = np.int64 if ftype == FeatureType.TOKEN_SEQ else np.float64
                feat[field] = feat[field].apply(lambda x: np.array([], dtype=dtype) if isinstance(x, float) else x)


def patch_fill_nan():
    from recbole.data.dataset import Dataset

    if Dataset._fill_nan is not _fill_nan:
        Dataset._fill_nan = _fill_nan


class _SequenceFilledPandas:
    """pandas as ``recbole/data/dataset/dataset.py`` sees it, with empty sequence cells read as ``""``.
    RecBole's ``_load_feat`` fills them with ``df[field].fillna(value="", inplace=True)``, which pandas'
    copy-on-write ignores (pandas 3), and then fails on ``NaN.split`` ("'float' object has no attribute
    'split'") for an item with no ``class``, say. Token and float columns keep their NaNs."""

    def __init__(self, pandas):
        self._pandas = pandas

    def __getattr__(self, name):
        return getattr(self._pandas, name)

    def read_csv(self, *args, **kwargs):
        df = self._pandas.read_csv(*args, **kwargs)
        for column in df.columns:
            if str(column).endswith("seq"):  # RecBole's header names, "class:token_seq"
                df[column] = df[column].fillna("")
        return df


def patch_sequence_fill():
    import warnings

    import pandas as pd
    import recbole.data.dataset.dataset as dataset_module

    if not isinstance(dataset_module.pd, _SequenceFilledPandas):
        dataset_module.pd = _SequenceFilledPandas(dataset_module.pd)
    # RecBole's own (now redundant) chained fillna of those columns warns at every load.
    chained = getattr(pd.errors, "ChainedAssignmentError", None)
    if chained is not None:
        warnings.filterwarnings("ignore", category=chained, module=r"recbole\.data\.dataset\.dataset")


def _remap(self, remap_list):
    """``Dataset._remap`` of ``recbole/data/dataset/dataset.py`` with each ``token_seq`` row's length
    taken row by row: RecBole's ``feat[field].agg(len)`` is the length of the whole column under
    pandas 3 (``Series.agg`` no longer applies a function element-wise), so ``np.split`` returned one
    chunk and assigning it failed ("Length of values (1) does not match length of index").
    Same ids: one ``pd.factorize`` over every remapped field, 0 for ``[PAD]``."""
    import pandas as pd
    from recbole.utils import FeatureType

    if not remap_list:
        return
    tokens, split_point = self._concat_remaped_tokens(remap_list)
    new_ids, mp = pd.factorize(tokens)
    mp = np.array(["[PAD]"] + list(mp))
    token_id = {t: i for i, t in enumerate(mp)}
    for (feat, field, ftype), ids in zip(remap_list, np.split(new_ids + 1, split_point)):
        if field not in self.field2id_token:
            self.field2id_token[field] = mp
            self.field2token_id[field] = token_id
        if ftype == FeatureType.TOKEN:
            feat[field] = ids
        elif ftype == FeatureType.TOKEN_SEQ:
            lengths = np.fromiter(map(len, feat[field].values), dtype=np.int64, count=len(feat))
            feat[field] = np.split(ids, np.cumsum(lengths)[:-1])


def patch_remap():
    from recbole.data.dataset import Dataset

    if Dataset._remap is not _remap:
        Dataset._remap = _remap


_original_dataframe_to_interaction = None


def _dataframe_to_interaction(self, data):
    """``Dataset._dataframe_to_interaction`` of ``recbole/data/dataset/dataset.py`` on writable
    copies of the columns: under pandas' copy-on-write, ``.values`` is read-only and RecBole's
    ``torch.LongTensor(values)`` then shares read-only memory (torch warns that writing to it is
    undefined)."""
    import types

    columns = {k: types.SimpleNamespace(values=np.array(data[k].values, copy=True)) for k in data}
    return _original_dataframe_to_interaction(self, columns)


def patch_dataframe_to_interaction():
    global _original_dataframe_to_interaction
    from recbole.data.dataset import Dataset

    if Dataset._dataframe_to_interaction is not _dataframe_to_interaction:
        _original_dataframe_to_interaction = Dataset._dataframe_to_interaction
        Dataset._dataframe_to_interaction = _dataframe_to_interaction


def _download(self):
    """``Dataset._download`` of ``recbole/data/dataset/dataset.py`` that also works in a single
    process: RecBole's calls ``torch.distributed.barrier()`` unconditionally, which fails
    ("Default process group has not been initialized") right after the files were extracted.
    Same URL (RecBole's ``url.yaml``), same folder, same steps; the barrier only under
    torch.distributed."""
    import torch.distributed as dist
    from recbole.utils.url import decide_download, download_url, extract_zip, makedirs, rename_atomic_files

    distributed = dist.is_available() and dist.is_initialized()
    if self.config["local_rank"] == 0:
        url = self._get_download_url("url")
        self.logger.info(f"Prepare to download dataset [{self.dataset_name}] from [{url}].")
        try:
            if not decide_download(url):
                raise ValueError(f"Download of dataset '{self.dataset_name}' declined; put its atomic files "
                                 f"under {self.dataset_path} instead.")
            makedirs(self.dataset_path)
            path = download_url(url, self.dataset_path)
        except OSError as error:  # URLError and socket errors are OSErrors
            reason = getattr(error, "reason", None) or error
            raise ValueError(
                f"Dataset '{self.dataset_name}' is not under {os.path.abspath(self.dataset_path)} and downloading it "
                f"from {url} failed ({reason}); download that zip elsewhere and unpack its atomic files "
                f"({self.dataset_name}.inter, ...) into {os.path.abspath(self.dataset_path)}."
            ) from None
        extract_zip(path, self.dataset_path)
        os.unlink(path)
        rename_atomic_files(self.dataset_path, os.path.splitext(os.path.basename(path))[0], self.dataset_name)
        self.logger.info("Downloading done.")
    if distributed:
        dist.barrier()


def patch_download():
    from recbole.data.dataset import Dataset

    if Dataset._download is not _download:
        Dataset._download = _download


def quiet_grad_scaler_warning():
    """recbole/trainer/trainer.py builds ``torch.cuda.amp.GradScaler(...)``, deprecated since torch
    2.4: every Trainer prints a FutureWarning about RecBole's code, which a user cannot act on."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*torch\.cuda\.amp\.GradScaler\(args\.\.\.\)", category=FutureWarning)


# ---------------------------------------------------------------------------- torch.distributed
_original_init_device = None


def _init_device(self):
    """``Config._init_device`` of ``recbole/config/configurator.py`` for a process group on CPUs
    too: RecBole 1.2.1 always joins with NCCL on ``cuda:<local_rank>``. Here the backend is NCCL
    on GPUs and gloo on CPU (``use_gpu: False`` or no CUDA); the global rank is
    ``offset + local_rank`` and only global rank 0 logs; under torchrun the group is joined
    through its environment (``env://``); a group already joined is reused. Without
    ``local_rank`` (one process) RecBole's own method runs."""
    import torch
    import torch.distributed as dist

    from recbole_basrec import distributed

    cfg = self.final_config_dict
    if "local_rank" not in cfg:
        return _original_init_device(self)
    gpu_id = ",".join(map(str, cfg["gpu_id"])) if isinstance(cfg["gpu_id"], (tuple, list)) else str(cfg["gpu_id"])
    cfg["gpu_id"] = gpu_id
    backend = distributed.backend(cfg)
    missing = [k for k in ("nproc", "world_size", "ip", "port") if cfg.get(k) is None]
    if missing:
        raise ValueError(f"local_rank is set but {', '.join(missing)} not: start the processes with "
                         f"run_recbole_basrec.py --nproc=N, recbole.quick_start.run(..., nproc=N) or torchrun.")
    local_rank, nproc, offset, world = cfg["local_rank"], cfg["nproc"], cfg.get("offset") or 0, cfg["world_size"]
    if backend == "nccl":
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_id  # as RecBole: before CUDA starts in this process
        distributed.check_launch(cfg, {"world_size": world, "nproc": nproc})
    global_rank = offset + local_rank
    if not 0 <= local_rank < nproc or global_rank >= world:
        raise ValueError(f"local_rank {local_rank} with nproc {nproc}, offset {offset}, world_size {world} names no rank "
                         f"of 0..{world - 1}; set world_size to the total number of processes.")
    if not dist.is_initialized():
        if "TORCHELASTIC_RUN_ID" in os.environ:
            dist.init_process_group(backend=backend, init_method="env://", rank=global_rank, world_size=world)
        else:
            import sys

            distributed.join_group(backend, cfg["ip"], cfg["port"], global_rank, world, cfg.get("launch_timeout") or distributed.LAUNCH_TIMEOUT_S,
                                   lambda line: print(line, file=sys.stderr, flush=True))
    elif (dist.get_rank(), dist.get_world_size()) != (global_rank, world):
        raise ValueError(f"this process already joined a process group as rank {dist.get_rank()} of "
                         f"{dist.get_world_size()}, not {global_rank} of {world}; leave local_rank, offset and "
                         f"world_size to the launcher.")
    cfg["single_spec"] = False
    if backend == "nccl":
        cfg["device"] = torch.device("cuda", local_rank)
        torch.cuda.set_device(local_rank)
    else:
        cfg["device"] = torch.device("cpu")
    if global_rank != 0:
        cfg["state"] = "error"
        cfg["show_progress"] = False
        cfg["verbose"] = False


def patch_init_device():
    global _original_init_device
    from recbole.config import Config

    if Config._init_device is not _init_device:
        _original_init_device = Config._init_device
        Config._init_device = _init_device


def _distributed_data_parallel():
    from torch.nn.parallel import DistributedDataParallel

    class DeviceAwareDDP(DistributedDataParallel):
        """``recbole/trainer/trainer.py`` wraps with ``device_ids=[local_rank]``, which torch refuses
        for a module on CPU ("device_ids can only be None or contain a single element" / a CUDA
        index): on CPU the module is wrapped without device ids."""

        def __init__(self, module, device_ids=None, **kwargs):
            if next(module.parameters()).device.type != "cuda":
                device_ids = None
            super().__init__(module, device_ids=device_ids, **kwargs)

    return DeviceAwareDDP


def patch_ddp_wrap():
    import recbole.trainer.trainer as trainer_module

    if not getattr(trainer_module.DistributedDataParallel, "_basrec", False):
        wrapper = _distributed_data_parallel()
        wrapper._basrec = True
        trainer_module.DistributedDataParallel = wrapper


def run_recboles(rank, *args):
    """``recbole.quick_start.run_recboles`` as the function ``run(..., nproc=N)`` spawns: a spawned
    process imports this module, so it has our models and patches before RecBole's runs."""
    import recbole_basrec

    recbole_basrec.setup()  # the spawned process imported this module only
    return _original_run_recboles(rank, *args)


_original_run_recboles = None


def patch_run_recboles():
    """A no-op where RecBole's quick_start cannot be imported (it imports Ray, an extra of ours)."""
    global _original_run_recboles
    try:
        from recbole.quick_start import quick_start
    except ImportError:
        return

    if quick_start.run_recboles is not run_recboles:
        _original_run_recboles = quick_start.run_recboles
        quick_start.run_recboles = run_recboles


def apply():
    """Apply every patch (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    restore_numpy_aliases()
    patch_fill_nan()
    patch_remap()
    patch_sequence_fill()
    patch_download()
    patch_dataframe_to_interaction()
    quiet_grad_scaler_warning()
    patch_init_device()
    patch_ddp_wrap()
    patch_run_recboles()
    _APPLIED = True
