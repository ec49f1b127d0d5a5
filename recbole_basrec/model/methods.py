r"""The augmentation methods BASRec is compared with, as training losses of any served backbone.

References:
    Xu Xie et al. "Contrastive Learning for Sequential Recommendation." In ICDE 2022 (CL4SRec).
    Zhiwei Liu et al. "Contrastive Self-supervised Sequential Recommendation with Robust
    Augmentation." arXiv 2108.06479, 2021 (CoSeRec: crop, mask, reorder, substitute, insert).
    Peilin Zhou et al. "Is Contrastive Learning Necessary? A Study of Data Augmentation vs
    Contrastive Learning in Sequential Recommendation." In WWW 2024 (DA4Rec).

``augmentation`` chooses the method (docs/augmentation-methods.md gives each definition, its
source and the readings resolved here):

* heuristic training-data augmentation (``ran``, ``ran_s``, ``slide_window``, ``cmr``,
  ``cmrsi``): each training sequence (its inputs and their last target) gets ``aug_views``
  augmented copies per step, and the model trains on each copy as on a training sequence of its
  own (next-item targets of the copy, fresh negatives); ``loss = rec + aug_weight * sum of the
  copies' losses``;
* ``cl4srec``: two views of each input sequence by crop / mask / reorder, InfoNCE between their
  sequence representations (the output at the last item) with in-batch negatives;
  ``loss = rec + cl_weight * InfoNCE``.

Every operator works on the whole batch at once (``model/augmentation.py``).
"""
import torch

from recbole_basrec.config import schema
from recbole_basrec.model import augmentation as aug

#: Every value of ``augmentation``; ``none`` trains the plain backbone.
METHODS, HEURISTIC = schema.AUGMENTATIONS, schema.HEURISTIC
#: Display names, as the papers write them.
LABELS = {"basrec": "BASRec", "none": "plain", "ran": "Ran", "ran_s": "Ran-S", "slide_window": "Slide Window",
          "cmr": "CMR", "cmrsi": "CMRSI", "cl4srec": "CL4SRec"}
#: Methods whose operators need the top-1 similar item table.
NEEDS_NEIGHBOURS = ("ran_s", "cmrsi")
#: The loss terms each method's ``calculate_loss`` returns, in order.
LOSS_TERMS = {"basrec": ("rec", "ssa", "csa"), "none": ("loss",), "cl4srec": ("rec", "cl"),
              **{m: ("rec", "aug") for m in HEURISTIC}}


def _rates(lengths):
    """``rate(value)``: the operator rate ``value`` for every row, on the rows' device."""
    return lambda value: torch.full(lengths.shape, float(value), device=lengths.device)


def _in_place(ids, lengths):
    """An operator result ``(ids, lengths, masked)`` for one that keeps lengths and masks nothing."""
    return ids, lengths, torch.zeros_like(ids, dtype=torch.bool)


def heuristic_view(model, method, seq, lengths):
    """One augmented copy per row of right-padded training sequences ``seq`` (inputs followed by
    their last target): ``(ids, lengths, masked)``."""
    rate = _rates(lengths)
    lengths = lengths.long()
    if method == "ran":
        return aug.insert(seq, lengths, rate(model.insert_rate), aug.random_items(seq, model.n_items))
    if method == "ran_s":
        return aug.insert(seq, lengths, rate(model.insert_rate), model.substitute_table[seq])
    if method == "slide_window":
        return aug.window(seq, lengths, lengths.clamp(max=model.slide_window_length))
    # A copy keeps at least an input and its target.
    ops = [
        aug.crop(seq, lengths, rate(model.crop_rate), min_length=2),
        aug.mask(seq, lengths, rate(model.mask_rate), read=lengths - 1),  # the last item is only a target
        _in_place(aug.reorder(seq, lengths, rate(model.reorder_rate)), lengths),
    ]
    if method == "cmrsi":
        ops.append(_in_place(aug.substitute(seq, lengths, rate(model.substitute_rate), model.substitute_table), lengths))
        ops.append(aug.insert(seq, lengths, rate(model.insert_rate), model.substitute_table[seq]))
    choice = torch.randint(len(ops), lengths.shape, device=seq.device)
    return aug.pick_per_row(choice, ops)


def heuristic_loss(model, method, item_seq, item_seq_len, last_target):
    """The summed recommendation loss of ``aug_views`` augmented copies of every training sequence."""
    full = torch.nn.functional.pad(item_seq, (0, 1))
    full.scatter_(1, item_seq_len.long().unsqueeze(1), last_target.unsqueeze(1))
    views = model.aug_views
    ids, lengths, masked = heuristic_view(model, method, full.repeat(views, 1), (item_seq_len.long() + 1).repeat(views))
    width = item_seq.size(1)
    inputs_len = lengths - 1
    pos = torch.arange(width, device=ids.device).unsqueeze(0)
    reads = pos < inputs_len.unsqueeze(1)
    inputs = ids[:, :width] * reads
    targets = ids[:, 1:] * reads
    return model.sequence_loss(inputs, inputs_len, targets, masked[:, :width] & reads)


def cl4srec_loss(model, item_seq, item_seq_len):
    """CL4SRec's InfoNCE between two crop / mask / reorder views of every input sequence."""
    batch = item_seq.size(0)
    seq, lengths = item_seq.repeat(2, 1), item_seq_len.long().repeat(2)
    rate = _rates(lengths)
    operators = {
        "crop": lambda: aug.crop(seq, lengths, rate(model.crop_rate), min_length=1),
        "mask": lambda: aug.mask(seq, lengths, rate(model.mask_rate)),
        "reorder": lambda: _in_place(aug.reorder(seq, lengths, rate(model.reorder_rate)), lengths),
    }
    ops = [operators[name]() for name in model.cl_operators]
    choice = torch.randint(len(ops), lengths.shape, device=seq.device)
    ids, lengths, masked = aug.pick_per_row(choice, ops)
    z = model.sequence_representation(ids, lengths, masked)
    return aug.info_nce(z[:batch], z[batch:], model.cl_temperature, model.cl_similarity)
