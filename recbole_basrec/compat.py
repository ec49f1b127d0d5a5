"""recbole 1.2.1 on today's numpy and pandas: small patches, applied once by ``import recbole_basrec``.

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


def apply():
    """Apply every patch (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    restore_numpy_aliases()
    patch_fill_nan()
    patch_download()
    patch_dataframe_to_interaction()
    quiet_grad_scaler_warning()
    _APPLIED = True
