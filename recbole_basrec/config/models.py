"""Which models recbole-basrec serves, by name, and why a stock model is refused.

This is the lowest layer of the package: it reads RecBole's model classes but nothing of ours.
"""
import functools
import inspect

#: Backbones with a hand-written adapter (per-position outputs, length-grouped encoding).
HANDWRITTEN = {
    "SASRec": "BASRecSASRec",
    "GRU4Rec": "BASRecGRU4Rec",
    "FMLPRec": "BASRecFMLPRec",
}
#: Sequential models of ours that are not BASRec (RecBole 1.2.1 has no FMLP-Rec).
OWN_BACKBONES = ("FMLPRec",)

#: Stock models refused for reasons a probe batch cannot show (or before they could be built).
KNOWN_REFUSALS = {
    "BERT4Rec": "trains a masked-item objective over the whole sequence, not next-item prediction",
    "S3Rec": "is a self-supervised pre-training model over item attributes",
    "FDSA": "reads item feature fields as well, which fused views cannot carry",
    "GRU4RecF": "reads item feature fields as well, which fused views cannot carry",
    "SASRecF": "reads item feature fields as well, which fused views cannot carry",
    "GRU4RecKG": "needs knowledge-graph data",
    "KSR": "needs knowledge-graph data",
    "TransRec": "scores items by a translation distance, not by a dot product with item_embedding",
    "DIN": "scores one candidate at a time from feature fields (a click-through model)",
    "DIEN": "scores one candidate at a time from feature fields (a click-through model)",
}

#: ``forward`` argument names used by RecBole's models -> what the generic path passes.
FORWARD_ARGUMENTS = {"item_seq": "seq", "seq_item": "seq", "item_seq_len": "len", "seq_item_len": "len", "user": "user"}


@functools.lru_cache(maxsize=None)
def stock_sequential_models():
    """Name -> class of every stock RecBole sequential model."""
    from recbole.model import sequential_recommender as stock
    from recbole.model.abstract_recommender import SequentialRecommender

    return {
        name: cls for name, cls in sorted(vars(stock).items())
        if isinstance(cls, type) and issubclass(cls, SequentialRecommender) and cls is not SequentialRecommender
    }


@functools.lru_cache(maxsize=None)
def backbones():
    """Backbone name -> the BASRec model built on it: hand-written adapters, and the generic
    path (:mod:`recbole_basrec.model.generic`) for every other stock sequential model."""
    mapping = {name: f"BASRec{name}" for name in stock_sequential_models()}
    mapping.update(HANDWRITTEN)
    return mapping


def basrec_model_names():
    """Every ``BASRec<backbone>`` name, served or refused at start-up."""
    return tuple(backbones().values())


def is_basrec(model_name):
    return model_name in basrec_model_names()


def is_generic(model_name):
    """Whether ``model_name`` is BASRec on a stock model through the generic path."""
    return is_basrec(model_name) and model_name not in HANDWRITTEN.values()


def registered_model_names():
    """Every model name this package registers with RecBole."""
    return basrec_model_names() + OWN_BACKBONES


def is_ours(model_name):
    return model_name in registered_model_names()


def resolve_model_name(name):
    """Map a runner ``--model`` (backbone or our model name, any case) to a registered model."""
    lookup = {n.lower(): n for n in registered_model_names()}
    lookup.update({b.lower(): m for b, m in backbones().items()})
    try:
        return lookup[str(name).lower()]
    except KeyError:
        raise ValueError(
            f"Unknown model '{name}'. Valid models: a RecBole sequential model name (e.g. SASRec, GRU4Rec, NARM), "
            f"FMLPRec, or BASRec<name>."
        ) from None


def backbone_of(model_name):
    """The backbone a registered model is built on (``FMLPRec`` for itself)."""
    for backbone, model in backbones().items():
        if model == model_name:
            return backbone
    return model_name


def refusal(model_name, reason):
    return ValueError(
        f"{model_name} cannot be trained with BASRec: it {reason}. "
        f"Served models are listed in docs/generic.md."
    )


def forward_arguments(backbone):
    """What each of ``backbone.forward``'s arguments is (``seq``, ``len``, ``user``), or raise."""
    names = list(inspect.signature(backbone.forward).parameters)[1:]
    unknown = [n for n in names if n not in FORWARD_ARGUMENTS]
    if unknown or "seq" not in [FORWARD_ARGUMENTS.get(n) for n in names]:
        raise refusal(
            backbone.__name__,
            f"takes forward({', '.join(names)}); the generic path passes only the item sequence, its length and the user",
        )
    return tuple(FORWARD_ARGUMENTS[n] for n in names)


def check_servable(backbone):
    """Refuse, before anything is built, a stock model the generic path can never serve."""
    if backbone.__name__ in KNOWN_REFUSALS:
        raise refusal(backbone.__name__, KNOWN_REFUSALS[backbone.__name__])
    return forward_arguments(backbone)
