r"""BASRecSASRec
################################################

Reference:
    Yizhou Dang et al. "Augmenting Sequential Recommendation with Balanced Relevance and
    Diversity." In AAAI 2025.
    Wang-Cheng Kang et al. "Self-Attentive Sequential Recommendation." In ICDM 2018.
"""
from recbole.model.sequential_recommender import SASRec

from recbole_basrec.model.basrec import BASRec


class BASRecSASRec(BASRec, SASRec):
    r"""RecBole's stock SASRec trained with BASRec; same parameters and initialisation. Under
    ``align: recent`` position embeddings count back from the most recent item (the authors'
    layout); ``align: first`` is stock SASRec's inference."""

    def sequence_output(self, item_seq, item_emb):
        position_ids = self.position_ids(item_seq.size(1), item_seq.device)
        input_emb = item_emb + self.position_embedding(position_ids).unsqueeze(0)
        input_emb = self.dropout(self.LayerNorm(input_emb))
        attention_mask = self.get_attention_mask(item_seq)
        return self.trm_encoder(input_emb, attention_mask, output_all_encoded_layers=True)[-1]
