r"""BASRecFMLPRec
################################################

Reference:
    Yizhou Dang et al. "Augmenting Sequential Recommendation with Balanced Relevance and
    Diversity." In AAAI 2025.
    Kun Zhou et al. "Filter-enhanced MLP is All You Need for Sequential Recommendation." In WWW 2022.
"""
from recbole_basrec.model.basrec import BASRec
from recbole_basrec.model.sequential_recommender.fmlprec import FMLPRec


class BASRecFMLPRec(BASRec, FMLPRec):
    r"""FMLP-Rec trained with BASRec. ``FMLPRec.sequence_output`` is the adapter; its filter must be
    causal (``filter_causal: True``) for ``train_mode: sequence``."""

    # The filter is defined over all max_seq_length positions.
    trims_padding = False

