"""Checkpoints of the BASRec authors' code (KingGugu/BASRec) as state dicts of our models.

The authors save plain ``state_dict``s whose item rows are the raw item ids of their data file
(row ``i`` = item ``i``, ``max id + 2`` rows: padding 0 and one unused id at the end). We map

* parameter names to RecBole's (``item_encoder.layer.0.attention.query`` ->
  ``trm_encoder.layer.0.multi_head_attention.query``, ...), and
* item rows to RecBole's internal ids through the dataset's token map (raw token -> id).

Position embeddings keep their rows: the authors pad on the left, so their position ``p`` is
"``L - 1 - p`` items before the most recent", which is what our ``align: recent`` computes.
"""
import re

import numpy as np

#: Backbone -> ((authors' name pattern, our name), ...) applied in order; unmatched names are kept.
_RENAMES = {
    "SASRec": (
        (r"^item_embeddings\.", "item_embedding."),
        (r"^position_embeddings\.", "position_embedding."),
        (r"^item_encoder\.layer\.(\d+)\.attention\.", r"trm_encoder.layer.\1.multi_head_attention."),
        (r"^item_encoder\.layer\.(\d+)\.intermediate\.", r"trm_encoder.layer.\1.feed_forward."),
    ),
    "GRU4Rec": ((r"^item_embeddings\.", "item_embedding."),),
}
#: A key only the authors' checkpoint of that backbone has.
_SIGNATURES = {
    "SASRec": "item_encoder.layer.0.attention.query.weight",
    "GRU4Rec": "gru_layers.weight_ih_l0",
}
_ITEM_TABLE = "item_embeddings.weight"


def is_authors_checkpoint(checkpoint, model=None):
    """Whether a loaded ``checkpoint`` comes from the authors' code.

    BASRec's code names its item table ``item_embeddings``. The same authors' TTA4SR code names
    its GRU4Rec table ``item_embedding``, as RecBole does; such a checkpoint is a bare state dict
    (RecBole's trainers wrap theirs in ``{"state_dict": ...}``) whose table does not have
    ``model``'s row count (theirs has one row per raw id plus two).
    """
    state_dict = checkpoint.get("state_dict", checkpoint)
    if _ITEM_TABLE in state_dict:
        return True
    table = state_dict.get("item_embedding.weight")
    return ("state_dict" not in checkpoint and model is not None and table is not None
            and authors_backbone(state_dict) == "GRU4Rec"
            and table.size(0) != model.item_embedding.weight.size(0))


def authors_backbone(state_dict):
    for backbone, key in _SIGNATURES.items():
        if key in state_dict:
            return backbone
    return None


def convert_authors_state_dict(state_dict, model, backbone, source="checkpoint"):
    """The authors' ``state_dict`` as one ``model`` (built on ``backbone``) loads.

    Raises a one-line ``ValueError`` naming the problem when the checkpoint is for another
    backbone, another model size or another dataset.
    """
    found = authors_backbone(state_dict)
    if found is None:
        raise ValueError(
            f"{source} looks like the BASRec authors' code but matches none of their backbones "
            f"({', '.join(_SIGNATURES)}); use one of their SASRec or GRU4Rec checkpoints."
        )
    if found != backbone:
        raise ValueError(
            f"{source} is the authors' {found} checkpoint but the model is {backbone}: "
            f"run with --model={found} or use their {backbone} checkpoint."
        )
    item_tokens = getattr(model, "item_tokens", None)
    if item_tokens is None:
        raise ValueError(f"{source}: the authors' checkpoints load only into recbole_basrec's models.")
    renamed = {}
    for key, value in state_dict.items():
        new_key = key
        for pattern, replacement in _RENAMES[backbone]:
            new_key = re.sub(pattern, replacement, new_key)
        renamed[new_key] = value
    table = renamed["item_embedding.weight"]
    renamed["item_embedding.weight"] = table[_raw_rows(item_tokens, table.size(0), source)]

    expected = model.state_dict()
    missing = sorted(set(expected) - set(renamed))
    unexpected = sorted(set(renamed) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{source} does not fit this {backbone}: missing {missing[:3]}, unexpected {unexpected[:3]}; "
            f"set n_layers / num_layers to the checkpoint's."
        )
    for key, value in renamed.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"{source} does not fit this {backbone}: '{key}' is {tuple(value.shape)} in the checkpoint, "
                f"{tuple(expected[key].shape)} in the model; set the model size (hidden_size, embedding_size, "
                f"inner_size, MAX_ITEM_LIST_LENGTH) to the checkpoint's."
            )
    return renamed


def _raw_rows(item_tokens, n_rows, source):
    """For every internal item id, the row of the authors' table (padding 0 -> row 0)."""
    try:
        raw = np.array([int(token) for token in item_tokens[1:]], dtype=np.int64)
    except ValueError:
        raise ValueError(
            f"{source}: the dataset's item tokens are not the integer ids of the authors' data file; "
            f"convert it with `python -m recbole_basrec.data.convert FILE.txt dataset/`."
        ) from None
    if raw.size == 0 or raw.min() < 1 or raw.max() + 2 != n_rows:
        largest = int(raw.max()) if raw.size else 0
        raise ValueError(
            f"{source} was trained on another dataset: it has {n_rows} item rows, this dataset's largest "
            f"item id is {largest} (expected {largest + 2} rows); use the checkpoint of this dataset."
        )
    return np.concatenate([[0], raw])
