r"""BASRecCORE
################################################

Reference:
    Yizhou Dang et al. "Augmenting Sequential Recommendation with Balanced Relevance and
    Diversity." In AAAI 2025.

    Yupeng Hou et al. "CORE: Simple and Effective Session-based Recommendation within
    Consistent Representation Space." In SIGIR 2022.
"""
import torch.nn.functional as F
from recbole.model.sequential_recommender import CORE

from recbole_basrec.model.generic import GenericBASRec


class BASRecCORE(GenericBASRec, CORE):
    r"""RecBole's stock CORE trained with BASRec; same parameters and inference.

    CORE scores an item by the cosine of the session and item embeddings over ``temperature``,
    with ``item_dropout`` on the candidate table while training. BASRec's losses score the same
    way: every target, negative and candidate vector is ``normalize(dropout(E)) / temperature``
    (one dropout mask per training step, as CORE's ``calculate_loss``), so the recommendation
    loss is CORE's own and mixup mixes those vectors. Views are fused at the input embedding
    (CORE's ``forward`` embeds the sequence), mixup works on the normalised session vector.
    """

    backbone = CORE
    _scoring = "normalize(forward(...)) . normalize(item_embedding.weight) / temperature"

    def __init__(self, config, dataset):
        if config["loss_type"] != "CE":
            raise ValueError(
                f"CORE trains with softmax cross-entropy only, not loss_type={config['loss_type']}; set loss_type=CE."
            )
        self._candidates = None
        super().__init__(config, dataset)

    def _item_vectors(self, ids=None):
        table = self._candidates
        if table is None:  # inference and the probe: no dropout
            table = self._candidate_table()
        return table if ids is None else table[ids]

    def _candidate_table(self):
        return F.normalize(self.item_dropout(self.item_embedding.weight), dim=-1) / self.temperature

    def calculate_loss(self, interaction):
        self._candidates = self._candidate_table()
        try:
            return super().calculate_loss(interaction)
        finally:
            self._candidates = None
