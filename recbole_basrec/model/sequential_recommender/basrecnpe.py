r"""BASRecNPE
################################################

Reference:
    Yizhou Dang et al. "Augmenting Sequential Recommendation with Balanced Relevance and
    Diversity." In AAAI 2025.

    ThaiBinh Nguyen and Atsuhiro Takasu. "NPE: Neural Personalized Embedding for Collaborative
    Filtering." In IJCAI 2018.
"""
from recbole.model.sequential_recommender import NPE

from recbole_basrec.model.generic import GenericBASRec


class BASRecNPE(GenericBASRec, NPE):
    r"""RecBole's stock NPE trained with BASRec through the generic path; same parameters and
    inference. NPE scores candidates with ``relu(item_embedding)``; BASRec's losses score
    targets, negatives and mixed targets with it too."""

    backbone = NPE
    _scoring = "forward(...) @ relu(item_embedding.weight)"

    def _item_vectors(self, ids=None):
        return self.relu(self.item_embedding.weight if ids is None else self.item_embedding(ids))
