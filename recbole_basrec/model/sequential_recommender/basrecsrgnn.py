r"""BASRecSRGNN
################################################

Reference:
    Yizhou Dang et al. "Augmenting Sequential Recommendation with Balanced Relevance and
    Diversity." In AAAI 2025.

    Shu Wu et al. "Session-based Recommendation with Graph Neural Networks." In AAAI 2019.
"""
from recbole.model.sequential_recommender import SRGNN

from recbole_basrec.model.session_graph import SessionGraphBASRec


class BASRecSRGNN(SessionGraphBASRec, SRGNN):
    r"""RecBole's stock SR-GNN trained with BASRec; same parameters, graph and inference. Views
    are fused at the node embeddings (:mod:`recbole_basrec.model.session_graph`), mixup works on
    the session representation."""

    backbone = SRGNN
