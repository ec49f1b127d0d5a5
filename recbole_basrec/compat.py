"""recbole 1.2.1 on today's numpy and pandas: small patches, applied once by ``import recbole_basrec``.

Each patch names the RecBole file it covers and does nothing where it is not needed.
"""
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


def apply():
    """Apply every patch (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    restore_numpy_aliases()
    patch_fill_nan()
    _APPLIED = True
