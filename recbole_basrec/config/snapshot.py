"""What a checkpoint records of its configuration, and how a configuration is rebuilt from it.

A snapshot holds plain Python values only (checkpoints are read with ``weights_only=True``):
the model, the dataset, every resolved setting except those RecBole derives again, and which
keys the user set.
"""
import hashlib
import os

from recbole_basrec.config import schema

_PLAIN = (str, int, float, bool, type(None))
#: Keys derived again at every build, or that describe this process (``data_path`` is recorded
#: apart, as the user gave it).
NOT_RECORDED = schema.living(schema.DERIVED) | schema.living(schema.REBUILT) | schema.living(schema.LAUNCH) | {"data_path"}
#: The snapshot's sha256 of the dataset's atomic files (None where there were none to read);
#: checkpoints written before it was recorded lack it.
DATA_DIGEST = "data_digest"
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
    snapshot[DATA_DIGEST] = data_digest_of(config)
    snapshot["user_keys"] = sorted(k for k in external if k not in ("model", "dataset"))
    return snapshot


#: Suffixes of RecBole's atomic files: what a run may read of ``<data_path>/<dataset>/<dataset>.*``.
ATOMIC_SUFFIXES = ("inter", "user", "item", "kg", "link", "net")


def data_digest(folder, name):
    """sha256 over the dataset's atomic files (``name.inter``, ``name.item``, ...; names and
    contents, streamed), or None when there are none: what a resumed run or a reused comparison
    must have been trained on."""
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return None
    files = [f for f in entries if f.startswith(f"{name}.") and f.rpartition(".")[2] in ATOMIC_SUFFIXES
             and os.path.isfile(os.path.join(folder, f))]
    if not files:
        return None
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file}\0{os.path.getsize(os.path.join(folder, file))}\0".encode())
        with open(os.path.join(folder, file), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def data_digest_of(config):
    """The digest of the atomic files the run read (:func:`data_digest`): the one its
    dataset took when it was loaded, else taken now, once per config (a snapshot is taken at
    every checkpoint)."""
    digest = getattr(config, DATA_DIGEST, None)
    if digest is None:
        digest = data_digest(config["data_path"], config["dataset"])
        setattr(config, DATA_DIGEST, digest)
    return digest


def settings_of(snapshot):
    """``(model, dataset, config_dict)`` that rebuild the snapshot's configuration."""
    apart = NOT_RECORDED | {"model", "dataset", "user_keys", DATA_DIGEST}
    settings = {k: v for k, v in snapshot.items() if k not in apart}
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
