r"""BASRecFDSA
################################################

Reference:
    Yizhou Dang et al. "Augmenting Sequential Recommendation with Balanced Relevance and
    Diversity." In AAAI 2025.

    Tingting Zhang et al. "Feature-level Deeper Self-Attention Network for Sequential Recommendation." In IJCAI 2019.
"""
from recbole.model.sequential_recommender import FDSA

from recbole_basrec.model.item_features import FeatureBASRec


class BASRecFDSA(FeatureBASRec, FDSA):
    r"""RecBole's stock FDSA trained with BASRec; same parameters and inference. Views are fused
    in the item-id and the item-feature embeddings alike (:mod:`recbole_basrec.model.item_features`)."""

    backbone = FDSA
