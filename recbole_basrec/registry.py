"""Make RecBole resolve our model names through its own lookup paths.

RecBole finds a model as module ``recbole.model.sequential_recommender.<name lower>``, its
trainer as ``recbole.trainer.<name>Trainer`` and its dataset as
``recbole.data.dataset.<name>Dataset``. We add our names there; RecBole itself is not edited.
"""
import importlib.machinery
import sys
import types

import torch

import recbole.data.dataset
import recbole.model.sequential_recommender
import recbole.trainer

from recbole_basrec.config import HANDWRITTEN, stock_sequential_models
from recbole_basrec.data.dataset import BASRecDataset
from recbole_basrec.model import sequential_recommender as models
from recbole_basrec.model.generic import generic_basrec_class
from recbole_basrec.trainer import BASRecTrainer

MODEL_CLASSES = {
    cls.__name__: cls for cls in (models.BASRecSASRec, models.BASRecGRU4Rec, models.BASRecFMLPRec, models.FMLPRec)
}
# Every other stock sequential model through the generic path; one it cannot serve is refused
# when it is built, with the reason.
MODEL_CLASSES.update(
    {f"BASRec{name}": generic_basrec_class(cls) for name, cls in stock_sequential_models().items() if name not in HANDWRITTEN}
)


def _module_of(cls):
    """The module RecBole imports for ``cls``: its own, or a small one holding just it."""
    module = sys.modules[cls.__module__]
    if getattr(module, cls.__name__, None) is cls:
        return module
    name = f"{recbole.model.sequential_recommender.__name__}.{cls.__name__.lower()}"
    module = types.ModuleType(name, cls.__doc__)
    module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None)  # RecBole calls find_spec on it
    setattr(module, cls.__name__, cls)
    return module


def register():
    """Idempotent: importing ``recbole_basrec`` twice registers nothing twice."""
    # Importing RecBole's models runs sine.py, which switches on autograd anomaly detection for
    # the whole process and makes every training step several times slower.
    torch.autograd.set_detect_anomaly(False)
    for name, cls in MODEL_CLASSES.items():
        sys.modules.setdefault(f"{recbole.model.sequential_recommender.__name__}.{name.lower()}", _module_of(cls))
        setattr(recbole.trainer, f"{name}Trainer", BASRecTrainer)
        setattr(recbole.data.dataset, f"{name}Dataset", BASRecDataset)
