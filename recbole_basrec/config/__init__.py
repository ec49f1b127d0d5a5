"""Configuration: model names, our default files, the declared schema and the hook that makes
RecBole's ``Config`` load and check them (see :mod:`.configurator`)."""
from recbole_basrec.config.configurator import (
    command_line_read_by_caller,
    install,
    tta_settings,
    warn_if_gpu_missing,
)
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
