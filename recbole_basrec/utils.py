"""Our ``Config`` and the lookups that fall back to RecBole's, as RecBole-GNN's ``config.py`` and ``utils.py``.

``Config`` is RecBole's :class:`recbole.config.Config` for our models: our defaults
(``properties/``) beneath the user's files, dict and command line (RecBole's own precedence),
every given key checked before anything else happens (:func:`recbole_basrec.config.configurator.validate`),
and the input type and negative sampling derived from ``loss_type`` and ``train_mode``.
``get_model``, ``get_trainer`` and ``create_dataset`` answer for our model names and hand
every other name to RecBole.
"""
from recbole.config import Config as RecBoleConfig
from recbole.data import create_dataset as recbole_create_dataset
from recbole.utils import get_model as recbole_get_model
from recbole.utils import get_trainer as recbole_get_trainer

from recbole_basrec import distributed
from recbole_basrec.config import configurator
from recbole_basrec.config.models import DEDICATED, HANDWRITTEN, is_ours, stock_sequential_models
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
    {
        f"BASRec{name}": generic_basrec_class(cls)
        for name, cls in stock_sequential_models().items()
        if name not in HANDWRITTEN and name not in DEDICATED
    }
)
# Stock models with a dedicated adapter (masked items, session graphs, item features, scoring).
MODEL_CLASSES.update({name: getattr(models, name) for name in DEDICATED.values()})


def get_model(model_name):
    """The model class of ``model_name``: ours, else RecBole's."""
    if model_name in MODEL_CLASSES:
        return MODEL_CLASSES[model_name]
    try:
        return recbole_get_model(model_name)
    except (ImportError, AttributeError) as error:  # RecBole's search ends in its exlib package's imports
        raise ValueError(f"`model_name` [{model_name}] is not the name of an existing model ({error}).") from None


def get_trainer(model_type, model_name):
    """:class:`BASRecTrainer` for our models, else RecBole's choice."""
    return BASRecTrainer if model_name in MODEL_CLASSES else recbole_get_trainer(model_type, model_name)


def create_dataset(config):
    """:class:`BASRecDataset` for our models (it knows each user's history and training
    sequences), else RecBole's ``create_dataset``."""
    if config["model"] in MODEL_CLASSES:
        return BASRecDataset(config)
    return recbole_create_dataset(config)


class Config(RecBoleConfig):
    """RecBole's ``Config`` with our defaults, checks and derived values for our models. A stock
    model's ``Config`` built through this class has RecBole's settings.

    Args:
        read_command_line (bool): let RecBole parse ``sys.argv`` (RecBole's behaviour); our runner
            parses it itself and passes ``False``.
    """

    def __init__(self, model=None, dataset=None, config_file_list=None, config_dict=None, read_command_line=True):
        if isinstance(config_file_list, str):  # one path: RecBole would read it letter by letter
            config_file_list = [config_file_list]
        self._read_command_line = read_command_line
        super().__init__(model, dataset, config_file_list, config_dict)

    def _ours(self):
        return is_ours(getattr(self, "model", None))

    def _get_model_and_dataset(self, model, dataset):
        if model is None:
            model = self.external_config_dict.get("model")
        if isinstance(model, str):
            model = get_model(model)
        return super()._get_model_and_dataset(model, dataset)

    def _load_config_files(self, file_list):
        # A file must be a YAML mapping without repeated keys (RecBole keeps the last silently).
        return configurator.load_config_files(file_list)

    def _load_cmd_line(self):
        if not self._read_command_line:
            return {}
        try:
            return super()._load_cmd_line()
        except SyntaxError as error:  # RecBole's "duplicate commend arg"
            raise ValueError(f"{error}; give each --key once.") from None

    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        if is_ours(model):
            configurator.load_our_defaults(self, model, dataset)

    def _set_default_parameters(self):
        if self._ours():
            configurator.merge_defaults(self)
            configurator.validate(self)
        super()._set_default_parameters()
        if self._ours():
            configurator.derive(self)

    def _init_device(self):
        if self._ours() and "local_rank" in self.final_config_dict:  # a launched process: NCCL or gloo
            distributed.init_device(self.final_config_dict)
        else:
            super()._init_device()

    def _set_train_neg_sample_args(self):
        super()._set_train_neg_sample_args()
        if self._ours():
            configurator.set_sampling(self)
