"""The configuration reference, generated from the schema: ``--help`` and ``docs/configuration.md``.

    python -m recbole_basrec.config.reference > docs/configuration.md
"""
import os

from recbole_basrec.config import schema
from recbole_basrec.config.files import docs_dir, load_yaml, properties_dir, stock_properties_dir

#: Where each scope's defaults are read, highest priority first.
_DEFAULT_FILES = {
    schema.BASREC: ("model/BASRecSASRec.yaml", "model/BASRec.yaml", "overall.yaml"),
    schema.OURS: ("overall.yaml",),
    schema.FMLPREC: ("model/BASRecFMLPRec.yaml", "model/FMLPRec.yaml"),
    schema.RECBOLE: ("overall.yaml",),
}


def defaults():
    """Key -> default, as a run without presets gets it (hand-written adapters' BASRec defaults)."""
    result = {}
    stock = load_yaml(os.path.join(stock_properties_dir(), "overall.yaml"))
    for key in schema.KEYS:
        if key.scope == schema.BACKBONE:  # each backbone's own default
            continue
        for name in _DEFAULT_FILES[key.scope]:
            values = load_yaml(os.path.join(properties_dir(), name))
            if key.name in values:
                result[key.name] = values[key.name]
                break
        else:
            # a key none of our files sets: RecBole's default
            backbone = load_yaml(os.path.join(stock_properties_dir(), "model", "SASRec.yaml"))
            result[key.name] = stock.get(key.name, backbone.get(key.name))
    return result


def _shown(values, key):
    if key.scope == schema.BACKBONE:
        return "the backbone's"
    value = values[key.name]
    return "~" if value is None else str(value)


def help_epilog():
    """The keys of ``--help``: one line each, grouped by whom they apply to."""
    values = defaults()
    lines = [f"docs: {docs_dir()} (configuration.md: every key and its meaning; distributed.md: several processes; "
             "errors.md: what each error line means)\n",
             "configuration keys (--key=value):"]
    for scope in schema.SCOPES:
        lines.append(f"\n{scope}:")
        for key in schema.KEYS:
            if key.scope == scope:
                lines.append(f"  --{key.name}={_shown(values, key)}  ({key.expectation()}) {key.meaning}")
    lines.append(
        f"\nPer-backbone defaults override these ({os.path.join(properties_dir(), 'model')}), and the authors' "
        f"published settings ({os.path.join(properties_dir(), 'preset', '<backbone>-<dataset>.yaml')}) apply on "
        "their datasets. Any other RecBole key "
        "(--hidden_size=64, ...) works as in RecBole; an unknown key stops the run."
    )
    return "\n".join(lines)


def markdown():
    values = defaults()
    out = [
        "# Configuration keys",
        "",
        "Generated from the schema (`recbole_basrec/config/schema.py`) by "
        "`python -m recbole_basrec.config.reference > docs/configuration.md`; a test keeps it in step.",
        "",
        "Keys are given as RecBole's are: `--key=value` on the command line, a YAML file "
        "(`--config_files`), or `config_dict`. Later layers win: our defaults (`properties/overall.yaml`, "
        "`properties/model/`), then the authors' published settings where we ship a preset "
        "(`properties/preset/<backbone>-<dataset>.yaml`), then the user's files, dict and command line. "
        "Every key below is checked at start-up; a key neither RecBole nor we know stops the run "
        "(`strict_keys=False` lets keys of your own models through with a warning).",
        "",
        "Defaults are those of a hand-written adapter without a preset; `BASRecGRU4Rec` uses beta 0.3 and "
        "rate_max 0.51 (`properties/model/BASRecGRU4Rec.yaml`), the generic path train_mode prefix and "
        "align first (`properties/model/BASRec-generic.yaml`).",
    ]
    for scope in schema.SCOPES:
        out += ["", f"## {scope}", "", "| key | default | takes | meaning |", "|---|---|---|---|"]
        for key in schema.KEYS:
            if key.scope == scope:
                meaning = key.meaning.replace("|", "\\|")
                out.append(f"| `{key.name}` | `{_shown(values, key)}` | {key.expectation()} | {meaning} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
