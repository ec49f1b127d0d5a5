# -*- coding: utf-8 -*-
"""FMLP-Rec as a plain RecBole sequential recommender."""
import torch
import torch.nn.functional as F
from torch import nn

from recbole.model.abstract_recommender import SequentialRecommender
from recbole.model.layers import FeedForward
from recbole.model.loss import BPRLoss
from recbole.utils import InputType



class FilterLayer(nn.Module):
    r"""Learnable frequency-domain filter over the time axis, then dropout, residual, LayerNorm.

    ``causal=False`` is the paper's filter: ``irfft(rfft(x) * W)`` with orthonormal FFTs, i.e. a
    circular convolution of every channel with the kernel ``k = irfft(W, n=L)``, so each output
    mixes in *later* positions. ``causal=True`` applies the same kernel as a linear convolution
    (zero-padded FFT of length 2L, first L outputs), so output ``t`` sees only inputs ``<= t``.
    """

    def __init__(self, max_seq_length, hidden_size, hidden_dropout_prob, layer_norm_eps, causal=False):
        super(FilterLayer, self).__init__()
        self.max_seq_length = max_seq_length
        self.causal = causal
        # Real storage of a complex (L//2+1, D) weight; randn * 0.02 as in the authors' code.
        self.complex_weight = nn.Parameter(
            torch.randn(1, max_seq_length // 2 + 1, hidden_size, 2, dtype=torch.float32) * 0.02
        )
        self.dropout = nn.Dropout(hidden_dropout_prob)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def weight(self):
        """The complex filter ``W`` of shape (1, L//2+1, D)."""
        return torch.view_as_complex(self.complex_weight)

    def kernel(self):
        """Time-domain kernel ``k`` (1, L, D) with ``rfft(k) == W``.

        With ortho rfft/irfft the two sqrt(L) factors cancel, so the circular filter is exactly
        circular convolution with the *backward*-normalised ``irfft(W)``. (The imaginary parts of
        the DC / Nyquist bins are dropped by irfft in both forms, so they agree exactly.)
        """
        return torch.fft.irfft(self.weight(), n=self.max_seq_length, dim=1)

    def filter(self, x):
        """The filter alone (no dropout / residual / LayerNorm); ``x`` is (B, L, D)."""
        seq_len = x.size(1)
        if seq_len != self.max_seq_length:
            raise ValueError(f"FilterLayer expects length {self.max_seq_length}, got {seq_len}")
        if not self.causal:
            spec = torch.fft.rfft(x, dim=1, norm="ortho") * self.weight()
            return torch.fft.irfft(spec, n=seq_len, dim=1, norm="ortho")
        # Padding to 2L turns the circular product into a linear convolution; keeping the
        # first L outputs makes it causal. Still O(L log L).
        n_fft = 2 * seq_len
        spec = torch.fft.rfft(x, n=n_fft, dim=1) * torch.fft.rfft(self.kernel(), n=n_fft, dim=1)
        return torch.fft.irfft(spec, n=n_fft, dim=1)[:, :seq_len]

    def forward(self, input_tensor):
        hidden_states = self.dropout(self.filter(input_tensor))
        return self.LayerNorm(hidden_states + input_tensor)


class FMLPLayer(nn.Module):
    """One FMLP block: learnable filter, then the point-wise feed-forward network."""

    def __init__(self, max_seq_length, hidden_size, inner_size, hidden_dropout_prob, hidden_act,
                 layer_norm_eps, causal=False):
        super(FMLPLayer, self).__init__()
        self.filter_layer = FilterLayer(max_seq_length, hidden_size, hidden_dropout_prob, layer_norm_eps, causal)
        # RecBole's FeedForward: dense -> act -> dense -> dropout -> residual LayerNorm.
        self.feed_forward = FeedForward(hidden_size, inner_size, hidden_dropout_prob, hidden_act, layer_norm_eps)

    def forward(self, hidden_states):
        return self.feed_forward(self.filter_layer(hidden_states))


class FMLPRec(SequentialRecommender):
    r"""FMLP-Rec from Zhou et al., "Filter-enhanced MLP is All You Need for Sequential
    Recommendation", WWW 2022.

    SASRec's embedding front end with each self-attention block replaced by a learnable
    frequency-domain filter (:class:`FilterLayer`), followed by the usual feed-forward block.

    NOTE:
        The paper's filter is a circular convolution: every output position mixes in future
        positions, so ``sees_future`` is True and only the last position's output is leak-free.
        ``filter_causal=True`` uses the same parameters as a causal linear convolution, which
        makes every position's output usable for a per-position loss.
        RecBole pads sequences on the right; positions are 0..L-1 as in SASRec.
    """

    # RecBole's Config reads a model's input type from its class; the configuration hook then
    # sets the one that ``loss_type`` needs.
    input_type = InputType.POINTWISE

    def __init__(self, config, dataset):
        super(FMLPRec, self).__init__(config, dataset)

        self.n_layers = config["n_layers"]
        self.hidden_size = config["hidden_size"]
        self.inner_size = config["inner_size"]
        self.hidden_dropout_prob = config["hidden_dropout_prob"]
        self.hidden_act = config["hidden_act"]
        self.layer_norm_eps = config["layer_norm_eps"]
        self.initializer_range = config["initializer_range"]
        self.loss_type = config["loss_type"]
        self.filter_causal = bool(config["filter_causal"])  # missing key (None) -> paper filter
        # Read by training code that puts a loss at every position: refuse when True.
        self.sees_future = not self.filter_causal

        self.item_embedding = nn.Embedding(self.n_items, self.hidden_size, padding_idx=0)
        self.position_embedding = nn.Embedding(self.max_seq_length, self.hidden_size)
        self.LayerNorm = nn.LayerNorm(self.hidden_size, eps=self.layer_norm_eps)
        self.dropout = nn.Dropout(self.hidden_dropout_prob)
        self.layers = nn.ModuleList(
            [
                FMLPLayer(
                    self.max_seq_length,
                    self.hidden_size,
                    self.inner_size,
                    self.hidden_dropout_prob,
                    self.hidden_act,
                    self.layer_norm_eps,
                    causal=self.filter_causal,
                )
                for _ in range(self.n_layers)
            ]
        )

        if self.loss_type == "BPR":
            self.loss_fct = BPRLoss()
        elif self.loss_type == "CE":
            self.loss_fct = nn.CrossEntropyLoss()
        elif self.loss_type == "BCE":
            self.loss_fct = None  # computed inline from (pos, neg) scores
        else:
            raise NotImplementedError("Make sure 'loss_type' in ['BPR', 'CE', 'BCE']!")

        # Filter weights keep their own randn * 0.02 init (they are not Linear/Embedding).
        self.apply(self._init_weights)

    def _init_weights(self, module):
        """Normal(0, initializer_range) for Linear / Embedding, identity LayerNorm, zero biases."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=self.initializer_range)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    def position_ids(self, width, device):
        """Positions 0..width-1 (RecBole's layout); BASRec's mixin overrides this for ``align``."""
        return torch.arange(width, dtype=torch.long, device=device)

    def sequence_output(self, item_seq, item_emb):
        """Per-position hidden states (B, L, D) from (possibly modified) item embeddings."""
        position_ids = self.position_ids(item_seq.size(1), item_seq.device)
        position_emb = self.position_embedding(position_ids).unsqueeze(0)
        hidden_states = self.dropout(self.LayerNorm(item_emb + position_emb))
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return hidden_states

    def forward(self, item_seq, item_seq_len):
        output = self.sequence_output(item_seq, self.item_embedding(item_seq))
        return self.gather_indexes(output, item_seq_len - 1)  # [B H]

    def calculate_loss(self, interaction):
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        seq_output = self.forward(item_seq, item_seq_len)
        pos_items = interaction[self.POS_ITEM_ID]
        if self.loss_type == "CE":
            # Scores over every item embedding, padding row included, as stock SASRec.
            logits = torch.matmul(seq_output, self.item_embedding.weight.transpose(0, 1))
            return self.loss_fct(logits, pos_items)
        neg_items = interaction[self.NEG_ITEM_ID]
        pos_score = torch.sum(seq_output * self.item_embedding(pos_items), dim=-1)  # [B]
        neg_score = torch.sum(seq_output * self.item_embedding(neg_items), dim=-1)  # [B]
        if self.loss_type == "BPR":
            return self.loss_fct(pos_score, neg_score)
        # BCE: -log sigma(pos) - log(1 - sigma(neg)); logsigmoid keeps it finite.
        return (-F.logsigmoid(pos_score) - F.logsigmoid(-neg_score)).mean()

    def predict(self, interaction):
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        test_item = interaction[self.ITEM_ID]
        seq_output = self.forward(item_seq, item_seq_len)
        return torch.mul(seq_output, self.item_embedding(test_item)).sum(dim=1)  # [B]

    def full_sort_predict(self, interaction):
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        seq_output = self.forward(item_seq, item_seq_len)
        return torch.matmul(seq_output, self.item_embedding.weight.transpose(0, 1))  # [B n_items]
