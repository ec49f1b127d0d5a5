"""BASRec's augmentation operators as batched tensor functions.

Dang et al., "Augmenting Sequential Recommendation with Balanced Relevance and Diversity",
AAAI 2025. Every function works on a whole batch on the tensors' device: sequences are
``(B, L)`` item ids padded on the right with 0 (RecBole's layout) and ``lengths`` ``(B,)``
counts the real items. Padding never moves and never becomes an item.
"""
import torch

# Mixing coefficients this close to 0 would make the adaptive weight 1/(lambda * r) overflow.
# Floor for lambda in the balance weights: only keeps an exact 0 from dividing by zero. Any larger
# floor changes every weight of the batch, since min-max normalisation divides by the largest w.
_MIN_LAMBDA = torch.finfo(torch.float32).tiny


def _positions(item_seq):
    return torch.arange(item_seq.size(1), device=item_seq.device).unsqueeze(0)


def reorder(item_seq, lengths, rates, keep_last=False):
    """M-Reorder: shuffle a contiguous window of ``floor(r * n)`` real items in place.

    The window starts uniformly in ``[0, n - w]``, or in ``[0, n - w - 1]`` with ``keep_last``
    (the authors' code: the most recent item never moves). Items outside it keep their integer
    position as sort key; items inside get random keys within the window's span, so one
    argsort permutes the window only.
    """
    lengths = lengths.long()
    window = torch.floor(rates * lengths).long().clamp(min=0)
    window = torch.minimum(window, lengths)
    last_start = (lengths - window - int(keep_last)).clamp(min=0)
    start = torch.floor(torch.rand_like(rates) * (last_start + 1)).long()
    start = torch.minimum(start, last_start)
    pos = _positions(item_seq)
    inside = (pos >= start.unsqueeze(1)) & (pos < (start + window).unsqueeze(1))
    random_keys = start.unsqueeze(1) + torch.rand(item_seq.shape, device=item_seq.device) * window.unsqueeze(1)
    keys = torch.where(inside, random_keys, pos.float().expand_as(random_keys))
    return item_seq.gather(1, keys.argsort(dim=1))


def substitute(item_seq, lengths, rates, neighbours):
    """M-Substitute: replace ``max(floor(r * n), 1)`` distinct real items by their top-1 neighbour.

    ``neighbours`` is a ``(n_items,)`` lookup table (``neighbours[0] == 0``), so this is a gather.
    """
    lengths = lengths.long()
    count = torch.floor(rates * lengths).long().clamp(min=1)
    count = torch.minimum(count, lengths)
    pos = _positions(item_seq)
    keys = torch.rand(item_seq.shape, device=item_seq.device).masked_fill(pos >= lengths.unsqueeze(1), 2.0)
    rank = keys.argsort(dim=1).argsort(dim=1)
    chosen = rank < count.unsqueeze(1)
    return torch.where(chosen, neighbours[item_seq], item_seq)


def augmented_views(item_seq, lengths, n_views, rate_min, rate_max, neighbours, keep_last=False):
    """``n_views`` single-sequence augmented views of every sequence.

    Each view picks M-Reorder or M-Substitute uniformly at random and draws its rate from
    ``U(rate_min, rate_max)``. Returns the views ``(n_views * B, L)`` (view-major) and their
    rates ``(n_views * B,)``. ``keep_last`` is passed to :func:`reorder`.
    """
    seqs = item_seq.repeat(n_views, 1)
    lens = lengths.repeat(n_views)
    rates = torch.empty(seqs.size(0), device=seqs.device).uniform_(rate_min, rate_max)
    use_reorder = torch.rand(seqs.size(0), device=seqs.device) < 0.5
    views = torch.where(
        use_reorder.unsqueeze(1), reorder(seqs, lens, rates, keep_last), substitute(seqs, lens, rates, neighbours)
    )
    return views, rates


def sample_beta(beta, shape, device):
    """``lambda ~ Beta(beta, beta)`` of the given shape."""
    # torch.full, not torch.tensor: no host-to-device copy; validate_args=False: argument checks
    # read the values back to the host (a sync each step). The draws are the same.
    concentration = torch.full((), float(beta), device=device)
    return torch.distributions.Beta(concentration, concentration, validate_args=False).sample(shape)


def adaptive_weights(lam, rates):
    """BASRec's balance weight ``w = 1 / (lambda * r)``, min-max normalised over the last dim.

    As in the authors' code, the smallest ``lambda`` of the batch sets the scale: with
    ``Beta(0.3, 0.3)`` some ``lambda`` is often below 1e-6, which pushes most other weights towards
    0. ``w`` is computed in float64 so such values stay finite; ``lambda`` is floored only at the
    smallest normal float32 (an exact 0). A degenerate row (all weights equal) gets weight 1
    everywhere instead of 0/0.
    """
    w = 1.0 / (lam.double().clamp(min=_MIN_LAMBDA) * rates.double())
    low = w.min(dim=-1, keepdim=True).values
    span = w.max(dim=-1, keepdim=True).values - low
    degenerate = span <= 1e-12 * low.abs().clamp(min=1.0)
    normalised = torch.where(degenerate, torch.ones_like(w), (w - low) / torch.where(degenerate, torch.ones_like(span), span))
    return normalised.to(lam.dtype)


def ssa_weights(lam, rates, mode):
    """Per-sequence loss weights ``(V, B)`` of SSA views with coefficients ``lam`` and rates ``rates``.

    ``sequence``: the balance weights ``w'`` themselves (the paper's formula). ``batch``: every
    sequence of a view gets ``sum_b w'_b``, so the view's averaged loss is ``(sum w') x`` its mean
    loss (what the authors' code computes by broadcasting a ``(B, 1)`` weight against a
    ``(B*L,)`` loss).
    """
    weight = adaptive_weights(lam, rates)
    if mode == "batch":
        return weight.sum(dim=-1, keepdim=True).expand_as(weight)
    return weight


def csa_partners(rounds, batch, device):
    """``rounds`` random permutations of the batch ``(rounds, B)``: each sequence's partner."""
    return torch.rand(rounds, batch, device=device).argsort(dim=1)


def to_recent(seq, lengths):
    """Move each right-padded row's real part to the end (left padding), keeping its order.

    Works on ``(B, L)`` ids or ``(B, L, ...)`` tensors; padding slots come from the row's own
    padding, so what was 0 stays 0. Column ``L - 1 - k`` then holds the k-th most recent item.
    """
    max_len = seq.size(1)
    shift = (max_len - lengths.long()).unsqueeze(1)
    source = (torch.arange(max_len, device=seq.device).unsqueeze(0) - shift) % max_len
    if seq.dim() > 2:
        source = source.view(*source.shape, *([1] * (seq.dim() - 2))).expand_as(seq)
    return seq.gather(1, source)


def mixup(a, b, lam):
    """Nonlinear mixup ``lam * a + (1 - lam) * b``; ``lam`` broadcasts (per item or per feature)."""
    return lam * a + (1.0 - lam) * b


# ------------------------------------------------------------------ the comparison methods' operators
# Operators of the augmentation methods BASRec is compared with (docs/augmentation-methods.md). Each
# takes right-padded ``(N, W)`` ids and ``lengths`` and returns ``(ids, lengths, masked)``: the new
# right-padded ids (same width; insertion drops the oldest items beyond it), their lengths, and which
# positions carry the mask token. A masked position keeps its item id (so targets and attention
# masks are unchanged) and is read as a zero input embedding: the mask token of CL4SRec, without
# adding a row to the backbone's embedding table.
def _counts(rates, lengths, minimum=0):
    lengths = lengths.long()
    return torch.minimum(torch.floor(rates * lengths).long().clamp(min=minimum), lengths)


def _unmasked(seq):
    return torch.zeros_like(seq, dtype=torch.bool)


def crop(item_seq, lengths, rates, min_length=1):
    """CoSeRec's crop: keep a random contiguous window of ``max(floor(r * n), min_length)`` items
    (at most ``n``), moved to the front. Its start is uniform over every window that fits."""
    lengths = lengths.long()
    keep = torch.minimum(_counts(rates, lengths).clamp(min=min_length), lengths)
    return window(item_seq, lengths, keep)


def window(item_seq, lengths, keep):
    """A random contiguous window of ``keep`` items per row (start uniform in ``[0, n - keep]``),
    moved to the front: the slide window's sub-sequences and crop's."""
    lengths = lengths.long()
    start = torch.floor(torch.rand(lengths.shape, device=item_seq.device) * (lengths - keep + 1)).long()
    start = torch.minimum(start, lengths - keep)
    pos = _positions(item_seq)
    out = item_seq.gather(1, (start.unsqueeze(1) + pos).clamp(max=item_seq.size(1) - 1))
    out = out.masked_fill(pos >= keep.unsqueeze(1), 0)
    return out, keep, _unmasked(item_seq)


def _choose(item_seq, lengths, count, candidates=None):
    """``count`` distinct random positions per row among the first ``candidates`` (default: all real ones)."""
    candidates = lengths.long() if candidates is None else candidates
    pos = _positions(item_seq)
    keys = torch.rand(item_seq.shape, device=item_seq.device).masked_fill(pos >= candidates.unsqueeze(1), 2.0)
    return keys.argsort(dim=1).argsort(dim=1) < count.unsqueeze(1)


def mask(item_seq, lengths, rates, read=None):
    """CoSeRec's mask: ``floor(r * m)`` distinct random items of the first ``m`` (``read``, default
    all ``n``: the items a model reads) carry the mask token."""
    read = lengths.long() if read is None else read.long()
    return item_seq, lengths.long(), _choose(item_seq, lengths, _counts(rates, read), read)


def insert(item_seq, lengths, rates, new_items):
    """Insertion: before each of ``max(floor(r * n), 1)`` random items, the item ``new_items``
    gives at that position (``(N, W)``: its most similar item, or a random one). Rows that outgrow
    the width keep their most recent items."""
    lengths = lengths.long()
    chosen = _choose(item_seq, lengths, _counts(rates, lengths, minimum=1))
    shift = chosen.long().cumsum(dim=1)
    width = item_seq.size(1)
    pos = _positions(item_seq)
    real = pos < lengths.unsqueeze(1)
    grown = item_seq.new_zeros(item_seq.size(0), 2 * width + 1)  # the last column takes padding writes
    spill = 2 * width
    grown.scatter_(1, torch.where(real, pos + shift, spill), item_seq)
    grown.scatter_(1, torch.where(real & chosen, pos + shift - 1, spill), new_items)
    total = lengths + chosen.sum(dim=1)
    drop = (total - width).clamp(min=0)
    out = grown.gather(1, pos + drop.unsqueeze(1)).masked_fill(pos >= (total - drop).unsqueeze(1), 0)
    return out, total - drop, _unmasked(item_seq)


def random_items(item_seq, n_items):
    """A uniformly random real item id (1 .. n_items - 1) for every slot of ``item_seq``."""
    return torch.randint(1, n_items, item_seq.shape, device=item_seq.device)


def pick_per_row(choice, results):
    """Row ``i`` of the ``choice[i]``-th operator result ``(ids, lengths, masked)``."""
    ids = torch.stack([r[0] for r in results])
    lens = torch.stack([r[1] for r in results])
    masks = torch.stack([r[2] for r in results])
    rows = torch.arange(choice.numel(), device=choice.device)
    return ids[choice, rows], lens[choice, rows], masks[choice, rows]


def info_nce(z1, z2, temperature, similarity="dot"):
    """CL4SRec's contrastive loss (NT-Xent) of two views ``(B, D)`` of a batch: each of the ``2B``
    representations against its other view, with the other ``2B - 2`` as negatives; mean over
    the ``2B`` anchors. ``similarity``: ``dot`` or ``cos``."""
    z = torch.cat([z1, z2])
    if similarity == "cos":
        z = torch.nn.functional.normalize(z, dim=-1)
    logits = (z @ z.t()) / temperature
    n = z1.size(0)
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    labels = torch.arange(2 * n, device=z.device).add(n).remainder(2 * n)  # i <-> i + n
    return torch.nn.functional.cross_entropy(logits, labels)
