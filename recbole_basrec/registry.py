"""Make RecBole resolve our model names through its own lookup paths.

RecBole finds a model as module ``recbole.model.sequential_recommender.<name lower>``, its
trainer as ``recbole.trainer.<name>Trainer`` and its dataset as
``recbole.data.dataset.<name>Dataset``. We add our names there; RecBole itself is not edited.
"""
import sys

import torch

import recbole.data.dataset
import recbole.model.sequential_recommender
import recbole.trainer

from recbole_basrec.data.dataset import BASRecDataset
from recbole_basrec.model import sequential_recommender as models
from recbole_basrec.trainer import BASRecTrainer

MODEL_CLASSES = {
    cls.__name__: cls for cls in (models.BASRecSASRec, models.BASRecGRU4Rec, models.BASRecFMLPRec, models.FMLPRec)
}


def register():
    """Idempotent: importing ``recbole_basrec`` twice registers nothing twice."""
    # Importing RecBole's models runs sine.py, which switches on autograd anomaly detection for
    # the whole process and makes every training step several times slower.
    torch.autograd.set_detect_anomaly(False)
    for name, cls in MODEL_CLASSES.items():
        sys.modules.setdefault(f"{recbole.model.sequential_recommender.__name__}.{name.lower()}", sys.modules[cls.__module__])
        setattr(recbole.trainer, f"{name}Trainer", BASRecTrainer)
        setattr(recbole.data.dataset, f"{name}Dataset", BASRecDataset)
