r"""BASRec on RecBole's session-graph models (SR-GNN, GC-SAN).

Reference:
    Yizhou Dang et al. "Augmenting Sequential Recommendation with Balanced Relevance and
    Diversity." In AAAI 2025.

These models embed the *nodes* of a session graph (the session's distinct items, RecBole's
``_get_slice``), not the sequence itself. The graph is always built from the original sequence,
as stock; a single-sequence view enters as the node embeddings: node ``k`` of sequence ``b``
becomes the mean, over the positions ``t`` holding that node's item, of the fused embedding
``lambda * E[s_t] + (1 - lambda) * E[view_t]``, i.e. ``lambda * E[item] + (1 - lambda) * (mean
view embedding at its positions)``. Cross-sequence mixup works on the session representation
``forward`` returns.
"""
import torch

from recbole_basrec.model.generic import GenericBASRec


def session_nodes(item_seq):
    """RecBole's node list and alias of every session, batched: ``nodes`` ``(B, L)`` holds each
    row's distinct ids in increasing order then zeros (``np.unique`` padded, as ``_get_slice``),
    ``alias`` ``(B, L)`` the node index of each position."""
    ordered, order = item_seq.sort(dim=1)
    new = torch.ones_like(ordered, dtype=torch.bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    rank = new.long().cumsum(1) - 1
    alias = torch.empty_like(rank).scatter_(1, order, rank)
    nodes = torch.zeros_like(item_seq).scatter_(1, rank, ordered)
    return nodes, alias


class SessionGraphBASRec(GenericBASRec):
    """Generic BASRec whose input embedding is the session graph's node embedding."""

    def _embedded_ids(self, seq):
        return session_nodes(seq)[0]

    def _embed_input(self, item_seq, item_emb):
        """Per-position embeddings ``(B, L, D)`` averaged onto the graph's nodes."""
        nodes, alias = session_nodes(item_seq)
        index = alias.unsqueeze(-1).expand_as(item_emb)
        total = torch.zeros_like(item_emb).scatter_add(1, index, item_emb)
        ones = torch.ones_like(alias, dtype=item_emb.dtype)
        count = torch.zeros_like(ones).scatter_add(1, alias, ones)
        # Nodes no position maps to (the zeros after the distinct ids) keep the stock embedding.
        stock = self.item_embedding.weight[nodes]
        return torch.where(count.unsqueeze(-1) > 0, total / count.clamp(min=1).unsqueeze(-1), stock)
