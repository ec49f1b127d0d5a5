"""Our default YAML files (``properties/``) and how they are read.

RecBole reads a model's defaults only from its own package folder; ours live in
``properties/`` and the configuration hook (:mod:`recbole_basrec.config.configurator`) loads
them under the user's files, dict and command line.
"""
import os
import re
import sys

import yaml

import recbole

from recbole_basrec.config.models import backbone_of, is_basrec, is_generic


def properties_dir():
    """The ``properties/`` folder: beside the package in a checkout or editable install,
    under ``<prefix>/share/recbole-basrec`` after a plain ``pip install`` (``--user``: the user base)."""
    import site

    candidates = [
        os.environ.get("RECBOLE_BASREC_PROPERTIES", ""),
        os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "properties"),
        os.path.join(sys.prefix, "share", "recbole-basrec", "properties"),
        os.path.join(site.getuserbase(), "share", "recbole-basrec", "properties"),
    ]
    for path in candidates:
        if path and os.path.isfile(os.path.join(path, "overall.yaml")):
            return path
    raise FileNotFoundError(
        "recbole-basrec cannot find its properties/ folder; reinstall with `pip install .` "
        "or set RECBOLE_BASREC_PROPERTIES to the folder holding overall.yaml"
    )


def docs_dir():
    """The ``docs/`` folder, found as :func:`properties_dir` is (installed under
    ``<prefix>/share/recbole-basrec/docs``)."""
    return os.path.join(os.path.dirname(properties_dir()), "docs")


def stock_properties_dir():
    return os.path.join(os.path.dirname(recbole.__file__), "properties")


class _Loader(yaml.FullLoader):
    """RecBole's YAML convention (``1e-12`` is a float, PyYAML reads it as a string), and a key
    given twice in one mapping is an error instead of the last one silently winning."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(path):
    """A YAML mapping file as a dict; a one-line ValueError naming the file for anything else."""
    if os.path.isdir(path):
        raise ValueError(f"Config file '{path}' is a directory; give the YAML file itself to --config_files.")
    if not os.path.isfile(path) and "," in os.path.basename(path):
        raise FileNotFoundError(f"Config file '{path}' not found; separate several files with spaces: "
                                "--config_files=\"a.yaml b.yaml\".")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Config file '{path}' not found; check the path given to --config_files.")
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = yaml.load(f.read(), Loader=_Loader)
    except UnicodeDecodeError:
        raise ValueError(f"Config file '{path}' is not UTF-8 text; give a YAML file.") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ValueError(f"Config file '{path}' is not valid YAML{where} ({problem}); fix it there.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(
            f"Config file '{path}' holds a {type(data).__name__}, not a mapping; write one 'key: value' per line."
        )
    return data


def default_config_files(model_name, dataset=None):
    """YAML files holding ``model_name``'s defaults (and ``dataset``'s, if we ship any),
    lowest priority first."""
    backbone = backbone_of(model_name)
    props = properties_dir()
    stock = os.path.join(stock_properties_dir(), "model", f"{backbone}.yaml")
    files = [stock if os.path.isfile(stock) else os.path.join(props, "model", f"{backbone}.yaml")]
    files.append(os.path.join(props, "overall.yaml"))
    if is_basrec(model_name):
        files.append(os.path.join(props, "model", "BASRec.yaml"))
    own = os.path.join(props, "model", f"{model_name}.yaml")
    if model_name != backbone and os.path.isfile(own):
        files.append(own)
    if is_generic(model_name):
        files.append(os.path.join(props, "model", "BASRec-generic.yaml"))
    preset = preset_file(backbone, dataset)
    if preset:
        files.append(preset)
    data_file = os.path.join(props, "dataset", f"{dataset}.yaml")
    if dataset and os.path.isfile(data_file):
        files.append(data_file)
    return files


def preset_file(backbone, dataset):
    """The authors' published settings for ``backbone`` on ``dataset``, if we ship them
    (``properties/preset/<backbone>-<dataset>.yaml``), else None."""
    if not dataset:
        return None
    path = os.path.join(properties_dir(), "preset", f"{backbone}-{dataset}.yaml")
    return path if os.path.isfile(path) else None


def default_config_dict(model_name, dataset=None):
    """``model_name``'s defaults merged into one dict (later files win)."""
    merged = {}
    for path in default_config_files(model_name, dataset):
        merged.update(load_yaml(path))
    return merged


def unwritable(folder):
    """Why files cannot be written in ``folder`` (made if missing), or None when they can."""
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".write-test-{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        return error.strerror or type(error).__name__
    return None
