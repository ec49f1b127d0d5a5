r"""BASRec, written once and mixed into any RecBole sequential backbone.

Reference:
    Yizhou Dang et al. "Augmenting Sequential Recommendation with Balanced Relevance and
    Diversity." In AAAI 2025.

A backbone needs one adapter method, ``sequence_output(item_seq, item_emb) -> (B, L, D)``:
the per-position output of the encoder given (possibly fused) item embeddings, with position
ids from :meth:`BASRec.position_ids`. BASRec adds

* single-sequence augmentation (SSA): ``2 * n_pairs`` M-Reorder / M-Substitute views per
  sequence, fused with the original at the embedding level, each view's loss weighted with the
  batch-normalised balance weight ``w' = minmax(1 / (lambda * r))`` (``ssa_weighting``);
* cross-sequence augmentation (CSA): item-wise and feature-wise nonlinear mixup of the encoder
  outputs and the target (and negative) embeddings across the batch, ``n_whole_level`` rounds.

Layout (``align``). RecBole pads sequences on the right. With ``align: recent`` (the authors'
code, default) every batch is turned into the authors' left-padded layout inside the model:
column ``L - 1 - k`` holds the k-th most recent item, so position embeddings count back from
the most recent item, GRU4Rec reads the padding first, and CSA mixes each sequence's k-th most
recent slot with its partner's k-th most recent. ``align: first`` keeps RecBole's layout.

Losses are computed on *target slots*: the last position in ``train_mode=prefix`` (RecBole's
data), every position with a target in ``train_mode=sequence`` (the paper's protocol).
With ``loss_type: CE`` a mixed target is scored as ``<h, p~> - logsumexp_i <h, e_i>``, i.e.
soft-label cross-entropy, which is plain CE when every mixing coefficient is 1.
"""
import numpy as np
import torch
import torch.nn.functional as F
from recbole.utils import InputType

from recbole_basrec.config import schema
from recbole_basrec.data.dataset import TARGET_LIST_FIELD, drop_last_items, training_sequences
from recbole_basrec.model import augmentation as aug
from recbole_basrec.model import methods

# Resampling rounds for sequence-mode negatives that hit the user's own items.
_NEGATIVE_ROUNDS = 3
#: Keys of the comparison methods (``model/methods.py``), kept as attributes of the same name.
_METHOD_KEYS = tuple(key.name for key in schema.KEYS if key.methods and "basrec" not in key.methods)
#: Length groups of a trimmed encode, as fractions of the full width: each group is encoded at
#: its longest member's length. Finer groups skip more padding and cost a few more, smaller calls.
GROUP_WIDTHS = (1 / 16, 1 / 8, 3 / 16, 1 / 4, 3 / 8, 1 / 2, 3 / 4, 1)


def fuse_gelu(module):
    """Give every RecBole ``FeedForward`` in ``module`` that uses RecBole's GELU torch's
    ``F.gelu`` instead: the same exact (erf) GELU, but one kernel forward and one backward where
    RecBole's ``x * 0.5 * (1 + erf(x / sqrt(2)))`` runs five forward and several backward, each over the
    ``(batch, length, inner_size)`` activations (a BASRec step's largest tensors). Outputs agree
    to float rounding. Returns how many layers changed."""
    from recbole.model.layers import FeedForward

    changed = 0
    for layer in module.modules():
        act = getattr(layer, "intermediate_act_fn", None)
        if isinstance(layer, FeedForward) and getattr(act, "__func__", None) is FeedForward.gelu:
            layer.intermediate_act_fn = F.gelu
            changed += 1
    return changed


class _BlockLogSumExp(torch.autograd.Function):
    """``logsumexp(hidden @ weight.T, dim=-1)`` for ``hidden`` (M, D) and ``weight`` (N, D), taken
    ``rows`` slots at a time. Forward keeps only the (M,) result; backward recomputes each block's
    softmax. Each slot's value is its own row's reduction over every item, so the result is the
    unblocked one up to float rounding; memory is ``rows x N`` logits instead of ``M x N``."""

    @staticmethod
    def forward(ctx, hidden, weight, rows):
        out = torch.cat([torch.logsumexp(h @ weight.t(), dim=-1) for h in hidden.split(rows)])
        ctx.save_for_backward(hidden, weight, out)
        ctx.rows = rows
        return out

    @staticmethod
    def backward(ctx, grad):
        hidden, weight, out = ctx.saved_tensors
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight) if ctx.needs_input_grad[1] else None
        for start in range(0, hidden.size(0), ctx.rows):
            h = hidden[start:start + ctx.rows]
            p = torch.exp(h @ weight.t() - out[start:start + ctx.rows, None]).mul_(grad[start:start + ctx.rows, None])
            if grad_hidden is not None:
                grad_hidden[start:start + ctx.rows] = p @ weight
            if grad_weight is not None:
                grad_weight.addmm_(p.t(), h)
        return grad_hidden, grad_weight, None


class UniformMaskDropout(torch.nn.Dropout):
    """``nn.Dropout`` whose CPU masks come from float32 uniforms (``u >= p``, kept values scaled
    by ``1 / (1 - p)``). Torch's CPU dropout draws each mask element with a serial 64-bit
    Bernoulli, the largest single cost of a SASRec BASRec step on CPU; a float32 uniform takes
    half the time. Same keep probability (to 2**-24), a different random stream; other devices
    keep ``F.dropout``."""

    def forward(self, input):
        if not self.training or self.p == 0 or input.device.type != "cpu":
            return super().forward(input)
        if self.p == 1:
            return input * 0
        return input * torch.rand_like(input).ge_(self.p).div_(1 - self.p)


def uniform_mask_dropout(module):
    """Turn every plain ``nn.Dropout`` in ``module`` into :class:`UniformMaskDropout` (no
    parameters or state change). Returns how many changed."""
    changed = 0
    for layer in module.modules():
        if type(layer) is torch.nn.Dropout:
            layer.__class__ = UniformMaskDropout
            changed += 1
    return changed


class _Canvas(torch.autograd.Function):
    """Blocks ``parts[i]`` written at ``blocks[i] = (rows, cols)`` of a zero ``shape`` tensor.

    Writing them one by one in place would make autograd clone the whole canvas once per block
    in backward (each write hides the previous version's slots); here backward only reads each
    block's slice of the incoming gradient. The blocks must not overlap."""

    @staticmethod
    def forward(ctx, shape, blocks, *parts):
        canvas = parts[0].new_zeros(shape)
        for (rows, cols), part in zip(blocks, parts):
            canvas[rows, cols] = part
        ctx.blocks = blocks
        return canvas

    @staticmethod
    def backward(ctx, grad):
        return (None, None, *(grad[rows, cols] for rows, cols in ctx.blocks))


def item_logsumexp(hidden, weight, block_mib=0):
    """``logsumexp(hidden @ weight.T, -1)`` over the last dim of ``hidden`` (..., D): at once
    (``block_mib`` 0), else in blocks of at most ``block_mib`` MiB of float32 logits
    (:class:`_BlockLogSumExp`)."""
    flat = hidden.reshape(-1, hidden.size(-1))
    rows = max(1, int(block_mib * 2**20) // (4 * weight.size(0)))
    if block_mib <= 0 or rows >= flat.size(0):
        return torch.logsumexp(hidden @ weight.t(), dim=-1)
    return _BlockLogSumExp.apply(flat, weight, rows).view(hidden.shape[:-1])


class StagedModel:
    """The interface :class:`~recbole_basrec.trainer.trainer.BASRecTrainer` drives a model that
    trains in two stages through; a model without it (stock RecBole's) trains in one.

    ``augment`` False trains the plain backbone (stage 1), True adds the training augmentation's
    losses (stage 2); ``augmentation`` names that augmentation (``"none"``: plain training
    continued); ``loss_terms()`` names what ``calculate_loss`` returns under the current ``augment``.
    """

    augment: bool
    augmentation: str

    def loss_terms(self):
        raise NotImplementedError


class BASRec(StagedModel):
    r"""Mixin adding BASRec's training losses to a stock sequential recommender.

    Use as ``class BASRecX(BASRec, X)`` and implement ``sequence_output``. Inference
    (``predict``, ``full_sort_predict``) is the backbone's own.
    """

    # RecBole's Config reads a model's input type from its class; the configuration hook then
    # sets the one that ``loss_type`` needs.
    input_type = InputType.POINTWISE
    #: Whether position t's output can depend on items after t (then only prefix mode is leak-free).
    sees_future = False
    #: Whether outputs at real positions are independent of the padding, so training may skip
    #: it (see ``_encode``). A backbone whose real outputs read the padding sets False.
    trims_padding = True

    def __init__(self, config, dataset):
        loss_type = config["loss_type"]
        # Stock backbones know BPR and CE only; BCE uses the same sampled negatives as BPR.
        config["loss_type"] = "BPR" if loss_type == "BCE" else loss_type
        try:
            super().__init__(config, dataset)
        finally:
            config["loss_type"] = loss_type
        self._check_backbone(dataset)
        fuse_gelu(self)
        uniform_mask_dropout(self)
        self.loss_type = loss_type
        self.train_mode = config["train_mode"]
        #: The training augmentation (``augmentation``; ``basrec: False`` means ``none``).
        self.augmentation = config["augmentation"] if config["basrec"] else "none"
        self.basrec = self.augmentation == "basrec"
        for key in _METHOD_KEYS:
            setattr(self, key, config[key])
        self.n_pairs = config["n_pairs"]
        self.n_whole_level = config["n_whole_level"]
        self.beta = float(config["beta"])
        self.rate_min, self.rate_max = float(config["rate_min"]), float(config["rate_max"])
        self.rec_weight = float(config["rec_weight"])
        self.aml_weight = float(config["aml_weight"])
        self.wml_weight = float(config["wml_weight"])
        self.align = config["align"]
        self.ssa_weighting = config["ssa_weighting"]
        self.reorder_keep_last = bool(config["reorder_keep_last"])
        self.csa_partner_padding = config["csa_partner_padding"]
        self.ce_logits_mib = config["ce_logits_mib"]
        #: Raw item token of every internal item id, to map checkpoints of the authors' code.
        self.item_tokens = dataset.field2id_token[dataset.iid_field]
        #: The trainer switches this off for stage 1 (plain training).
        self.augment = True
        if self.train_mode == "sequence" and self.sees_future:
            raise ValueError(
                f"{type(self).__name__} sees future positions, so train_mode=sequence (a loss at every "
                f"position) would leak targets: set filter_causal=True or train_mode=prefix."
            )
        if self.augmentation == "slide_window":
            self._check_window(dataset)
        neighbours = torch.zeros(self.n_items, dtype=torch.long)
        if (self.basrec and self.n_pairs > 0) or self.augmentation in methods.NEEDS_NEIGHBOURS:
            neighbours = self._build_neighbours(config, dataset)
        # Not persistent: checkpoints stay loadable by the plain backbone and vice versa.
        self.register_buffer("substitute_table", neighbours, persistent=False)

    def _build_neighbours(self, config, dataset):
        from recbole_basrec.data.similarity import load_or_build_top1

        sequences = getattr(dataset, "train_sequences", None)
        if sequences is None:  # a plain RecBole training split: rebuild from its prefixes
            sequences = training_sequences([dataset], dataset.user_num)
        user_ptr, items = sequences
        if config["similarity_source"] == "inputs":  # the authors': each user's items[:-3]
            user_ptr, items = drop_last_items(user_ptr, items)
        return load_or_build_top1(
            user_ptr,
            items,
            self.n_items,
            method=config["similarity_model"],
            seed=config["seed"],
            cache_dir=config["checkpoint_dir"],
        )

    def _check_window(self, dataset):
        """Warn when every slide-window copy would be its whole sequence (a copy of plain data)."""
        sequences = getattr(dataset, "train_sequences", None)
        if sequences is None:
            return
        longest = int(np.diff(sequences[0]).max(initial=0))  # a training sequence: its inputs and last target
        if self.slide_window_length >= longest:
            from logging import getLogger

            getLogger().warning(
                f"slide_window_length={self.slide_window_length} is at least the longest training sequence ({longest} "
                f"items): every copy is its whole sequence, so slide_window trains on duplicated plain data; give a "
                f"length below {longest}.")

    def _check_backbone(self, dataset):
        """Refuse, with the reason, a backbone BASRec cannot serve (hand-written adapters: none)."""

    # The backbone adapter, ``sequence_output(item_seq, item_emb) -> (B, L, D)``, comes from the
    # subclass or the backbone; defining a stub here would shadow the backbone's in the MRO.

    def position_ids(self, width, device):
        """Position ids of a batch whose layout is cut to ``width`` columns: its last columns
        under ``align: recent`` (so the most recent item is always ``max_seq_length - 1``), its
        first ones under ``align: first``."""
        first = self.max_seq_length - width if self.align == "recent" else 0
        return torch.arange(first, first + width, dtype=torch.long, device=device)

    def _layout(self, seq, lengths):
        """RecBole's right-padded ``(B, L, ...)`` batch in the model's layout (see ``align``)."""
        return aug.to_recent(seq, lengths) if self.align == "recent" else seq

    def _last(self, output, lengths):
        """Output at each sequence's most recent item."""
        if self.align == "recent":
            return output[:, -1]
        return self.gather_indexes(output, lengths - 1)

    def _encode(self, item_seq, item_emb, item_seq_len, trim=True):
        """``sequence_output`` for training on the model's layout.

        With ``trim`` (and a backbone whose real outputs ignore padding), the batch is encoded
        per group of similar lengths, each group cut to its longest sequence: only padding is
        skipped, which is most of the work on data of short sequences.
        Outputs at padding positions are then not the encoder's (zeros); callers that read
        them (CSA partners) pass ``trim=False``. ``item_emb`` is the ``(B, L, D)`` input, or a
        function ``(rows, cols) -> input`` of those rows and columns, so that an input built per
        batch (SSA's fused views) is built only where it is encoded.
        """
        embed = item_emb if callable(item_emb) else (lambda rows, cols: item_emb[rows, cols])
        if not (trim and self.trims_padding):
            return self.sequence_output(item_seq, embed(slice(None), slice(None)))
        max_len = item_seq.size(1)
        widths = sorted({max(1, round(max_len * fraction)) for fraction in GROUP_WIDTHS})
        # Group g holds lengths in (widths[g-1], widths[g]]. Group sizes and longest lengths reach
        # the host in one transfer (the only sync here); rows keep ascending order within a group.
        lengths = item_seq_len.long()
        group = sum((lengths > w).long() for w in widths)
        counts = torch.bincount(group, minlength=len(widths))
        longest = torch.zeros_like(counts).scatter_reduce(0, group, lengths, "amax")
        counts, longest = torch.stack([counts, longest]).tolist()
        groups = torch.argsort(group, stable=True).split(counts)
        blocks, parts = [], []
        for rows, count, width in zip(groups, counts, longest):
            if count == 0:
                continue
            cols = slice(max_len - width, max_len) if self.align == "recent" else slice(0, width)
            blocks.append((rows, cols))
            parts.append(self.sequence_output(item_seq[rows, cols], embed(rows, cols)))
        return _Canvas.apply((item_seq.size(0), max_len, parts[0].size(-1)), blocks, *parts)

    def forward(self, item_seq, item_seq_len):
        seq = self._layout(item_seq, item_seq_len)
        return self._last(self.sequence_output(seq, self.item_embedding(seq)), item_seq_len)

    # ------------------------------------------------------------------ training
    def calculate_loss(self, interaction):
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        targets, negatives, mask = self._targets(interaction, item_seq, item_seq_len)
        # Losses only ever touch the valid target slots: pick them once.
        if self.train_mode == "prefix":  # one slot per row: no nonzero, no host sync
            rows = torch.arange(mask.size(0), device=mask.device)
            cols = torch.zeros_like(rows)
        else:
            rows, cols = mask.nonzero(as_tuple=True)
        seq = self._layout(item_seq, item_seq_len)
        item_emb = self.item_embedding(seq)
        augmenting = self.basrec and self.augment
        # CSA reads partners' outputs at any slot, padding included: encode those at full width
        # (unless csa_partner_padding is 'zero': trimmed outputs are zeros at padding).
        full_width = augmenting and self.n_whole_level > 0 and self.csa_partner_padding == "encoder"
        slots = self._slots(self._encode(seq, item_emb, item_seq_len, trim=not full_width), item_seq_len)
        hidden = slots[rows, cols]
        pos_emb = self._item_vectors(targets[rows, cols])
        neg_emb = None if negatives is None else self._item_vectors(negatives[rows, cols])
        rec = self._loss(hidden, pos_emb, neg_emb)
        method = self.augmentation if self.augment else "none"
        if method == "none":
            return rec
        if method == "cl4srec":
            return rec, self.cl_weight * methods.cl4srec_loss(self, item_seq, item_seq_len)
        if method in methods.HEURISTIC:
            last = targets[:, -1] if self.train_mode == "prefix" else interaction[TARGET_LIST_FIELD].gather(
                1, (item_seq_len.long() - 1).unsqueeze(1)).squeeze(1)
            return rec, self.aug_weight * methods.heuristic_loss(self, method, item_seq, item_seq_len, last)
        ssa = self._ssa_loss(item_seq, seq, item_seq_len, item_emb, (rows, cols), pos_emb, neg_emb)
        csa = self._csa_loss(slots, targets, negatives, (rows, cols), pos_emb, neg_emb)
        return self.rec_weight * rec, self.aml_weight * ssa, self.wml_weight * csa

    def loss_terms(self):
        """Names of what :meth:`calculate_loss` returns while augmenting, in order."""
        return methods.LOSS_TERMS[self.augmentation if self.augment else "none"]

    def _masked_input(self, ids, lengths, masked):
        """Model-layout ids and their input embeddings, zero where ``masked`` (the mask token)."""
        seq = self._layout(ids, lengths)
        emb = self.item_embedding(seq)
        if masked is not None:
            emb = emb * ~self._layout(masked, lengths).unsqueeze(-1)
        return seq, emb

    def sequence_loss(self, item_seq, item_seq_len, targets, masked=None):
        """The recommendation loss of right-padded inputs ``item_seq`` against right-padded
        next-item ``targets`` (0: none): at every target (``train_mode: sequence``) or at the
        last input (``prefix``), with fresh negatives; ``masked`` inputs read the mask token."""
        seq, emb = self._masked_input(item_seq, item_seq_len, masked)
        slots = self._slots(self._encode(seq, emb, item_seq_len), item_seq_len)
        if self.train_mode == "prefix":
            targets = targets.gather(1, (item_seq_len.long() - 1).unsqueeze(1))
        negatives = None
        if self.loss_type != "CE":
            negatives = self._sample_negatives(item_seq, targets).masked_fill(targets == 0, 0)
        if self.train_mode != "prefix":
            targets = self._layout(targets, item_seq_len)
            negatives = None if negatives is None else self._layout(negatives, item_seq_len)
        rows, cols = (targets > 0).nonzero(as_tuple=True)
        neg_emb = None if negatives is None else self._item_vectors(negatives[rows, cols])
        return self._loss(slots[rows, cols], self._item_vectors(targets[rows, cols]), neg_emb)

    def sequence_representation(self, item_seq, item_seq_len, masked=None):
        """The backbone's representation ``(B, D)`` of right-padded sequences: the output at the
        last item (what ``forward`` returns), ``masked`` inputs reading the mask token."""
        seq, emb = self._masked_input(item_seq, item_seq_len, masked)
        return self._last(self._encode(seq, emb, item_seq_len), item_seq_len)

    def _targets(self, interaction, item_seq, item_seq_len):
        """Targets, negatives (or None) and validity mask, each ``(B, T)`` in the model's layout.
        Slots without a target hold item 0 as target and as negative (as in the authors' code)."""
        sampled = self.loss_type != "CE"
        if self.train_mode == "prefix":
            targets = interaction[self.POS_ITEM_ID].unsqueeze(1)
            negatives = interaction[self.NEG_ITEM_ID].unsqueeze(1) if sampled else None
            return targets, negatives, torch.ones_like(targets, dtype=torch.bool)
        if TARGET_LIST_FIELD not in interaction:
            raise ValueError(
                "train_mode=sequence needs recbole_basrec's dataset (field "
                f"'{TARGET_LIST_FIELD}'); import recbole_basrec before create_dataset, or set train_mode=prefix."
            )
        targets = interaction[TARGET_LIST_FIELD]
        negatives = None
        if sampled:
            negatives = self._sample_negatives(item_seq, targets).masked_fill(targets == 0, 0)
            negatives = self._layout(negatives, item_seq_len)
        targets = self._layout(targets, item_seq_len)
        return targets, negatives, targets > 0

    def _sample_negatives(self, item_seq, targets):
        """One uniform negative per position, redrawn where it hits the user's own items."""
        negatives = torch.randint(1, self.n_items, targets.shape, device=targets.device)
        # Membership by binary search in each row's sorted items: (B, L log L) work where
        # comparing every negative with every own item is (B, L, 2L); the same answer.
        own = torch.cat([item_seq, targets], dim=1).sort(dim=1).values
        last = own.size(1) - 1
        for _ in range(_NEGATIVE_ROUNDS):
            clash = own.gather(1, torch.searchsorted(own, negatives).clamp(max=last)) == negatives
            if not clash.any():
                break
            redraw = torch.randint(1, self.n_items, targets.shape, device=targets.device)
            negatives = torch.where(clash, redraw, negatives)
        return negatives

    def _item_vectors(self, ids=None):
        """What the losses score an output against: the embeddings of items ``ids``, or of every
        item (``ids=None``). A backbone scoring items otherwise (normalised, with a bias) overrides
        this, keeping ``score = <output, vector>``."""
        return self.item_embedding.weight if ids is None else self.item_embedding(ids)

    def _slots(self, output, item_seq_len):
        """Encoder outputs at the target slots ``(B, T, D)``: the last real position, or every position."""
        if self.train_mode == "prefix":
            return self._last(output, item_seq_len).unsqueeze(1)
        return output

    def _loss(self, hidden, pos_emb, neg_emb=None, weight=None):
        """Mean recommendation loss of outputs ``hidden`` (..., M, D) against target (and negative)
        embeddings, averaged over the M slots and summed over leading dims; ``weight`` (..., M)
        scales each slot's term."""
        pos_score = (hidden * pos_emb).sum(-1)
        if self.loss_type == "CE":
            per_slot = item_logsumexp(hidden, self._item_vectors(), self.ce_logits_mib) - pos_score
        else:
            neg_score = (hidden * neg_emb).sum(-1)
            if self.loss_type == "BPR":
                per_slot = -torch.log(1e-10 + torch.sigmoid(pos_score - neg_score))
            else:  # BCE, as the reference code
                per_slot = -F.logsigmoid(pos_score) - F.logsigmoid(-neg_score)
        if weight is not None:
            per_slot = per_slot * weight
        return per_slot.sum() / max(per_slot.size(-1), 1)

    def _ssa_loss(self, item_seq, seq, item_seq_len, item_emb, valid, pos_emb, neg_emb):
        """Single-sequence augmentation: all ``2 * n_pairs`` views in one encoder pass, each
        view's loss against the original targets; views' losses summed.

        ``item_seq`` is RecBole's right-padded batch (the operators' input), ``seq`` and
        ``item_emb`` the same in the model's layout. Each view's weights ``w'`` (one per
        sequence) enter as ``ssa_weighting`` says:

        * ``batch`` (default): ``(sum over the batch of w') x (the view's mean loss)``. This is
          what the authors' code computes (a ``(B, 1)`` weight broadcast against a ``(B*L,)``
          per-position loss) and what trained the published models: on average about 1.7x the
          mean loss with beta 0.4, r ~ U(0.2, 0.71), and 1.4x with beta 0.3, r ~ U(0.2, 0.51)
          (B = 256).
        * ``sequence``: the paper's formula read literally, each sequence's term times its own
          ``w'``, averaged over the target slots. ``w'`` is near 0 for most sequences, so this
          term is about 1/250 of ``batch``'s on those settings.
        """
        n_views = 2 * self.n_pairs
        if n_views == 0:
            return item_emb.new_zeros(())
        batch = item_seq.size(0)
        views, rates = aug.augmented_views(
            item_seq, item_seq_len, n_views, self.rate_min, self.rate_max, self.substitute_table,
            keep_last=self.reorder_keep_last,
        )
        lengths = item_seq_len.repeat(n_views)
        views = self._layout(views, lengths)
        lam = aug.sample_beta(self.beta, (n_views * batch,), item_seq.device)

        def fused(rows, cols):
            """Views ``rows`` (of ``n_views * batch``) mixed with their originals at ``cols``."""
            if isinstance(rows, slice):
                rows = torch.arange(n_views * batch, device=item_seq.device)
            return aug.mixup(item_emb[rows % batch, cols], self.item_embedding(views[rows, cols]),
                             lam[rows].view(-1, 1, 1))

        # Adapters that fuse more than item ids (item features) read the views and coefficients.
        fused.views, fused.lam = views, lam
        # Each view's loss reads only its own target slots, so trimming stays exact here.
        output = self._encode(seq.repeat(n_views, 1), fused, lengths)
        slots = self._slots(output, lengths).view(n_views, batch, -1, output.size(-1))
        rows, cols = valid
        weight = aug.ssa_weights(lam.view(n_views, batch), rates.view(n_views, batch), self.ssa_weighting)
        return self._loss(slots[:, rows, cols], pos_emb, neg_emb, weight[:, rows])

    def _csa_loss(self, slots, targets, negatives, valid, pos_emb, neg_emb):
        """Cross-sequence augmentation on the un-augmented outputs: ``n_whole_level`` rounds of
        item-wise and of feature-wise mixup with a random partner sequence, all in one batch.
        Only the original sequence's valid slots are mixed (the target mask of the mix); each
        is paired with the same column of its partner, i.e. (under ``align: recent``) the same
        distance from the most recent item. A partner slot without a target contributes the
        encoder's output there and item 0 as target and negative, as in the authors' code."""
        rounds = self.n_whole_level
        if rounds == 0:
            return slots.new_zeros(())
        rows, cols = valid
        batch, n_valid, dim = slots.size(0), rows.numel(), slots.size(-1)
        device = slots.device
        item_wise = aug.sample_beta(self.beta, (rounds, n_valid, 1), device).expand(-1, -1, dim)
        feature_wise = aug.sample_beta(self.beta, (rounds, batch, dim), device)[:, rows]
        lam = torch.cat([item_wise, feature_wise])  # (2 * rounds, M, D)
        partner = aug.csa_partners(2 * rounds, batch, device)[:, rows]  # (2 * rounds, M)
        hidden = aug.mixup(slots[rows, cols], slots[partner, cols], lam)
        pos = aug.mixup(pos_emb, self._item_vectors(targets[partner, cols]), lam)
        neg = None if negatives is None else aug.mixup(neg_emb, self._item_vectors(negatives[partner, cols]), lam)
        return self._loss(hidden, pos, neg)
