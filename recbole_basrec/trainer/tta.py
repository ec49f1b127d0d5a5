r"""Test-time augmentation for any trained sequential model: TNoise and TMask.

Reference:
    Yizhou Dang et al. "Data Augmentation as Free Lunch: Exploring the Test-Time Augmentation
    for Sequential Recommendation." In SIGIR 2025.

A trained model scores every item for the original input and for augmented copies of it
(``tta_views``, plus ``tta_output_views`` for TNoise); the scores are averaged (``tta_keep_original: True``, default, also averages in the
original input's; the authors' code averages the augmented ones only). Nothing is retrained.

* ``tnoise``: ``tta_views`` copies with uniform noise ``U(low, high)`` (``tta_noise: [low, high]``)
  added to the input item embeddings at real (non-padding) positions, through the model's own
  ``item_embedding`` call, and ``tta_output_views`` copies with the same noise added to the
  sequence representation ``forward`` returns, as the authors' TNoise does (7 + 5 views on
  Beauty). The authors add the input noise at every position of their left-padded input too,
  which their attention mask then ignores; that is not done here. Noise drawn from ``U(low, high)``
  with ``low > 0`` has a mean: averaged over output views it adds about ``mean * sum(e_i)`` to
  item ``i``'s score, a per-item bias, which is part of the authors' arithmetic.
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


def _uniform(like, low, high, generator):
    return torch.rand(like.shape, device=like.device, generator=generator, dtype=like.dtype) * (high - low) + low


def _noise(low, high, generator):
    def add(ids, output):
        return output + _uniform(output, low, high, generator) * (ids != 0).unsqueeze(-1).to(output.dtype)

    return add


@contextmanager
def _noisy_output(model, low, high, generator):
    """Within the block, ``model.forward`` returns its representation plus ``U(low, high)`` noise;
    fails in one line if the model's ``full_sort_predict`` never called ``forward``."""
    forward = model.forward
    calls = []

    def noisy(*args, **kwargs):
        output = forward(*args, **kwargs)
        calls.append(1)
        return output + _uniform(output, low, high, generator)

    model.forward = noisy  # an instance attribute: the class's method is untouched
    try:
        yield
    finally:
        del model.forward
    if not calls:
        raise ValueError(f"tta_output_views needs {type(model).__name__}.full_sort_predict to score through "
                         "forward(); set tta_output_views: 0 for this model.")


@contextmanager
def augment_at_test_time(model, config, pulse=None):
    """Within the block, ``model.full_sort_predict`` averages its scores over the original and
    the augmented inputs as ``config`` says (``tta``, ``tta_views``, ``tta_noise``,
    ``tta_mask_rate``, ``tta_output_views``, ``tta_keep_original``, ``seed``); a no-op for ``tta: none``.
    ``pulse()``, when given, is called after each view (a batch of many views may take minutes)."""
    mode = config["tta"]
    if mode == "none":
        yield
        return
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    generator.manual_seed(int(config["seed"]))
    views = int(config["tta_views"])
    output_views = int(config["tta_output_views"]) if mode == "tnoise" else 0
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

    def output_view(interaction):
        with _noisy_output(model, low, high, generator):
            return predict(interaction)

    def averaged(interaction):
        total = predict(interaction) if keep_original else 0
        for _ in range(views):
            total = total + one_view(interaction)
            pulse and pulse()
        for _ in range(output_views):
            total = total + output_view(interaction)
            pulse and pulse()
        return total / (views + output_views + int(keep_original))

    model.full_sort_predict = averaged  # an instance attribute: the class's method is untouched
    try:
        yield
    finally:
        del model.full_sort_predict
