"""recbole 1.2.1 compatibility patches (:mod:`recbole_basrec.compat`): each works, and for each a
test of RecBole's own code fails once RecBole no longer needs it (then drop the patch)."""
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


def test_columns_become_writable_tensors_under_copy_on_write():
    import warnings

    import torch

    class Tiny:
        field2type = {"item": FeatureType.TOKEN}
        config = {"numerical_features": []}

    with pd.option_context("mode.copy_on_write", True):
        frame = pd.DataFrame({"item": np.array([3, 1, 2], dtype=np.int64)})
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # torch warns when it wraps read-only memory
            inter = Dataset._dataframe_to_interaction(Tiny(), frame)
    inter["item"][0] = 7  # RecBole's own tensors may be written to
    assert inter["item"].tolist() == [7, 1, 2] and frame["item"].tolist() == [3, 1, 2]
    assert isinstance(inter["item"], torch.Tensor)


def test_patches_are_idempotent():
    import recbole.data.dataset.dataset as dataset_module

    compat.attach()
    compat.attach()
    compat.patch_dataset(dataset_module)
    assert Dataset._fill_nan is compat._fill_nan
    assert compat.original(Dataset, "_fill_nan") is not compat._fill_nan


# ---------------------------------------------------------------- RecBole still needs each patch
def _recbole_source(module_name):
    import importlib
    import inspect

    return inspect.getsource(importlib.import_module(module_name))


def test_recboles_fill_nan_still_leaves_nans_under_copy_on_write():
    class Tiny:
        feat_name_list = ["inter_feat"]
        field2type = {"rating": FeatureType.FLOAT}
        logger = __import__("logging").getLogger("tiny")

    tiny = Tiny()
    tiny.inter_feat = pd.DataFrame({"rating": [1.0, np.nan, 3.0]})
    import warnings

    with pd.option_context("mode.copy_on_write", True), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 2 warns that the chained fillna does nothing
        compat.original(Dataset, "_fill_nan")(tiny)
    assert tiny.inter_feat["rating"].isna().any()


@pytest.mark.parametrize("module, needs, patch", [
    ("recbole.config.configurator", ["np.float_"], "restore_numpy_aliases"),
    ("recbole.data.dataset.dataset", ["agg(len)"], "_remap"),
    ("recbole.data.dataset.dataset", ['fillna(value="", inplace=True)'], "_SequenceFilledPandas"),
    ("recbole.data.dataset.dataset", ["torch.LongTensor(value)"], "_dataframe_to_interaction"),
    ("recbole.trainer.trainer", ['device_ids=[config["local_rank"]]'], "patch_ddp_wrap"),
    ("recbole.trainer.trainer", ["import torch.cuda.amp as amp", "amp.GradScaler("], "quiet_grad_scaler_warning"),
    ("recbole.model.sequential_recommender.sine", ["set_detect_anomaly(True)"], "undo_sine_anomaly_detection"),
    ("recbole.quick_start.quick_start", ["config = Config(", 'get_model(config["model"])'], "patch_quick_start"),
])
def test_recbole_still_has_what_each_patch_covers(module, needs, patch):
    """Once RecBole's source no longer holds these, compat's patch is no longer needed: drop it."""
    source = _recbole_source(module)
    assert all(text in source for text in needs) and hasattr(compat, patch)


def test_recboles_download_still_waits_at_a_barrier_without_a_group():
    import inspect

    assert "torch.distributed.barrier()" in inspect.getsource(compat.original(Dataset, "_download"))


# ---------------------------------------------------------------- no patch of a stock model's Config
_STOCK_CONFIG = (
    "import json, sys\n"
    "{imports}"
    "from recbole.config import Config\n"
    "c = Config('SASRec', 'ml-100k', config_dict={{'train_neg_sample_args': None, 'state': 'ERROR'}})\n"
    "print(json.dumps({{k: str(v) for k, v in c.final_config_dict.items()}}, sort_keys=True))\n"
)


def test_a_stock_models_config_is_the_same_with_and_without_our_import():
    # numpy 2 removed what RecBole's Config reads, so "without" restores the aliases by hand, as a
    # user without us would have to.
    without = _python(_STOCK_CONFIG.format(imports="import numpy as np\nnp.float_, np.complex_, np.unicode_ = "
                                                   "np.float64, np.complex128, np.str_\n"))
    with_us = _python(_STOCK_CONFIG.format(imports="import recbole_basrec\n"))
    assert without.returncode == 0 and with_us.returncode == 0, without.stderr + with_us.stderr
    assert with_us.stdout == without.stdout


def test_importing_us_loads_neither_recbole_nor_torch():
    proc = _python("import sys, recbole_basrec\n"
                   "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'recbole')))")
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_stock_recbole_on_numpy_2_needs_our_import_first():
    code = ("import warnings; warnings.simplefilter('ignore')\n{first}from recbole.config import Config\n"
            "Config('SASRec', 'ml-100k', config_dict={{'train_neg_sample_args': None, 'state': 'ERROR'}})\n")
    if int(np.__version__.split(".")[0]) >= 2:
        assert "float_" in _python(code.format(first="")).stderr  # RecBole alone: np.float_ is gone
    assert _python(code.format(first="import recbole_basrec\n")).returncode == 0


def test_no_module_but_compat_assigns_to_recbole():
    """Outside compat.py no code of ours assigns an attribute of a RecBole object or module."""
    import ast
    import os

    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recbole_basrec")
    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if not name.endswith(".py") or path.endswith(os.path.join("recbole_basrec", "compat.py")):
                continue
            tree = ast.parse(open(path, encoding="utf-8").read())
            recbole_names = {alias.asname or alias.name.split(".")[0] for node in ast.walk(tree)
                             if isinstance(node, (ast.Import, ast.ImportFrom))
                             for alias in node.names
                             if (getattr(node, "module", None) or alias.name).startswith("recbole.")
                             or (getattr(node, "module", None) or alias.name) == "recbole"}
            for node in ast.walk(tree):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
                    if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr" and node.args \
                        and isinstance(node.args[0], ast.Name) and node.args[0].id in recbole_names:
                    found.append(f"{path}:{node.lineno}")
                for target in targets:
                    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                            and target.value.id in recbole_names:
                        found.append(f"{path}:{node.lineno}")
    assert not found, found


def _python(code):
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=root, env={**os.environ, "PYTHONPATH": root})


@pytest.mark.parametrize("version, message", [
    (None, 'recbole-basrec needs recbole 1.2.1, which is not installed: pip install --no-deps "recbole==1.2.1"'),
    ("1.1.1", 'recbole-basrec supports recbole 1.2.1, found 1.1.1: pip install --no-deps "recbole==1.2.1"'),
])
def test_missing_or_unsupported_recbole_is_one_line(version, message):
    fake = "None" if version is None else f"types.SimpleNamespace(__version__='{version}')"
    proc = _python(
        "import sys, types\n"
        f"sys.modules['recbole'] = {fake}\n"
        "sys.argv = ['run_recbole_basrec.py']\n"
        "from run_recbole_basrec import cli\n"
        "sys.exit(cli([]))\n"
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"error: {message}"


def test_recbole_trainer_trains_without_the_grad_scaler_future_warning(tiny_setup):
    import warnings

    from recbole_basrec import compat

    config, dataset, model, trainer, (train, valid, test) = tiny_setup("SASRec")
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()  # as without the patch ...
        warnings.simplefilter("always")
        compat.quiet_grad_scaler_warning()  # ... then with it
        trainer._train_epoch(train, 0)  # RecBole builds its GradScaler there
    assert not [w for w in caught if "GradScaler" in str(w.message)]


#: item -> genres of the hand-made ``genres`` dataset (item 4 has none).
GENRES = {"1": ["a", "b"], "2": ["b"], "3": ["c", "a", "b"], "4": []}


@pytest.fixture
def genres_dataset(tmp_path):
    """A dataset with a ``token_seq`` item feature, loaded as SASRecF reads it (ml-100k's ``class``)."""
    from recbole_basrec.utils import create_dataset

    from recbole_basrec.quick_start import build_config

    folder = tmp_path / "genres"
    folder.mkdir()
    sequences = {1: "123423", 2: "31241", 3: "231432", 4: "43213"}
    rows = [f"{u}\t{i}\t{t}" for u, items in sequences.items() for t, i in enumerate(items)]
    (folder / "genres.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n" + "\n".join(rows) + "\n")
    (folder / "genres.item").write_text("item_id:token\tclass:token_seq\n"
                                        + "".join(f"{i}\t{' '.join(g)}\n" for i, g in GENRES.items()))
    config = build_config("SASRecF", "genres", config_dict={
        "data_path": str(tmp_path), "load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "class"]},
        "selected_features": ["class"], "loss_type": "CE", "state": "ERROR", "MAX_ITEM_LIST_LENGTH": 5})
    dataset = create_dataset(config)
    dataset.build()  # the features become the tensors the model reads
    return dataset


def test_token_seq_item_feature_loads_with_its_values(genres_dataset):
    # Without compat._remap: "Length of values (1) does not match length of index" (pandas 3);
    # without compat._SequenceFilledPandas: "'float' object has no attribute 'split'" for item 4.
    ds = genres_dataset
    classes = ds.get_item_feature()["class"]
    assert classes.shape == (len(GENRES) + 1, 3)  # [PAD] row, padded to the longest list
    for item, genres in GENRES.items():
        ids = classes[ds.token2id("item_id", item)].tolist()
        assert [ds.field2id_token["class"][i] for i in ids if i] == genres
        assert ids[len(genres):] == [0] * (3 - len(genres))
    assert classes[0].tolist() == [0, 0, 0]


def test_token_seq_patches_are_idempotent():
    import recbole.data.dataset.dataset as dataset_module

    compat.patch_sequence_fill(dataset_module)
    compat.patch_sequence_fill(dataset_module)
    assert isinstance(dataset_module.pd, compat._SequenceFilledPandas)
    assert isinstance(dataset_module.pd._pandas, type(pd)) and Dataset._remap is compat._remap


def test_help_loads_neither_recbole_nor_torch_and_names_the_docs_folder():
    proc = _python("import sys\nfrom recbole_basrec.cli import cli\n"
                   "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
                   "print('loaded:', sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'recbole.model')))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("loaded: []")
    from recbole_basrec.config.files import docs_dir

    assert f"docs: {docs_dir()} " in proc.stdout and __import__("os").path.isfile(f"{docs_dir()}/configuration.md")
