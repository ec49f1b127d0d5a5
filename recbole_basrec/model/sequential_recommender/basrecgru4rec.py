r"""BASRecGRU4Rec
################################################

Reference:
    Yizhou Dang et al. "Augmenting Sequential Recommendation with Balanced Relevance and
    Diversity." In AAAI 2025.
    Yong Kiam Tan et al. "Improved Recurrent Neural Networks for Session-based Recommendations."
    In DLRS 2016.
"""
from recbole.model.sequential_recommender import GRU4Rec

from recbole_basrec.model.basrec import BASRec


class BASRecGRU4Rec(BASRec, GRU4Rec):
    r"""RecBole's stock GRU4Rec trained with BASRec; same parameters and initialisation. Under
    ``align: recent`` the GRU reads the left padding (item 0's embedding) before the real items,
    as the authors' code feeds it; ``align: first`` is stock GRU4Rec's inference."""

    @property
    def trims_padding(self):
        # Left padding is read by the recurrence, so it can only be skipped when it trails.
        return self.align == "first"

    def sequence_output(self, item_seq, item_emb):
        gru_output, _ = self.gru_layers(self.emb_dropout(item_emb))
        return self.dense(gru_output)
