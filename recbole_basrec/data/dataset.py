"""RecBole dataset for BASRec models: RecBole's splits plus the paper's training protocol.

``train_mode: prefix`` keeps RecBole's data (one sample per prefix). ``train_mode: sequence``
replaces the training split by each user's training sequence, cut into windows of
``MAX_ITEM_LIST_LENGTH`` items with a target at every position, so an epoch costs O(users).
Validation and test splits are RecBole's in both modes; in sequence mode only the prefix
samples those splits need are made (memory O(users x L), not O(interactions x L)).
"""
import os

import numpy as np
import torch
from recbole.data.dataset import SequentialDataset
from recbole.data.interaction import Interaction
from recbole.utils import FeatureSource, FeatureType

from recbole_basrec.config.snapshot import data_digest_of


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
    if os.path.isdir(inter_file):
        raise ValueError(f"Atomic file {os.path.abspath(inter_file)} is a directory; put the dataset's "
                         f"tab-separated '{name}.inter' file there instead.")
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
        if field in fields:  # pandas would end in 'Length mismatch', naming neither file nor column
            raise ValueError(f"Malformed atomic file {inter_file}: the header names column '{field}' twice; "
                             f"rename or remove one of them.")
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
    time_type = fields[config["TIME_FIELD"]]
    if time_type != "float":
        # RecBole remaps a token column to ids in order of first appearance and sorts by those ids:
        # each user's items would follow the file's order, not time.
        raise ValueError(
            f"Malformed atomic file {inter_file}: the time column '{config['TIME_FIELD']}' is declared "
            f"':{time_type}', but times must be numbers declared ':float' ("
            + ("RecBole would order each user's items by where each time first appears in the file, not by time"
               if time_type.startswith("token") else "a list per row gives no time order")
            + f"); write it '{config['TIME_FIELD']}:float' with numeric times, e.g. Unix seconds.")
    for key in ("USER_ID_FIELD", "ITEM_ID_FIELD"):
        if fields[config[key]] != "token":
            raise ValueError(
                f"Malformed atomic file {inter_file}: column '{config[key]}' is declared ':{fields[config[key]]}', "
                f"but user and item ids are tokens; write it '{config[key]}:token'.")
    _check_row_widths(inter_file, config["field_separator"], len(header), lines[0].rstrip("\r"))


def _check_row_widths(path, separator, width, header):
    """Refuse rows with more or fewer fields than the header (RecBole's reader drops the extra
    fields of a longer row and fills a shorter one with missing values, without a word), and the
    header repeated as a row (files joined by concatenation)."""
    if len(separator) != 1:
        return
    data = np.fromfile(path, dtype=np.uint8)
    raw = data.tobytes()
    repeat = raw.find(b"\n" + header.encode("utf-8") + b"\n")
    if repeat >= 0:
        line = raw.count(b"\n", 0, repeat + 1) + 1
        raise ValueError(f"Malformed atomic file {path}: line {line} repeats the header (files joined together?); "
                         "remove it.")
    if data.size == 0:
        return
    ends = np.flatnonzero(data == ord("\n"))
    if ends.size == 0 or ends[-1] != data.size - 1:
        ends = np.append(ends, data.size)  # a last line without a newline
    starts = np.concatenate([[0], ends[:-1] + 1])
    seps = np.flatnonzero(data == ord(separator))
    counts = np.searchsorted(seps, ends) - np.searchsorted(seps, starts)
    lengths = ends - starts
    carriage = (lengths > 0) & (data[np.minimum(ends - 1, data.size - 1)] == ord("\r"))
    blank = (lengths - carriage) == 0  # skipped by the reader
    bad = np.flatnonzero((counts != width - 1) & ~blank)
    if bad.size:
        first = int(bad[0])
        raise ValueError(
            f"Malformed atomic file {path}: {bad.size} of {int((~blank).sum()) - 1} rows do not have the header's "
            f"{width} fields (first: line {first + 1} has {int(counts[first]) + 1}); fix or remove those rows.")


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


def _mean_count(values):
    """Mean occurrences of the distinct values (RecBole's ``mean(Counter(values).values())``)."""
    if len(values) == 0:
        return float("nan")
    return float(len(values) / len(np.unique(values)))


class BASRecDataset(SequentialDataset):
    """:class:`SequentialDataset` that also offers BASRec's ``sequence`` training protocol and
    exposes, on the splits :meth:`build` returns, each user's training sequence (for the item
    similarity of M-Substitute) and the history the evaluation masks."""

    #: The training split's ``(user_ptr, items)``: every user's training sequence (its inputs and
    #: last target) in CSR form, ``items[user_ptr[u]:user_ptr[u + 1]]`` in time order.
    train_sequences = None
    #: The validation and test splits' ``(user_ptr, items)``: every user's items before the one
    #: evaluated, which a full ranking excludes (``eval_mask_history``).
    eval_history = None

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
                f"(write timestamps as numbers, e.g. Unix seconds)."
            ) from None
        data_digest_of(config)  # taken as the files are read: what the run's checkpoints record

    def _data_filtering(self):
        self._refuse_missing_times()
        self._drop_exact_duplicates()
        self._keep_last_interactions()
        # Interactions per user and per item as RecBole's filters will see them, for _filtered_away.
        self._raw_counts = [(int(c.min()), int(c.max())) if len(c) else (0, 0) for c in
                            (self.inter_feat[f].value_counts() for f in (self.uid_field, self.iid_field))]
        try:
            super()._data_filtering()
        except ValueError as error:
            if "Some feat is empty" not in str(error):
                raise
            raise ValueError(self._filtered_away()) from None

    #: RecBole's filter keys and the values that filter nothing.
    _FILTER_KEYS = {"user_inter_num_interval": "[0,inf)", "item_inter_num_interval": "[0,inf)", "val_interval": None}

    def _filtered_away(self):
        """The line for filters that left no interaction: RecBole says only 'Some feat is empty'."""
        given = {key: self.config[key] for key, noop in self._FILTER_KEYS.items()
                 if self.config[key] not in (None, {}, noop) and str(self.config[key]).replace(" ", "") != noop}
        users = self._raw_counts[0]
        items = self._raw_counts[1]
        named = ", ".join(f"{key}={str(value)!r}" for key, value in given.items()) or "RecBole's filters"
        return (f"Dataset '{self.dataset_name}': {named} {'leaves' if len(given) == 1 else 'leave'} no interaction "
                f"(before filtering, users have {users[0]} to {users[1]} interactions and items {items[0]} to "
                f"{items[1]}); widen {'it' if len(given) == 1 else 'them'} to keep some interactions (leave-one-out "
                f"needs users with at least 3) or drop {'it' if len(given) == 1 else 'them'}.")

    def _keep_last_interactions(self):
        """``keep_last_interactions: K`` keeps each user's K most recent interactions: a sparser
        view of a dense dataset (BASRec's gain depends on sparsity, docs/sparsity.md)."""
        keep = self.config["keep_last_interactions"]
        if keep <= 0:
            return
        feat = self.inter_feat
        order = [self.uid_field] + ([self.time_field] if self.time_field in feat else [])
        ranked = feat.sort_values(order, kind="stable")
        kept = ranked.groupby(self.uid_field, sort=False).tail(keep)
        dropped = len(feat) - len(kept)
        if dropped:
            self.inter_feat = feat.loc[kept.index.sort_values()]
            self.logger.warning(
                f"Dataset '{self.dataset_name}': keep_last_interactions={keep} kept each user's last {keep} "
                f"interactions, dropping {dropped} of {len(feat)} ({100 * dropped / len(feat):.1f}%)."
            )

    def _refuse_missing_times(self):
        # RecBole would fill them with the column mean, which reorders the user's sequence.
        if self.time_field not in self.inter_feat:
            return
        times = self.inter_feat[self.time_field]
        missing = int(times.isna().sum())
        if missing:
            raise ValueError(
                f"Dataset '{self.dataset_name}': {missing} of {len(self.inter_feat)} interactions have no "
                f"{self.time_field}; fill them in or drop those rows (leave-one-out orders each user's items by time)."
            )
        # 'inf' and numbers beyond float range read as inf: ties that make the time order arbitrary.
        infinite = int(np.isinf(times.to_numpy()).sum()) if times.dtype.kind == "f" else 0
        if infinite:
            raise ValueError(
                f"Dataset '{self.dataset_name}': {infinite} of {len(self.inter_feat)} interactions have an infinite "
                f"{self.time_field} ('inf' or a number beyond 1.8e308); give finite times or drop those rows "
                "(leave-one-out orders each user's items by time)."
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

    def data_augmentation(self):
        """RecBole's prefix samples; in ``train_mode: sequence``, only those :meth:`build` uses.

        Sequence mode replaces RecBole's training split, so of each user's prefix samples only
        the first (whose position in the time order fixes the user's row order in every split)
        and the last two (validation and test) are made. RecBole's leave-one-out then gives the
        same validation and test rows, in the same order, as on all samples. The training
        sequences come from the interactions here instead of from the training split. Prefix
        mode, other splits than ``{'LS': 'valid_and_test'}`` by user, and fields other than
        1-D tokens and floats take RecBole's path.
        """
        self._basrec_sequences = self._basrec_stats = None
        feat = self.inter_feat
        plain = all(v.dim() == 1 for v in feat.interaction.values()) and self.max_item_list_len >= 2
        eval_args = self.config["eval_args"]
        leave_one_out = eval_args["split"] == {"LS": "valid_and_test"} and eval_args["group_by"] == "user"
        if self.config["train_mode"] != "sequence" or not plain or not leave_one_out:
            return super().data_augmentation()
        self._aug_presets()
        self._check_field("uid_field", "time_field")
        self.sort(by=[self.uid_field, self.time_field], ascending=True)
        uid = feat[self.uid_field].numpy()
        n = len(uid)
        first = np.flatnonzero(np.r_[True, uid[1:] != uid[:-1]]) if n else np.zeros(0, dtype=np.int64)
        count = np.diff(np.r_[first, n])
        row_first = np.repeat(first, count)
        position = np.arange(n) - row_first  # 0-based position within the user's sequence
        row_count = np.repeat(count, count)
        # RecBole's leave-one-out keeps min(2, samples - 1) samples of a user for evaluation.
        held_out = np.minimum(2, np.maximum(row_count - 2, 0))
        in_train = (position < row_count - held_out) & (row_count >= 2)
        self._basrec_sequences = self._csr(uid[in_train], feat[self.iid_field].numpy()[in_train])
        is_target = position >= 1
        self._basrec_stats = {
            "inter_num": int(is_target.sum()),
            "avg_actions_of_users": float(np.mean(count[count >= 2] - 1)) if (count >= 2).any() else float("nan"),
            "avg_actions_of_items": _mean_count(feat[self.iid_field].numpy()[is_target]),
        }
        del row_first, row_count, held_out, in_train
        target = np.flatnonzero(is_target & ((position == 1) | (position >= np.repeat(count, count) - 2)))
        del is_target
        length = np.minimum(position[target], self.max_item_list_len)
        del position
        new_feat = Interaction({field: value[target] for field, value in feat.interaction.items()})
        lists = {self.item_list_length_field: torch.from_numpy(length.astype(np.int64))}
        fields = [field for field in feat.interaction if field != self.uid_field]
        for field in fields:
            lists[getattr(self, f"{field}_list_field")] = feat[field].new_zeros((len(target), self.max_item_list_len))
        offsets = np.arange(self.max_item_list_len)
        block = 1 << 16  # rows at a time: the gather indices stay small
        for lo in range(0, len(target), block):
            rows = slice(lo, lo + block)
            valid = torch.from_numpy(offsets[None, :] < length[rows, None])
            index = torch.from_numpy((target[rows] - length[rows])[:, None] + offsets[None, :]).clamp_(max=n - 1)
            for field in fields:
                lists[getattr(self, f"{field}_list_field")][rows] = feat[field][index].masked_fill_(~valid, 0)
        new_feat.update(Interaction(lists))
        self.inter_feat = new_feat
        self._basrec_stats["feat"] = new_feat

    def _csr(self, users, items):
        user_ptr = np.zeros(self.user_num + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=self.user_num), out=user_ptr[1:])
        return user_ptr, items.astype(np.int64)

    def _stock_stat(self, name):
        """RecBole's statistic of all prefix samples, while ``inter_feat`` holds only the kept ones."""
        stats = getattr(self, "_basrec_stats", None)
        if stats is not None and stats["feat"] is self.inter_feat:
            return stats[name]
        return getattr(super(), name)

    @property
    def inter_num(self):
        return self._stock_stat("inter_num")

    @property
    def avg_actions_of_users(self):
        return self._stock_stat("avg_actions_of_users")

    @property
    def avg_actions_of_items(self):
        return self._stock_stat("avg_actions_of_items")

    def build(self):
        built = super().build()
        empty = [name for name, split in zip(("training", "validation", "test"), built) if len(split) == 0]
        if empty:
            raise ValueError(
                f"Dataset '{self.dataset_name}' has no {' or '.join(empty)} samples: leave-one-out needs at "
                f"least 3 interactions per user (train, valid, test); drop shorter users (e.g. "
                f"user_inter_num_interval: '[3,inf)') or add interactions."
            )
        if getattr(self, "_basrec_sequences", None) is not None:
            user_ptr, items = self._basrec_sequences
            self._basrec_sequences = None
        else:
            user_ptr, items = training_sequences(built, self.user_num)
        train = built[0]
        if self.config["train_mode"] == "sequence":
            train = self._windowed_train_split(user_ptr, items)
        train.train_sequences = (user_ptr, items)
        full_ptr, full_items, lengths = eval_histories(user_ptr, items, built[1:])
        self._warn_about_evaluation(built, full_ptr, full_items, lengths)
        self._warn_about_window(user_ptr)
        self.set_field_property(HISTORY_LENGTH_FIELD, FeatureType.TOKEN, FeatureSource.INTERACTION, 1)
        for split, length in zip(built[1:], lengths):
            split.inter_feat.update(Interaction({HISTORY_LENGTH_FIELD: torch.from_numpy(length)}))
            split.eval_history = (full_ptr, full_items)
        return [train] + list(built[1:])

    def _warn_about_window(self, user_ptr):
        """Say when MAX_ITEM_LIST_LENGTH is longer than any input: the rest of every row is padding."""
        #: The longest input any split gives the model: a user's training items and the validation one.
        self.longest_input = int(np.diff(user_ptr).max(initial=0)) + 1
        window = self.config["MAX_ITEM_LIST_LENGTH"]
        if window > self.longest_input:
            self.logger.warning(
                f"Dataset '{self.dataset_name}': MAX_ITEM_LIST_LENGTH={window} is longer than any input sequence "
                f"(the longest has {self.longest_input} items), so every row carries at least "
                f"{window - self.longest_input} padding columns; MAX_ITEM_LIST_LENGTH={self.longest_input} "
                "covers every sequence.")

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
