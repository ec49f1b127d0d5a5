r"""BASRec on RecBole's feature-aware sequential models (SASRecF, FDSA, GRU4RecF).

Reference:
    Yizhou Dang et al. "Augmenting Sequential Recommendation with Balanced Relevance and
    Diversity." In AAAI 2025.

These models embed the input sequence twice: item ids with ``item_embedding`` and the items'
feature fields with ``feature_embed_layer(None, item_seq)``. A single-sequence view is fused in
both with the same coefficient: ``lambda * E[s] + (1 - lambda) * E[view]`` for the ids and
``lambda * F(s) + (1 - lambda) * F(view)`` for every feature table, so a substituted item brings
its own features. Scoring stays ``forward(...) @ item_embedding.weight`` (checked at start-up),
and cross-sequence mixup works on what ``forward`` returns.
"""
from recbole_basrec.model.generic import GenericBASRec


class FeatureBASRec(GenericBASRec):
    """Generic BASRec that also fuses the views' item-feature embeddings."""

    def __init__(self, config, dataset):
        # Checked before the stock model is built, which would fail on a missing field obscurely.
        fields = [f for f in config["selected_features"] or () if f not in dataset.field2type]
        if fields or not config["selected_features"]:
            raise ValueError(
                f"{self.backbone.__name__} reads item feature fields {fields or 'selected_features'} that the "
                f"loaded data lacks; load them (load_col: {{item: [item_id, <field>]}}) or set selected_features."
            )
        super().__init__(config, dataset)

    def _encode(self, item_seq, item_emb, item_seq_len, trim=True):
        views = getattr(item_emb, "views", None)
        if views is None:  # the un-augmented pass: stock features
            return super()._encode(item_seq, item_emb, item_seq_len, trim)
        lam = item_emb.lam
        layer = self.feature_embed_layer

        def fused(module, inputs, output):
            if inputs[1] is not item_seq:
                return output
            handle.remove()  # the views' own lookup below must not come back here
            view_tables = layer(None, views)
            return tuple(
                {
                    key: None if table is None else table * lam.view(-1, *[1] * (table.dim() - 1))
                    + view_tables[i][key] * (1.0 - lam.view(-1, *[1] * (table.dim() - 1)))
                    for key, table in part.items()
                }
                for i, part in enumerate(output)
            )

        handle = layer.register_forward_hook(fused)
        try:
            return super()._encode(item_seq, item_emb, item_seq_len, trim)
        finally:
            handle.remove()
