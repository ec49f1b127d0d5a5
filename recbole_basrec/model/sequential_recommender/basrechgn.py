r"""BASRecHGN
################################################

Reference:
    Yizhou Dang et al. "Augmenting Sequential Recommendation with Balanced Relevance and
    Diversity." In AAAI 2025.

    Chen Ma et al. "Hierarchical Gating Networks for Sequential Recommendation." In KDD 2019.
"""
from recbole.model.sequential_recommender import HGN

from recbole_basrec.model.generic import GenericBASRec


class BASRecHGN(GenericBASRec, HGN):
    r"""RecBole's stock HGN trained with BASRec through the generic path; same parameters and
    inference. HGN scores candidates with its own prediction table,
    ``item_embedding_for_prediction``; BASRec's losses score targets, negatives and mixed
    targets with it too. HGN's ``reg_weight`` penalty is not added (the objective is BASRec's,
    as on the generic path)."""

    backbone = HGN
    _scoring = "forward(...) @ item_embedding_for_prediction.weight"

    def _item_vectors(self, ids=None):
        table = self.item_embedding_for_prediction
        return table.weight if ids is None else table(ids)
