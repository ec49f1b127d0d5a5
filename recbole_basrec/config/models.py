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

#: Stock models served by a dedicated adapter (``recbole_basrec/model/sequential_recommender/``):
#: what the generic path cannot see by itself (masked items, graph nodes, item features, the
#: scoring), on its conventions otherwise (RecBole's layout and defaults, BASRec-generic.yaml).
DEDICATED = {
    "BERT4Rec": "BASRecBERT4Rec",
    "CORE": "BASRecCORE",
    "FDSA": "BASRecFDSA",
    "GCSAN": "BASRecGCSAN",
    "GRU4RecF": "BASRecGRU4RecF",
    "HGN": "BASRecHGN",
    "NPE": "BASRecNPE",
    "SASRecF": "BASRecSASRecF",
    "SRGNN": "BASRecSRGNN",
}
#: Stock models off the hand-written adapters that train with ``train_mode: sequence``: those whose
#: ``forward`` returns one causal output per position (the generic path's probe checks both). No
#: stock model of RecBole 1.2.1 does (NextItNet returns its last column); a model that does is
#: served in both modes by :func:`recbole_basrec.model.generic.generic_basrec_class`.
SEQUENCE_MODE = ()
#: Stock models refused, with the reason (one line each; the probe would only show a symptom).
KNOWN_REFUSALS = {
    "S3Rec": "is a self-supervised pre-training model over item attributes (its fine-tuning stage is "
             "SASRec-like: train SASRec with BASRec instead)",
    "GRU4RecKG": "needs knowledge-graph entity embeddings for every item (data the generic path does not load)",
    "KSR": "needs knowledge-graph entity and relation embeddings (data the generic path does not load)",
    "TransRec": "scores items by a negative translation distance plus a bias, not by an inner product "
                "that mixed target embeddings can enter",
    "DIN": "scores one candidate at a time from feature fields (a click-through model)",
    "DIEN": "scores one candidate at a time from feature fields (a click-through model)",
    "FPMC": "scores items by user-item and last-item factor tables, not from a sequence representation "
            "(forward needs the candidate item)",
    "GRU4RecCPR": "scores with a multi-facet softmax (softmax-CPR) over several hidden states, not one "
                  "representation per sequence against item_embedding (forward returns every layer's states)",
    "SASRecCPR": "scores with a multi-facet softmax (softmax-CPR) over several hidden states, not one "
                 "representation per sequence against item_embedding (forward returns every layer's states)",
    "HRM": "embeds a re-ordered copy of the sequence and rewrites the lengths in place, so fused views "
           "cannot replace its input embedding without changing its code",
    "RepeatNet": "predicts a repeat/explore mixture of probabilities, not scores of a representation "
                 "against an item table",
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
    mapping.update(DEDICATED)
    return mapping


def basrec_model_names():
    """Every ``BASRec<backbone>`` name, served or refused at start-up."""
    return tuple(backbones().values())


def is_basrec(model_name):
    return model_name in basrec_model_names()


def is_generic(model_name):
    """Whether ``model_name`` is BASRec on a stock model through the generic path or a dedicated
    adapter (both: RecBole's layout, the generic defaults)."""
    return is_basrec(model_name) and model_name not in HANDWRITTEN.values()


def registered_model_names():
    """Every model name this package registers with RecBole."""
    return basrec_model_names() + OWN_BACKBONES


def is_ours(model_name):
    return model_name in registered_model_names()


def our_model_name(name):
    """``name`` as one of our model names, in any case (``basrecsasrec``), else None."""
    return {n.lower(): n for n in registered_model_names()}.get(str(name).lower())


def resolve_model_name(name):
    """Map a runner ``--model`` (backbone or our model name, any case) to a registered model; a
    backbone's name (``FMLPRec`` among them) means its BASRec model."""
    backbone = {b.lower(): m for b, m in backbones().items()}.get(str(name).lower())
    resolved = backbone or our_model_name(name)
    if resolved is None:
        raise ValueError(
            f"Unknown model '{name}'. Valid models: a RecBole sequential model name (e.g. SASRec, GRU4Rec, NARM), "
            f"FMLPRec, or BASRec<name>."
        )
    return resolved


def backbone_of(model_name):
    """The backbone a registered model is built on (``FMLPRec`` for itself)."""
    for backbone, model in backbones().items():
        if model == model_name:
            return backbone
    return model_name


def refusal(model_name, reason):
    return ValueError(
        f"{model_name} cannot be trained with BASRec: it {reason}. "
        f"Served models are listed in served-models.md of the docs folder that recbole-basrec --help names."
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


def trains_sequence_mode(model_name):
    """Whether ``model_name`` may train with ``train_mode: sequence``."""
    return model_name in HANDWRITTEN.values() or backbone_of(model_name) in SEQUENCE_MODE


def check_servable(backbone):
    """Refuse, before anything is built, a stock model the generic path can never serve."""
    if backbone.__name__ in KNOWN_REFUSALS:
        raise refusal(backbone.__name__, KNOWN_REFUSALS[backbone.__name__])
    return forward_arguments(backbone)
