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
    r"""RecBole's stock GRU4Rec trained with BASRec; same parameters, initialisation and inference."""

    def sequence_output(self, item_seq, item_emb):
        gru_output, _ = self.gru_layers(self.emb_dropout(item_emb))
        return self.dense(gru_output)
