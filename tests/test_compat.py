"""recbole 1.2.1 compatibility patches: each test fails without its patch."""
import numpy as np
import pandas as pd
import pytest
from recbole.data.dataset import Dataset
from recbole.utils import FeatureType

import recbole_basrec  # noqa: F401  (applies the patches)
from recbole_basrec import compat


def test_numpy_aliases_used_by_recbole_configurator_are_restored(monkeypatch):
    for alias in ("float_", "complex_", "unicode_"):
        if alias in np.__dict__:
            monkeypatch.delitem(np.__dict__, alias)  # as on numpy 2
    assert sorted(compat.restore_numpy_aliases()) == ["complex_", "float_", "unicode_"]
    assert np.float_ is np.float64 and np.complex_ is np.complex128 and np.unicode_ is np.str_


def test_fill_nan_imputes_under_copy_on_write():
    class Tiny:
        feat_name_list = ["inter_feat"]
        field2type = {"item": FeatureType.TOKEN, "rating": FeatureType.FLOAT}

    tiny = Tiny()
    tiny.inter_feat = pd.DataFrame({"item": [1.0, np.nan, 3.0], "rating": [1.0, np.nan, 3.0]})
    with pd.option_context("mode.copy_on_write", True):
        Dataset._fill_nan(tiny)
    assert tiny.inter_feat["item"].tolist() == [1.0, 0.0, 3.0]
    assert tiny.inter_feat["rating"].tolist() == [1.0, 2.0, 3.0]


def test_patches_are_idempotent():
    compat.apply()
    compat.apply()
    assert Dataset._fill_nan is compat._fill_nan
