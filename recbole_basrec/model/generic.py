r"""BASRec on any RecBole sequential model, without a hand-written adapter.

Reference:
    Yizhou Dang et al. "Augmenting Sequential Recommendation with Balanced Relevance and
    Diversity." In AAAI 2025.

``BASRec<Model>`` (e.g. ``BASRecNARM``) is the stock model with BASRec's losses added:

* single-sequence views are fused with the original at the input embedding: within
  ``forward``, the model's own ``item_embedding(item_seq)`` call returns the fused
  embeddings (a forward hook, see :mod:`recbole_basrec.model.input_embedding`);
* cross-sequence mixup works on what ``forward`` returns, one representation per sequence
  (the last real position for models returning one per position);
* training is ``train_mode: prefix`` (RecBole's: one target per training prefix);
* the objective is BASRec's, with BASRec on or off: a stock model's own extra loss terms
  (SINE's concept-covariance regulariser, ``reg_weight`` penalties, FEARec's contrastive losses)
  are not added, because they live inside each model's ``calculate_loss``.

A model is served when, on a probe batch at start-up, its ``forward`` takes the item sequence
(and optionally its length and the user), embeds that sequence with ``item_embedding``, and
its ``full_sort_predict`` equals ``forward(...) @ item_embedding.weight.T`` -- the scoring
BASRec's losses train. Any other model is refused at start-up with the reason. Parameters,
initialisation and inference are the stock model's: its checkpoints load either way.
"""
import functools

import torch
from torch import nn

from recbole_basrec.config.models import check_servable, refusal
from recbole_basrec.model.basrec import BASRec
from recbole_basrec.model.input_embedding import replace_input_embedding

class GenericBASRec(BASRec):
    """BASRec mixed into a stock model through its ``item_embedding`` and ``forward``
    (see the module docstring). Use via :func:`generic_basrec_class`."""

    #: The stock class; set by :func:`generic_basrec_class`.
    backbone = None
    trims_padding = False

    def __init__(self, config, dataset):
        self._forward_args = check_servable(self.backbone)
        self._user_field = config["USER_ID_FIELD"]
        self._users = None
        super().__init__(config, dataset)

    def _check_backbone(self, dataset):
        """Run the stock model on a probe batch and refuse it if BASRec cannot serve it."""
        from recbole.data.interaction import Interaction

        name = self.backbone.__name__
        embedding = getattr(self, "item_embedding", None)
        if not isinstance(embedding, nn.Embedding) or embedding.num_embeddings != self.n_items:
            raise refusal(name, "has no item_embedding table with one row per item")
        width = self.max_seq_length
        rows = [[1, 2, 1, 3], [2], [3, 1]]
        seq = torch.zeros(len(rows), width, dtype=torch.long)
        for r, items in enumerate(rows):
            items = [(i - 1) % (self.n_items - 1) + 1 for i in items][:width]
            seq[r, : len(items)] = torch.tensor(items)
        lengths = (seq > 0).sum(1)
        users = torch.ones(len(rows), dtype=torch.long).clamp(max=max(dataset.user_num - 1, 0))
        probe = Interaction({self.ITEM_SEQ: seq, self.ITEM_SEQ_LEN: lengths, self._user_field: users})
        calls = []  # the ids of every 2-D item_embedding call

        def record(ids, output):
            calls.append(ids.clone())
            return output

        training = self.training
        self.eval()
        try:
            with torch.no_grad(), replace_input_embedding(self, record):
                output = self._backbone_forward(seq, lengths, users)
                scores = self.full_sort_predict(probe)
        except Exception as error:  # noqa: BLE001 - any failure means the probe cannot vouch for it
            raise refusal(name, f"fails on a probe batch ({type(error).__name__}: {error})") from None
        finally:
            self.train(training)
        if not any(c.shape == seq.shape and torch.equal(c, seq) for c in calls):
            raise refusal(name, "does not embed its input sequence with item_embedding (e.g. it embeds graph nodes)")
        if output.dim() != 2 or output.size(-1) != embedding.embedding_dim:
            raise refusal(name, "does not return one representation per sequence of the item embedding's size")
        expected = output @ embedding.weight.t()
        if scores.shape != expected.shape or not torch.allclose(scores, expected, rtol=1e-4, atol=1e-5):
            raise refusal(name, "scores items other than as forward(...) @ item_embedding.weight, which BASRec's losses train")

    def _backbone_forward(self, seq, lengths, users):
        inputs = {"seq": seq, "len": lengths, "user": users}
        output = super(BASRec, self).forward(*(inputs[a] for a in self._forward_args))
        if output.dim() == 3:  # one output per position (NextItNet): the last real one
            output = self.gather_indexes(output, lengths - 1)
        return output

    def forward(self, *args, **kwargs):
        return super(BASRec, self).forward(*args, **kwargs)

    def calculate_loss(self, interaction):
        self._users = interaction[self._user_field] if "user" in self._forward_args else None
        try:
            return super().calculate_loss(interaction)
        finally:
            self._users = None

    # The stock model sees RecBole's layout: no re-alignment, and one output per sequence.
    def _layout(self, seq, lengths):
        return seq

    def _last(self, output, lengths):
        return output[:, -1]

    def _encode(self, item_seq, item_emb, item_seq_len, trim=True):
        """The stock ``forward`` with ``item_emb`` in place of its input embedding: ``(B, 1, D)``."""
        if callable(item_emb):  # built on demand (see BASRec._encode): here always whole
            item_emb = item_emb(slice(None), slice(None))
        users = None if self._users is None else self._users.repeat(item_seq.size(0) // self._users.size(0))

        def fused(ids, output):
            same = ids.shape == item_seq.shape and torch.equal(ids, item_seq)
            return item_emb if same else output

        with replace_input_embedding(self, fused):
            return self._backbone_forward(item_seq, item_seq_len, users).unsqueeze(1)


@functools.lru_cache(maxsize=None)
def generic_basrec_class(backbone):
    """The class ``BASRec<backbone name>``: ``backbone`` trained with BASRec (generic path)."""
    name = f"BASRec{backbone.__name__}"
    doc = (
        f"RecBole's stock {backbone.__name__} trained with BASRec (Dang et al., AAAI 2025) through the "
        f"generic path of :mod:`recbole_basrec.model.generic`; same parameters, initialisation and inference."
    )
    return type(name, (GenericBASRec, backbone), {"backbone": backbone, "__doc__": doc, "__module__": __name__})
