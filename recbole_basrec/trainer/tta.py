r"""Test-time augmentation for any trained sequential model: TNoise and TMask.

Reference:
    Yizhou Dang et al. "Data Augmentation as Free Lunch: Exploring the Test-Time Augmentation
    for Sequential Recommendation." In SIGIR 2025.

A trained model scores every item for the original input and for ``tta_views`` augmented
copies of it; the scores are averaged (``tta_keep_original: True``, default, also averages in the
original input's; the authors' code averages the augmented ones only). Nothing is retrained.

* ``tnoise``: uniform noise ``U(low, high)`` (``tta_noise: [low, high]``) added to the input item
  embeddings at real (non-padding) positions, through the model's own ``item_embedding`` call.
  The authors add it at every position of their left-padded input, which their attention mask
  then ignores, and also average views with noise on the output; neither is done here.
* ``tmask``: ``floor(tta_mask_rate * n)`` of a sequence's ``n`` input items are removed (not
  masked: the rest close up, order kept), as the authors' TMask-R. They remove from the whole
  history and then keep the last 50; here the model's input window is what is thinned.

Views are batched on the model's device (one pass per view) and drawn from a generator seeded
with ``seed``, so a test is reproducible.
"""
from contextlib import contextmanager

import torch
from recbole.data.interaction import Interaction

from recbole_basrec.model.input_embedding import replace_input_embedding

TTA_MODES = ("none", "tnoise", "tmask")


def remove_items(item_seq, item_seq_len, rate, generator):
    """Each right-padded row with ``floor(rate * n)`` of its ``n`` items removed at random
    (never all of them), the remaining items closed up in order: ``(item_seq, item_seq_len)``."""
    batch, width = item_seq.shape
    positions = torch.arange(width, device=item_seq.device)
    real = positions < item_seq_len.unsqueeze(1)
    n_remove = torch.minimum((rate * item_seq_len).floor().long(), item_seq_len - 1).clamp(min=0)
    keys = torch.rand(batch, width, device=item_seq.device, generator=generator).masked_fill(~real, 2.0)
    rank = keys.argsort(1).argsort(1)  # random rank among the row's real positions first
    keep = real & (rank >= n_remove.unsqueeze(1))
    order = torch.sort((~keep).to(torch.uint8), dim=1, stable=True).indices
    thinned = item_seq.gather(1, order) * keep.gather(1, order)
    return thinned, item_seq_len - n_remove


def _noise(low, high, generator):
    def add(ids, output):
        noise = torch.rand(output.shape, device=output.device, generator=generator) * (high - low) + low
        return output + noise * (ids != 0).unsqueeze(-1).to(output.dtype)

    return add


@contextmanager
def augment_at_test_time(model, config):
    """Within the block, ``model.full_sort_predict`` averages its scores over the original and
    the augmented inputs as ``config`` says (``tta``, ``tta_views``, ``tta_noise``,
    ``tta_mask_rate``, ``tta_keep_original``, ``seed``); a no-op for ``tta: none``."""
    mode = config["tta"]
    if mode in (None, "none"):
        yield
        return
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    generator.manual_seed(int(config["seed"] or 0))
    views = int(config["tta_views"])
    keep_original = bool(config["tta_keep_original"])
    low, high = (float(v) for v in config["tta_noise"])
    rate = float(config["tta_mask_rate"])
    predict = model.full_sort_predict

    def one_view(interaction):
        if mode == "tnoise":
            with replace_input_embedding(model, _noise(low, high, generator)):
                return predict(interaction)
        seq, lengths = remove_items(interaction[model.ITEM_SEQ], interaction[model.ITEM_SEQ_LEN], rate, generator)
        return predict(Interaction({**interaction.interaction, model.ITEM_SEQ: seq, model.ITEM_SEQ_LEN: lengths}))

    def averaged(interaction):
        total = predict(interaction) if keep_original else 0
        for _ in range(views):
            total = total + one_view(interaction)
        return total / (views + int(keep_original))

    model.full_sort_predict = averaged  # an instance attribute: the class's method is untouched
    try:
        yield
    finally:
        del model.full_sort_predict
