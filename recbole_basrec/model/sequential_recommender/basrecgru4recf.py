r"""BASRecGRU4RecF
################################################

Reference:
    Yizhou Dang et al. "Augmenting Sequential Recommendation with Balanced Relevance and
    Diversity." In AAAI 2025.

    Balázs Hidasi et al. "Parallel Recurrent Neural Network Architectures for Feature-rich
    Session-based Recommendations." In RecSys 2016.
"""
from recbole.model.sequential_recommender import GRU4RecF

from recbole_basrec.model.item_features import FeatureBASRec


class BASRecGRU4RecF(FeatureBASRec, GRU4RecF):
    r"""RecBole's stock GRU4RecF trained with BASRec; same parameters and inference. Views are fused
    in the item-id and the item-feature embeddings alike (:mod:`recbole_basrec.model.item_features`)."""

    backbone = GRU4RecF
