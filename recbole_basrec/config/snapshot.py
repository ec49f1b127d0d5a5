"""What a checkpoint records of its configuration, and how a configuration is rebuilt from it.

A snapshot holds plain Python values only (checkpoints are read with ``weights_only=True``):
the model, the dataset, every resolved setting except those RecBole derives again, and which
keys the user set.
"""
from recbole_basrec.config import schema

_PLAIN = (str, int, float, bool, type(None))
#: Keys derived again at every build, or that describe this process (``data_path`` is recorded
#: apart, as the user gave it).
NOT_RECORDED = schema.living(schema.DERIVED) | schema.living(schema.REBUILT) | schema.living(schema.LAUNCH) | {"data_path"}
#: Settings a resumed run may change.
RESUMABLE = schema.living(schema.RESUMABLE) | schema.living(schema.LAUNCH)


def plain(value):
    """``(value, True)`` if ``value`` is built of plain Python types, else ``(None, False)``."""
    if isinstance(value, _PLAIN):
        return value, True
    if isinstance(value, (list, tuple)):
        items = [plain(v) for v in value]
        return [v for v, _ in items], all(ok for _, ok in items)
    if isinstance(value, dict):
        items = {k: plain(v) for k, v in value.items()}
        return {k: v for k, (v, _) in items.items()}, all(ok for _, ok in items.values()) and all(
            isinstance(k, str) for k in value
        )
    return None, False


def config_snapshot(config):
    """The snapshot of a built RecBole ``Config``."""
    snapshot = {"model": config["model"], "dataset": config["dataset"]}
    for key, value in config.final_config_dict.items():
        if key in NOT_RECORDED or key in snapshot:
            continue
        value, ok = plain(value)
        if ok:
            snapshot[key] = value
    external = getattr(config, "external_config_dict", {})
    snapshot["data_path"] = external.get("data_path", "dataset/")
    snapshot["user_keys"] = sorted(k for k in external if k not in ("model", "dataset"))
    return snapshot


def settings_of(snapshot):
    """``(model, dataset, config_dict)`` that rebuild the snapshot's configuration."""
    settings = {k: v for k, v in snapshot.items() if k not in NOT_RECORDED | {"model", "dataset", "user_keys"}}
    if "data_path" in snapshot:
        settings["data_path"] = snapshot["data_path"]
    return snapshot["model"], snapshot["dataset"], settings


def changed_settings(snapshot, requested):
    """Keys of ``requested`` (what the user gives now) that differ from the snapshot and that a
    resumed run cannot change."""
    changed = []
    for key, value in requested.items():
        if key in RESUMABLE or key not in snapshot:
            continue
        if plain(value)[0] != snapshot[key]:
            changed.append(key)
    return changed
