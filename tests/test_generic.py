"""BASRec on stock RecBole sequential models through the generic path (no hand-written adapter)."""
import pytest
import torch
from recbole_basrec.utils import get_model

import recbole_basrec  # noqa: F401
from recbole_basrec.config import DEDICATED, HANDWRITTEN, stock_sequential_models
from recbole_basrec.model.generic import GenericBASRec

from helpers import assert_stock_inference_and_learning

#: Stock models the generic path serves (the README's list); every other one is refused.
SERVED = ["Caser", "FEARec", "FOSSIL", "LightSANs", "NARM", "NextItNet", "SHAN", "SINE", "STAMP"]
#: Refused models -> a fragment of the one-line reason (``KNOWN_REFUSALS``).
REFUSED = {
    "DIEN": "click-through",
    "DIN": "click-through",
    "FPMC": "forward needs the candidate item",
    "GRU4RecCPR": "softmax-CPR",
    "GRU4RecKG": "knowledge-graph",
    "HRM": "re-ordered copy of the sequence",
    "KSR": "knowledge-graph",
    "RepeatNet": "repeat/explore mixture",
    "S3Rec": "pre-training",
    "SASRecCPR": "softmax-CPR",
    "TransRec": "translation distance",
}
# Small models for a fast CPU run; FEARec needs two layers (its hybrid attention divides by them).
SMALL = {"n_layers": 2, "n_heads": 1, "hidden_size": 16, "embedding_size": 16, "inner_size": 32}


def test_every_stock_sequential_model_is_either_served_or_refused():
    generic = set(stock_sequential_models()) - set(HANDWRITTEN) - set(DEDICATED)  # tests/test_served_models.py
    assert generic == set(SERVED) | set(REFUSED)


@pytest.mark.parametrize("name", SERVED)
def test_served_model_trains_and_infers_as_the_stock_model(tiny_setup, name):
    config, dataset, model, trainer, (train, valid, test) = tiny_setup(name, learning_rate=0.003, **SMALL)
    assert isinstance(model, GenericBASRec) and type(model).__name__ == f"BASRec{name}"
    # Same parameters as the stock model built with the same seed; the same scores.
    assert_stock_inference_and_learning(name, model, config, train, test, shrink=1.0)


@pytest.mark.parametrize("name", ["NARM", "Caser", "NextItNet"])
def test_fused_embeddings_replace_the_stock_input_embedding(tiny_setup, name):
    # Encoding sequence A with B's embeddings (same padding) must give the stock forward of B.
    config, dataset, model, trainer, (train, valid, test) = tiny_setup(name, **SMALL)
    model.eval()
    batch = next(iter(train))
    seq, length = batch["item_id_list"], batch["item_length"]
    other = torch.where(seq > 0, seq % (model.n_items - 1) + 1, seq)
    model._users = batch["user_id"] if "user" in model._forward_args else None
    with torch.no_grad():
        fused = model._encode(seq, model.item_embedding(other), length)[:, 0]
        expected = model._backbone_forward(other, length, model._users)
        plain = model._backbone_forward(seq, length, model._users)
    assert torch.allclose(fused, expected, atol=1e-5)
    assert not torch.allclose(fused, plain, atol=1e-3)


@pytest.mark.parametrize("name,fragment", sorted(REFUSED.items()))
def test_refused_model_gets_a_one_line_reason(tiny_setup, name, fragment):
    with pytest.raises(ValueError) as error:
        tiny_setup(name, **SMALL)
    message = str(error.value)
    assert "\n" not in message and name in message and fragment in message


def test_generic_path_refuses_sequence_mode(tiny_setup):
    with pytest.raises(ValueError, match="set train_mode=prefix"):
        tiny_setup("NARM", train_mode="sequence", **SMALL)


def test_generic_models_resolve_in_stock_recbole():
    assert get_model("BASRecNARM").backbone is stock_sequential_models()["NARM"]
    from recbole_basrec.config import resolve_model_name

    assert resolve_model_name("narm") == "BASRecNARM"
    assert resolve_model_name("SASRec") == "BASRecSASRec"  # hand-written adapters stay
