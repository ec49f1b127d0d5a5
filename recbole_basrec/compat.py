"""The one module that touches RecBole's own objects: recbole 1.2.1 on today's numpy and pandas,
its DDP path on CPU, and the names of ``recbole.quick_start`` that make our models a drop-in.

Each patch names the RecBole file it covers; ``tests/test_compat.py`` holds, for each, a test
that fails once RecBole no longer needs it. ``import recbole_basrec`` only registers
:func:`attach`'s post-import hooks (``wrapt``): a patch is applied when the RecBole module it
covers is imported, so importing us costs no RecBole or torch import.
"""
import os
import sys

import numpy as np

#: The RecBole release every patch here is written against.
RECBOLE_VERSION = "1.2.1"


_ORIGINALS = {}


def _replace(owner, name, new):
    """Set ``owner.name`` to ``new``, keeping RecBole's own (:func:`original`). Idempotent."""
    current = getattr(owner, name)
    if current is not new:
        _ORIGINALS.setdefault((owner, name), current)
        setattr(owner, name, new)


def original(owner, name):
    """RecBole's own ``owner.name`` as it was before our patch (itself where it is not patched)."""
    return _ORIGINALS.get((owner, name), getattr(owner, name))


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


def patch_fill_nan(module):
    _replace(module.Dataset, "_fill_nan", _fill_nan)


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


def patch_sequence_fill(dataset_module):
    import warnings

    import pandas as pd

    if not isinstance(dataset_module.pd, _SequenceFilledPandas):
        _replace(dataset_module, "pd", _SequenceFilledPandas(dataset_module.pd))
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


def patch_remap(module):
    _replace(module.Dataset, "_remap", _remap)


def _dataframe_to_interaction(self, data):
    """``Dataset._dataframe_to_interaction`` of ``recbole/data/dataset/dataset.py`` on writable
    copies of the columns: under pandas' copy-on-write, ``.values`` is read-only and RecBole's
    ``torch.LongTensor(values)`` then shares read-only memory (torch warns that writing to it is
    undefined)."""
    import types

    columns = {k: types.SimpleNamespace(values=np.array(data[k].values, copy=True)) for k in data}
    from recbole.data.dataset import Dataset

    return original(Dataset, "_dataframe_to_interaction")(self, columns)


def patch_dataframe_to_interaction(module):
    _replace(module.Dataset, "_dataframe_to_interaction", _dataframe_to_interaction)


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


def patch_download(module):
    _replace(module.Dataset, "_download", _download)


def quiet_grad_scaler_warning():
    """recbole/trainer/trainer.py builds ``torch.cuda.amp.GradScaler(...)``, deprecated since torch
    2.4: every Trainer prints a FutureWarning about RecBole's code, which a user cannot act on."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*torch\.cuda\.amp\.GradScaler\(args\.\.\.\)", category=FutureWarning)


def undo_sine_anomaly_detection(module=None):
    """``recbole/model/sequential_recommender/sine.py`` calls ``torch.autograd.set_detect_anomaly(True)``
    at import, for the whole process: importing RecBole's sequential models then makes every
    training step of every model several times slower."""
    import torch

    torch.autograd.set_detect_anomaly(False)


# ---------------------------------------------------------------------------- torch.distributed
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


def patch_trainer(trainer_module):
    """``recbole/trainer/trainer.py``: quiet its GradScaler warning; let it wrap a CPU model in DDP
    (only a process group on CPUs, which only our ``Config`` joins, ever takes that path)."""
    quiet_grad_scaler_warning()
    patch_ddp_wrap(trainer_module)


def patch_ddp_wrap(trainer_module):
    if not getattr(trainer_module.DistributedDataParallel, "_basrec", False):
        wrapper = _distributed_data_parallel()
        wrapper._basrec = True
        _replace(trainer_module, "DistributedDataParallel", wrapper)


def stock(name):
    """RecBole's own function ``name`` of ``recbole/quick_start/quick_start.py``, as it was before
    :func:`patch_quick_start`."""
    from recbole.quick_start import quick_start  # patched on import

    return original(quick_start, name)


def run_recboles(rank, *args):
    """``recbole.quick_start.run_recboles`` as the function ``run(..., nproc=N)`` spawns: a spawned
    process unpickles it from this module, so our models are known there before RecBole's runs."""
    return stock("run_recboles")(rank, *args)


def load_data_and_model_either(model_file):
    """``recbole.quick_start.load_data_and_model`` after ``import recbole_basrec``: our checkpoints
    through :func:`recbole_basrec.quick_start.load_data_and_model`, any other through RecBole's own."""
    from recbole_basrec.quick_start.quick_start import is_our_checkpoint, load_data_and_model
    from recbole_basrec.trainer.checkpoint import load_checkpoint

    try:
        checkpoint = load_checkpoint(model_file)
    except (ValueError, FileNotFoundError):  # not weights-only: RecBole's own, or no file
        checkpoint = None
    if checkpoint is not None and is_our_checkpoint(checkpoint):
        return load_data_and_model(model_file)
    return stock("load_data_and_model")(model_file)


def _config(model=None, dataset=None, config_file_list=None, config_dict=None):
    """``Config`` as ``recbole/quick_start/quick_start.py`` builds it: ours for our model names
    (in any case, as our runner takes them), RecBole's for every other."""
    from recbole.config import Config

    from recbole_basrec.config.models import our_model_name
    from recbole_basrec.utils import Config as OurConfig

    name = model if model is not None else (config_dict or {}).get("model")
    ours = our_model_name(name) if isinstance(name, str) else None
    if ours is None:
        return Config(model, dataset, config_file_list, config_dict)
    if model is None:
        return OurConfig(None, dataset, config_file_list, {**config_dict, "model": ours})
    return OurConfig(ours, dataset, config_file_list, config_dict)


def patch_quick_start(module):
    """``recbole/quick_start/quick_start.py``: ``run_recbole``, ``run``/``run_recboles``,
    ``objective_function`` and ``load_data_and_model`` look their pieces up in this module's
    namespace; there they get our ``Config`` and lookups for our names, RecBole's for every other."""
    from recbole_basrec import utils

    for name, ours in (("Config", _config), ("get_model", utils.get_model), ("get_trainer", utils.get_trainer),
                       ("create_dataset", utils.create_dataset), ("run_recboles", run_recboles),
                       ("load_data_and_model", load_data_and_model_either)):
        _replace(module, name, ours)
    # The package re-exports it: when this runs inside the package's own import, its
    # ``from .quick_start import ...`` reads the patched name; afterwards, it is patched here.
    package = sys.modules.get("recbole.quick_start")
    if package is not None and hasattr(package, "load_data_and_model"):
        _replace(package, "load_data_and_model", load_data_and_model_either)


def patch_dataset(module):
    """Every ``recbole/data/dataset/dataset.py`` fix above."""
    for patch in (patch_fill_nan, patch_remap, patch_sequence_fill, patch_download, patch_dataframe_to_interaction):
        patch(module)


_ATTACHED = False


def attach():
    """Apply each patch when the RecBole module it covers is first imported (now, if it already
    is); a RecBole other than 1.2.1 is left untouched. Idempotent."""
    global _ATTACHED
    if _ATTACHED:
        return
    import wrapt

    def covered(patch):
        def hook(module):
            import recbole

            if recbole.__version__ == RECBOLE_VERSION:
                patch(module)
        return hook

    wrapt.register_post_import_hook(covered(lambda module: restore_numpy_aliases()), "recbole")
    wrapt.register_post_import_hook(covered(patch_dataset), "recbole.data.dataset.dataset")
    wrapt.register_post_import_hook(covered(patch_quick_start), "recbole.quick_start.quick_start")
    wrapt.register_post_import_hook(covered(undo_sine_anomaly_detection), "recbole.model.sequential_recommender.sine")
    wrapt.register_post_import_hook(covered(patch_trainer), "recbole.trainer.trainer")
    _ATTACHED = True
