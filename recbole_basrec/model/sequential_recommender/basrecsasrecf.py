r"""BASRecSASRecF
################################################

Reference:
    Yizhou Dang et al. "Augmenting Sequential Recommendation with Balanced Relevance and
    Diversity." In AAAI 2025.

    Wang-Cheng Kang et al. "Self-Attentive Sequential Recommendation." In ICDM 2018 (SASRecF
    is RecBole's SASRec with item-feature embeddings concatenated to the input).
"""
from recbole.model.sequential_recommender import SASRecF

from recbole_basrec.model.item_features import FeatureBASRec


class BASRecSASRecF(FeatureBASRec, SASRecF):
    r"""RecBole's stock SASRecF trained with BASRec; same parameters and inference. Views are fused
    in the item-id and the item-feature embeddings alike (:mod:`recbole_basrec.model.item_features`)."""

    backbone = SASRecF
