"""Configuration: model names, our default files, the declared schema and how our ``Config``
(:class:`recbole_basrec.utils.Config`) checks them (:mod:`.configurator`). Importing this
package loads neither RecBole's modules nor torch."""
from recbole_basrec.config.files import (
    default_config_dict,
    default_config_files,
    load_yaml,
    preset_file,
    properties_dir,
)
from recbole_basrec.config.models import (
    DEDICATED,
    HANDWRITTEN,
    KNOWN_REFUSALS,
    SEQUENCE_MODE,
    OWN_BACKBONES,
    backbone_of,
    backbones,
    basrec_model_names,
    is_basrec,
    is_generic,
    is_ours,
    registered_model_names,
    resolve_model_name,
    stock_sequential_models,
    trains_sequence_mode,
)

_CONFIGURATOR = ("tta_settings", "warn_if_gpu_missing")


def __getattr__(name):
    # configurator imports RecBole (and torch): only when one of its names is asked for
    if name in _CONFIGURATOR:
        from recbole_basrec.config import configurator

        return getattr(configurator, name)
    raise AttributeError(f"module 'recbole_basrec.config' has no attribute '{name}'")
