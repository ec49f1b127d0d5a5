r"""BASRecGCSAN
################################################

Reference:
    Yizhou Dang et al. "Augmenting Sequential Recommendation with Balanced Relevance and
    Diversity." In AAAI 2025.

    Chengfeng Xu et al. "Graph Contextualized Self-Attention Network for Session-based
    Recommendation." In IJCAI 2019.
"""
from recbole.model.sequential_recommender import GCSAN

from recbole_basrec.model.session_graph import SessionGraphBASRec


class BASRecGCSAN(SessionGraphBASRec, GCSAN):
    r"""RecBole's stock GC-SAN trained with BASRec; same parameters, graph and inference. Views
    are fused at the node embeddings (:mod:`recbole_basrec.model.session_graph`), mixup works on
    the session representation. GC-SAN's own ``reg_weight`` embedding penalty is not added (the
    objective is BASRec's, as on the generic path)."""

    backbone = GCSAN
