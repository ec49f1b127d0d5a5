r"""BASRecBERT4Rec
################################################

Reference:
    Yizhou Dang et al. "Augmenting Sequential Recommendation with Balanced Relevance and
    Diversity." In AAAI 2025.

    Fei Sun et al. "BERT4Rec: Sequential Recommendation with Bidirectional Encoder
    Representations from Transformer." In CIKM 2019.
"""
import torch
from recbole.model.sequential_recommender import BERT4Rec

from recbole_basrec.model import augmentation as aug
from recbole_basrec.model.basrec import BASRec


class BASRecBERT4Rec(BASRec, BERT4Rec):
    r"""RecBole's stock BERT4Rec trained with BASRec; same parameters, masking (RecBole's
    ``mask_itemseq`` transform) and inference.

    * The recommendation loss is BERT4Rec's own: its masked-item objective (``CE`` or ``BPR``
      with the transform's negatives) at the masked positions, scores ``<h, e_i> + b_i``.
    * Single-sequence views are built from the *masked* sequence and fused at the input
      embedding; the mask tokens stay where BERT4Rec put them (see ``_masked_views``), so no
      view shows a masked target. Each view is scored at the masked positions against the
      original targets.
    * Cross-sequence mixup mixes the outputs at the masked positions and their targets across
      the batch, slot ``m`` of the transform's (left-padded) target list with the partner's slot
      ``m``. The output bias is scored as one more feature (output ``[h, 1]``, target
      ``[e_i, b_i]``), so it is mixed with its own feature-wise coefficient.
    """

    #: Bidirectional attention: every position sees the whole sequence.
    sees_future = True

    def __init__(self, config, dataset):
        if config["loss_type"] not in ("CE", "BPR"):
            raise ValueError(f"BERT4Rec trains with CE or BPR, not loss_type={config['loss_type']}; set loss_type=CE.")
        if config["train_mode"] != "prefix" or config["align"] != "first":
            raise ValueError(
                f"BASRecBERT4Rec trains BERT4Rec's masked-item objective on RecBole's training sequences in "
                f"their own layout: set train_mode=prefix and align=first (given {config['train_mode']}, {config['align']})."
            )
        super().__init__(config, dataset)

    def forward(self, item_seq):
        return BERT4Rec.forward(self, item_seq)

    def sequence_output(self, item_seq, item_emb):
        """BERT4Rec's ``forward`` with ``item_emb`` as the item embeddings of ``item_seq``."""
        position_ids = self.position_ids(item_seq.size(1), item_seq.device)
        input_emb = self.dropout(self.LayerNorm(item_emb + self.position_embedding(position_ids).unsqueeze(0)))
        attention_mask = self.get_attention_mask(item_seq, bidirectional=True)
        output = self.trm_encoder(input_emb, attention_mask, output_all_encoded_layers=True)[-1]
        return self.output_ln(self.output_gelu(self.output_ffn(output)))

    def _item_vectors(self, ids=None):
        """``[e_i, b_i]``: scoring ``[h, 1]`` against it is BERT4Rec's ``<h, e_i> + b_i``; the
        candidates are the real items (the mask token is none)."""
        if ids is None:
            return torch.cat([self.item_embedding.weight[: self.n_items], self.output_bias.unsqueeze(1)], dim=1)
        return torch.cat([self.item_embedding(ids), self.output_bias[ids].unsqueeze(-1)], dim=-1)

    def _masked_slots(self, output, masked_index):
        """Outputs at the masked positions ``(B, M, D + 1)``, with the bias feature 1 appended."""
        hidden = output.gather(1, masked_index.unsqueeze(-1).expand(-1, -1, output.size(-1)))
        return torch.cat([hidden, hidden.new_ones(*hidden.shape[:-1], 1)], dim=-1)

    def _loss(self, hidden, pos_emb, neg_emb=None, weight=None):
        if self.loss_type != "BPR":
            return super()._loss(hidden, pos_emb, neg_emb, weight)
        # BERT4Rec's own BPR term (its epsilon differs from BASRec's).
        diff = (hidden * pos_emb).sum(-1) - (hidden * neg_emb).sum(-1)
        per_slot = -torch.log(1e-14 + torch.sigmoid(diff))
        if weight is not None:
            per_slot = per_slot * weight
        return per_slot.sum() / max(per_slot.size(-1), 1)

    def calculate_loss(self, interaction):
        if self.MASK_ITEM_SEQ not in interaction:
            raise ValueError(
                "BASRecBERT4Rec needs RecBole's masked sequences: set transform=mask_itemseq (BERT4Rec's default)."
            )
        masked = interaction[self.MASK_ITEM_SEQ]
        lengths = interaction[self.ITEM_SEQ_LEN]
        targets = interaction[self.POS_ITEMS]
        negatives = interaction[self.NEG_ITEMS] if self.loss_type == "BPR" else None
        masked_index = interaction[self.MASK_INDEX]
        # BERT4Rec's own target mask (a mask at position 0 is not scored, as stock).
        rows, cols = (masked_index > 0).nonzero(as_tuple=True)
        item_emb = self.item_embedding(masked)
        slots = self._masked_slots(self._encode(masked, item_emb, lengths), masked_index)
        pos_emb = self._item_vectors(targets[rows, cols])
        neg_emb = None if negatives is None else self._item_vectors(negatives[rows, cols])
        rec = self._loss(slots[rows, cols], pos_emb, neg_emb)
        if not (self.basrec and self.augment):
            return rec
        ssa = self._masked_ssa_loss(masked, lengths, item_emb, masked_index, (rows, cols), pos_emb, neg_emb)
        # Outputs at padding are never read: masked positions are real ones.
        csa = self._csa_loss(slots, targets, negatives, (rows, cols), pos_emb, neg_emb)
        return self.rec_weight * rec, self.aml_weight * ssa, self.wml_weight * csa

    def _masked_views(self, masked, lengths, n_views):
        """``n_views`` views of each masked sequence ``(n_views * B, L)`` and their rates: M-Reorder
        or M-Substitute on the masked sequence, then every mask token back where BERT4Rec put it
        (an item moved onto a masked position is masked again; a position a mask token moved to
        keeps its own item). So a view only ever shows visible items and their substitutes."""
        # The mask token is its own neighbour, so substitution leaves it alone.
        table = torch.cat([self.substitute_table, self.substitute_table.new_full((1,), self.mask_token)])
        views, rates = aug.augmented_views(
            masked, lengths, n_views, self.rate_min, self.rate_max, table, keep_last=self.reorder_keep_last
        )
        originals = masked.repeat(n_views, 1)
        is_mask = originals == self.mask_token
        views = torch.where(is_mask, originals, torch.where(views == self.mask_token, originals, views))
        return views, rates

    def _masked_ssa_loss(self, masked, lengths, item_emb, masked_index, valid, pos_emb, neg_emb):
        """SSA on the masked sequence: all ``2 * n_pairs`` views in one pass (see the class)."""
        n_views = 2 * self.n_pairs
        if n_views == 0:
            return item_emb.new_zeros(())
        batch = masked.size(0)
        views, rates = self._masked_views(masked, lengths, n_views)
        originals = masked.repeat(n_views, 1)
        lam = aug.sample_beta(self.beta, (n_views * batch,), masked.device)

        def fused(rows, cols):
            if isinstance(rows, slice):
                rows = torch.arange(n_views * batch, device=masked.device)
            return aug.mixup(item_emb[rows % batch, cols], self.item_embedding(views[rows, cols]), lam[rows].view(-1, 1, 1))

        output = self._encode(originals, fused, lengths.repeat(n_views))
        slots = self._masked_slots(output, masked_index.repeat(n_views, 1)).view(n_views, batch, -1, pos_emb.size(-1))
        rows, cols = valid
        weight = aug.ssa_weights(lam.view(n_views, batch), rates.view(n_views, batch), self.ssa_weighting)
        return self._loss(slots[:, rows, cols], pos_emb, neg_emb, weight[:, rows])
