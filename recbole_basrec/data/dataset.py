"""RecBole dataset for BASRec models: RecBole's splits plus the paper's training protocol.

``train_mode: prefix`` keeps RecBole's data (one sample per prefix). ``train_mode: sequence``
replaces the training split by each user's training sequence, cut into windows of
``MAX_ITEM_LIST_LENGTH`` items with a target at every position, so an epoch costs O(users).
Validation and test splits are RecBole's in both modes.
"""
import os

import numpy as np
import torch
from recbole.data.dataset import SequentialDataset
from recbole.data.interaction import Interaction
from recbole.utils import FeatureSource, FeatureType


#: Training-split field holding the next-item target of every input position (0 = none).
TARGET_LIST_FIELD = "target_item_list"
#: Evaluation-split field: how many of the user's items precede the row's target.
HISTORY_LENGTH_FIELD = "history_length"

_ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")


def recbole_downloads(name):
    """Whether RecBole knows where to download dataset ``name`` (its ``url.yaml``)."""
    import recbole
    import yaml

    url_file = os.path.join(os.path.dirname(recbole.__file__), "properties", "dataset", "url.yaml")
    with open(url_file, encoding="utf-8") as f:
        return name in (yaml.safe_load(f) or {})


def check_dataset_files(config):
    """Fail early, naming the fix, when the atomic files are missing or malformed.

    A dataset whose folder does not exist yet but that RecBole can download is left to RecBole,
    which downloads it exactly as for its own models; the files are checked when present.
    """
    name, path = config["dataset"], config["data_path"]
    inter_file = os.path.join(path, f"{name}.inter")
    if not os.path.exists(path) and recbole_downloads(name):
        return
    if not os.path.isfile(inter_file):
        raise FileNotFoundError(
            f"Dataset '{name}' not found: expected the atomic file {os.path.abspath(inter_file)}. "
            f"Put '{name}.inter' (header like 'user_id:token\\titem_id:token\\ttimestamp:float') under "
            f"{os.path.abspath(path)}, set data_path to its parent folder, or convert the paper's format "
            f"with `python -m recbole_basrec.data.convert SRC.txt DEST_DIR`."
        )
    with open(inter_file, "rb") as f:
        head = f.read(1 << 16)
    if not head:
        raise ValueError(f"Atomic file {inter_file} is empty: write a header line and one interaction per line.")
    if head.startswith(b"\xef\xbb\xbf"):
        raise ValueError(
            f"Atomic file {inter_file} starts with a byte-order mark (saved as 'UTF-8 with BOM'), which RecBole "
            f"reads as part of the first column's name; save it as plain UTF-8."
        )
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 4:  # not just a character cut at the end of the sample
            raise ValueError(f"Atomic file {inter_file} is not UTF-8 text; give a tab-separated text file.") from None
        text = head[: error.start].decode("utf-8")
    if "\x00" in text:
        raise ValueError(f"Atomic file {inter_file} is binary, not text; give a tab-separated text file.")
    lines = text.splitlines()
    header = lines[0].rstrip("\r").split(config["field_separator"])
    if not any(line.strip() for line in lines[1:]):
        raise ValueError(f"Atomic file {inter_file} has a header but no interactions: add one interaction per line.")
    fields = {}
    for column in header:
        field, _, ftype = column.partition(":")
        if ftype not in _ATOMIC_TYPES:
            raise ValueError(
                f"Malformed atomic file {inter_file}: header column '{column}' must be 'name:type' "
                f"with type in {', '.join(_ATOMIC_TYPES)} (columns separated by {config['field_separator']!r})."
            )
        fields[field] = ftype
    for key in ("USER_ID_FIELD", "ITEM_ID_FIELD", "TIME_FIELD"):
        if config[key] not in fields:
            raise ValueError(
                f"Malformed atomic file {inter_file}: no '{config[key]}' column ({key}); sequential "
                f"recommendation needs user, item and time columns (found: {', '.join(fields) or 'none'})."
            )


def training_sequences(split_datasets, n_users):
    """Each user's training sequence, in time order, as CSR arrays ``(user_ptr, items)``.

    Built from RecBole's prefix samples: a user's first item is the history of the user's
    length-1 sample (whatever split it fell into) and the rest are the training targets.
    """
    train = split_datasets[0]
    uid, iid = train.uid_field, train.iid_field
    users, items, order = [], [], []
    for dataset in split_datasets:
        feat = dataset.inter_feat
        first = feat[dataset.item_list_length_field].numpy() == 1
        users.append(feat[uid].numpy()[first])
        items.append(feat[dataset.item_id_list_field].numpy()[first, 0])
        order.append(np.full(first.sum(), -1))
    users.append(train.inter_feat[uid].numpy())
    items.append(train.inter_feat[iid].numpy())
    order.append(np.arange(len(train.inter_feat)))
    users, items, order = (np.concatenate(a) for a in (users, items, order))
    keep = np.lexsort((order, users))
    users, items = users[keep], items[keep].astype(np.int64)
    user_ptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=user_ptr[1:])
    return user_ptr, items


def drop_last_items(user_ptr, items):
    """The same CSR sequences without each user's last item (training inputs, not targets)."""
    counts = np.diff(user_ptr)
    keep = np.ones(len(items), dtype=bool)
    keep[user_ptr[1:][counts > 0] - 1] = False
    new_ptr = np.zeros_like(user_ptr)
    np.cumsum(np.maximum(counts - 1, 0), out=new_ptr[1:])
    return new_ptr, items[keep]


def eval_histories(user_ptr, items, eval_splits):
    """Each user's whole sequence and, for every row of the evaluation splits, how many of its
    items precede that row's target.

    The whole sequence is the training sequence followed by the user's targets in each
    evaluation split, in order (RecBole's time-ordered leave-one-out). Returns
    ``(full_ptr, full_items, [history_length per split])``; a row's history is
    ``full_items[full_ptr[u] : full_ptr[u] + history_length]``.
    """
    n_users = len(user_ptr) - 1
    users = [np.repeat(np.arange(n_users), np.diff(user_ptr))]
    parts = [np.asarray(items, dtype=np.int64)]
    for split in eval_splits:
        feat = split.inter_feat
        users.append(feat[split.uid_field].numpy())
        parts.append(feat[split.iid_field].numpy().astype(np.int64))
    sizes = [len(u) for u in users]
    users, parts = np.concatenate(users), np.concatenate(parts)
    order = np.argsort(users, kind="stable")  # per user: training items, then each split's rows
    full_ptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=full_ptr[1:])
    position = np.empty(len(users), dtype=np.int64)
    position[order] = np.arange(len(users)) - full_ptr[users[order]]
    bounds = np.cumsum(sizes)
    lengths = [position[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
    return full_ptr, parts[order], lengths


def sequence_windows(user_ptr, items, max_len, last_only=False):
    """Cut training sequences into next-item windows: every target appears exactly once.

    A user with ``m`` training items has targets at positions ``1..m-1``; windows of up to
    ``max_len`` targets are taken from the end backwards (``last_only``: the last one only,
    as the reference code does). Returns ``users, inputs (W, L), targets (W, L), lengths``.
    """
    n_targets = np.maximum(np.diff(user_ptr) - 1, 0)
    n_windows = np.where(n_targets > 0, 1, 0) if last_only else -(-n_targets // max_len)
    users = np.repeat(np.arange(len(n_targets)), n_windows)
    # k-th window from the end of its user
    k = np.arange(len(users)) - np.repeat(np.cumsum(n_windows) - n_windows, n_windows)
    end = n_targets[users] - k * max_len  # last target position, 1-based within the sequence
    lengths = np.minimum(end, max_len)
    start = end - lengths + 1
    offs = np.arange(max_len)
    valid = offs[None, :] < lengths[:, None]
    first_input = user_ptr[users] + start - 1
    idx = np.where(valid, first_input[:, None] + offs[None, :], 0)
    inputs = np.where(valid, items[idx], 0)
    targets = np.where(valid, items[np.minimum(idx + 1, len(items) - 1)], 0)
    return users, inputs, targets, lengths


def _target_in_history(full_ptr, full_items, users, targets, history_length):
    """How many rows' target item occurs among that user's first ``history_length`` items."""
    n_users = len(full_ptr) - 1
    owner = np.repeat(np.arange(n_users), np.diff(full_ptr))
    position = np.arange(len(full_items)) - full_ptr[owner]
    pair = owner.astype(np.int64) * (int(full_items.max(initial=0)) + 1) + full_items
    order = np.lexsort((position, pair))
    unique, start = np.unique(pair[order], return_index=True)
    first_position = position[order][start]
    row_pair = users.astype(np.int64) * (int(full_items.max(initial=0)) + 1) + targets
    index = np.searchsorted(unique, row_pair)
    index = np.minimum(index, len(unique) - 1)
    found = unique[index] == row_pair
    return int(np.sum(found & (first_position[index] < history_length)))


class BASRecDataset(SequentialDataset):
    """:class:`SequentialDataset` that also offers BASRec's ``sequence`` training protocol and
    exposes each user's training sequence (for the item similarity of M-Substitute)."""

    def __init__(self, config):
        check_dataset_files(config)
        try:
            super().__init__(config)
        except ValueError as error:
            if "Unable to convert column" not in str(error):
                raise
            inter_file = os.path.join(config["data_path"], f"{config['dataset']}.inter")
            raise ValueError(
                f"{error} in {inter_file}: every value of a ':float' column must be a number "
                f"(write timestamps as numbers, e.g. Unix seconds, or declare the column ':token')."
            ) from None

    def _data_filtering(self):
        self._refuse_missing_times()
        self._drop_exact_duplicates()
        super()._data_filtering()

    def _refuse_missing_times(self):
        # RecBole would fill them with the column mean, which reorders the user's sequence.
        if self.time_field not in self.inter_feat:
            return
        missing = int(self.inter_feat[self.time_field].isna().sum())
        if missing:
            raise ValueError(
                f"Dataset '{self.dataset_name}': {missing} of {len(self.inter_feat)} interactions have no "
                f"{self.time_field}; fill them in or drop those rows (leave-one-out orders each user's items by time)."
            )

    def _drop_exact_duplicates(self):
        fields = [f for f in (self.uid_field, self.iid_field, self.time_field) if f in self.inter_feat]
        duplicated = self.inter_feat.duplicated(subset=fields)
        count = int(duplicated.sum())
        if count:
            self.inter_feat = self.inter_feat[~duplicated.to_numpy()]
            self.logger.warning(
                f"Dataset '{self.dataset_name}': dropped {count} duplicated ({', '.join(fields)}) rows of "
                f"{count + len(self.inter_feat)}; a copy of an evaluation target would sit in its own history."
            )

    def build(self):
        built = super().build()
        empty = [name for name, split in zip(("training", "validation", "test"), built) if len(split) == 0]
        if empty:
            raise ValueError(
                f"Dataset '{self.dataset_name}' has no {' or '.join(empty)} samples: leave-one-out needs at "
                f"least 3 interactions per user (train, valid, test); drop shorter users (e.g. "
                f"user_inter_num_interval: '[3,inf)') or add interactions."
            )
        user_ptr, items = training_sequences(built, self.user_num)
        train = built[0]
        if self.config["train_mode"] == "sequence":
            train = self._windowed_train_split(user_ptr, items)
        train.basrec_train_sequences = (user_ptr, items)
        full_ptr, full_items, lengths = eval_histories(user_ptr, items, built[1:])
        self._warn_about_evaluation(built, full_ptr, full_items, lengths)
        self.set_field_property(HISTORY_LENGTH_FIELD, FeatureType.TOKEN, FeatureSource.INTERACTION, 1)
        for split, length in zip(built[1:], lengths):
            split.inter_feat.update(Interaction({HISTORY_LENGTH_FIELD: torch.from_numpy(length)}))
            # Read by the trainer to exclude each user's history from the full ranking.
            split.basrec_history = (full_ptr, full_items)
        return [train] + list(built[1:])

    def _warn_about_evaluation(self, built, full_ptr, full_items, lengths):
        """Say how many users are not evaluated, and how many targets the history mask hides."""
        evaluated = np.union1d(*(split.inter_feat[self.uid_field].numpy() for split in built[1:]))
        users = self.user_num - 1  # id 0 is padding
        if len(evaluated) < users:
            self.logger.warning(
                f"Dataset '{self.dataset_name}': {users - len(evaluated)} of {users} users have fewer than 3 "
                f"interactions and are not evaluated (leave-one-out needs a train, a valid and a test item)."
            )
        if not self.config["eval_mask_history"]:
            return
        names = ("validation", "test")
        for name, split, length in zip(names, built[1:], lengths):
            user = split.inter_feat[self.uid_field].numpy()
            target = split.inter_feat[self.iid_field].numpy()
            repeated = _target_in_history(full_ptr, full_items, user, target, length)
            if repeated:
                self.logger.warning(
                    f"Dataset '{self.dataset_name}': {repeated} of {len(user)} {name} targets also occur earlier "
                    f"in the user's history, which eval_mask_history=True removes from the ranking, so they "
                    f"count as misses; set eval_mask_history=False to rank repeats."
                )

    def _windowed_train_split(self, user_ptr, items):
        max_len = self.config["MAX_ITEM_LIST_LENGTH"]
        last_only = self.config["sequence_windows"] == "last"
        users, inputs, targets, lengths = sequence_windows(user_ptr, items, max_len, last_only)
        if len(users) == 0:
            raise ValueError(
                f"Dataset '{self.dataset_name}' has no training interactions for train_mode=sequence: "
                f"every user needs at least 3 interactions (train, valid, test)."
            )
        self.set_field_property(TARGET_LIST_FIELD, FeatureType.TOKEN_SEQ, FeatureSource.INTERACTION, max_len)
        last_target = targets[np.arange(len(users)), lengths - 1]
        feat = Interaction(
            {
                self.uid_field: torch.from_numpy(users),
                self.item_id_list_field: torch.from_numpy(inputs),
                self.item_list_length_field: torch.from_numpy(lengths),
                TARGET_LIST_FIELD: torch.from_numpy(targets),
                self.iid_field: torch.from_numpy(last_target),
            }
        )
        return self.copy(feat)
