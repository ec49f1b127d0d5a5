"""The declared schema of every configuration key recbole-basrec owns or checks.

Each :class:`Key` has a type (a pydantic annotation: type, range or choices), the models it
applies to and a one-line meaning. Defaults are not repeated here: they are the values in
``properties/`` (a test keeps the two in step). Validation, the runner's ``--help`` and
``docs/configuration.md`` are all generated from :data:`KEYS`.
"""
import dataclasses
import math
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field, StrictBool, StrictInt, StrictStr, TypeAdapter, ValidationError

#: Who a key applies to: every BASRec model, every model of ours, FMLP-Rec (plain or with
#: BASRec), or RecBole's own keys that our pipeline relies on (checked for our models).
BASREC, OURS, FMLPREC, RECBOLE = "BASRec models", "all our models", "FMLPRec", "RecBole keys we check"
#: The backbones' own RecBole keys, checked wherever the model's configuration has them.
BACKBONE = "backbone keys (checked where the model has them)"
SCOPES = (BASREC, OURS, FMLPREC, RECBOLE, BACKBONE)

TRAIN_MODES = ("prefix", "sequence")
SEQUENCE_WINDOWS = ("all", "last")
SIMILARITY_MODELS = ("ItemCF_IUF", "ItemCF", "Random")
SIMILARITY_SOURCES = ("inputs", "train")
LOSS_TYPES = ("CE", "BPR", "BCE")
ALIGNS = ("recent", "first")
SSA_WEIGHTINGS = ("batch", "sequence")
CSA_PARTNER_PADDINGS = ("encoder", "zero")
TTA_MODES = ("none", "tnoise", "tmask")
AUGMENTATIONS = ("basrec", "none", "ran", "ran_s", "slide_window", "cmr", "cmrsi", "cl4srec")
#: Which ``augmentation`` values a method key acts under (``Key.methods``).
ONLY_BASREC, HEURISTIC = ("basrec",), ("ran", "ran_s", "slide_window", "cmr", "cmrsi")
WITH_NEIGHBOURS, WITH_CMR_OPERATORS = ("basrec", "ran_s", "cmrsi"), ("cmr", "cmrsi", "cl4srec")
CL_OPERATORS = ("crop", "mask", "reorder")
CL_SIMILARITIES = ("dot", "cos")

Count = Annotated[StrictInt, Field(ge=0)]
Positive = Annotated[StrictInt, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
Rate = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False, strict=True)]
Probability = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False, strict=True)]
Width = Annotated[StrictInt, Field(ge=1, le=65536)]
#: A loss term's weight: beyond 1e6 a float32 loss overflows to inf within a few steps.
LossWeight = Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False, strict=True)]


#: How a key lives across a run (:data:`LIFE`): ``derived`` is set by RecBole or our ``Config``
#: from other keys (a user may not set it); ``rebuilt`` is the user's value, re-derived at every
#: build (a checkpoint does not record it); ``launch`` describes the process layout of one start;
#: ``resumable`` may change when a run resumes (where and how it runs, how long, what the test
#: adds). Every other key is fixed for the life of a run.
DERIVED, REBUILT, LAUNCH, RESUMABLE = "derived", "rebuilt", "launch", "resumable"
LIFE = {
    **dict.fromkeys(("MODEL_TYPE", "MODEL_INPUT_TYPE", "eval_type", "device", "single_spec", "valid_metric_bigger"),
                    DERIVED),
    **dict.fromkeys(("train_neg_sample_args", "valid_neg_sample_args", "test_neg_sample_args", "config_files"), REBUILT),
    **dict.fromkeys(("nproc", "world_size", "ip", "port", "offset", "local_rank"), LAUNCH),
    **dict.fromkeys((
        "epochs", "show_progress", "eval_batch_size", "checkpoint_dir", "gpu_id", "use_gpu", "worker", "state",
        "launch_timeout", "log_wandb", "wandb_project", "data_path", "strict_keys", "save_dataset",
        "dataset_save_path", "save_dataloaders", "dataloaders_save_path", "metric_decimal_place",
        "tta", "tta_views", "tta_output_views", "tta_noise", "tta_mask_rate", "tta_keep_original",
    ), RESUMABLE),
}
#: RecBole keys that its YAML files do not declare (read by ``run``/``run_recboles``, logging).
UNDECLARED = ("nproc", "world_size", "ip", "port", "offset", "local_rank", "wandb_project", "config_files")


def living(life):
    """The keys of ``life`` (``derived``, ``rebuilt``, ``launch`` or ``resumable``)."""
    return frozenset(key for key, kind in LIFE.items() if kind == life)


def choice(options):
    return Literal[tuple(options)]


@dataclasses.dataclass(frozen=True)
class Key:
    name: str
    type: Any
    scope: str
    meaning: str
    #: The ``augmentation`` values under which the key acts (empty: it always does); given under
    #: any other, it is refused as having no effect.
    methods: tuple = ()

    @property
    def adapter(self):
        return _adapter(self.type)

    def accepts(self, value):
        try:
            self.adapter.validate_python(value, strict=True)
        except ValidationError:
            return False
        return True

    def expectation(self):
        """What the key takes, in words: ``an integer >= 0``, ``one of prefix, sequence``."""
        return describe(self.adapter.json_schema())


_ADAPTERS = {}


def _adapter(annotation):
    key = repr(annotation)
    if key not in _ADAPTERS:
        _ADAPTERS[key] = TypeAdapter(annotation)
    return _ADAPTERS[key]


def describe(schema):
    """A JSON schema of pydantic's, in words."""
    if "anyOf" in schema:
        parts = [describe(s) for s in schema["anyOf"]]
        return " or ".join(dict.fromkeys(parts))
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return "~ (none)"
    if kind == "boolean":
        return "True or False"
    if kind == "string":
        return "a string"
    if kind == "array":
        item = describe(schema.get("items", {})).replace("an integer", "integers").replace("a number", "numbers")
        size = schema.get("minItems"), schema.get("maxItems")
        if size[0] is not None and size[0] == size[1]:
            return f"a list of {size[0]} {item}"
        return f"a list of {item}"
    word = {"integer": "an integer", "number": "a number"}.get(kind, "a value")
    low = (">", schema["exclusiveMinimum"]) if "exclusiveMinimum" in schema else (">=", schema.get("minimum"))
    high = ("<", schema["exclusiveMaximum"]) if "exclusiveMaximum" in schema else ("<=", schema.get("maximum"))
    if low[1] is not None and low[1] == high[1] and low[0] == ">=" and high[0] == "<=":
        return str(low[1])
    if low[1] is not None and high[1] is not None:
        left = "(" if low[0] == ">" else "["
        right = ")" if high[0] == "<" else "]"
        return f"{word} in {left}{low[1]}, {high[1]}{right}"
    if low[1] is not None:
        return f"{word} {low[0]} {low[1]}"
    if high[1] is not None:
        return f"{word} {high[0]} {high[1]}"
    return word


KEYS = (
    # BASRec itself.
    Key("basrec", StrictBool, BASREC, "False trains the plain backbone through the same pipeline."),
    Key("augmentation", choice(AUGMENTATIONS), BASREC,
        "The training augmentation of stage 2: basrec, none (plain), the heuristic baselines ran, ran_s, "
        "slide_window, cmr, cmrsi, or cl4srec (docs/augmentation-methods.md). basrec=False means none."),
    Key("train_mode", choice(TRAIN_MODES), BASREC,
        "'sequence': a loss at every position, each user once per epoch (the paper); "
        "'prefix': one sample per prefix (RecBole's data)."),
    Key("sequence_windows", choice(SEQUENCE_WINDOWS), BASREC,
        "train_mode=sequence: 'last' trains each user's last MAX_ITEM_LIST_LENGTH training items only "
        "(the authors' code); 'all' cuts long histories into windows."),
    Key("n_pairs", Annotated[StrictInt, Field(ge=0, le=50)], BASREC, "Pairs of single-sequence augmented views per sequence (2 * n_pairs views).", methods=ONLY_BASREC),
    Key("n_whole_level", Annotated[StrictInt, Field(ge=0, le=50)], BASREC, "Rounds of item-wise and of feature-wise cross-sequence mixup.", methods=ONLY_BASREC),
    Key("beta", Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)], BASREC,
        "Beta(beta, beta) for every mixing coefficient.", methods=ONLY_BASREC),
    Key("rate_min", Rate, BASREC, "Lower bound of the M-Reorder / M-Substitute rate.", methods=ONLY_BASREC),
    Key("rate_max", Rate, BASREC, "Upper bound of the M-Reorder / M-Substitute rate (>= rate_min).", methods=ONLY_BASREC),
    Key("rec_weight", LossWeight, BASREC, "Weight of the plain recommendation loss.", methods=ONLY_BASREC),
    Key("aml_weight", LossWeight, BASREC, "Weight of the single-sequence augmentation losses.", methods=ONLY_BASREC),
    Key("wml_weight", LossWeight, BASREC, "Weight of the cross-sequence augmentation losses.", methods=ONLY_BASREC),
    Key("similarity_model", choice(SIMILARITY_MODELS), BASREC, "M-Substitute neighbours: the most similar item by this measure.", methods=WITH_NEIGHBOURS),
    Key("similarity_source", choice(SIMILARITY_SOURCES), BASREC,
        "'inputs': similarity from each user's training inputs (the authors' items[:-3]); 'train': all training items.", methods=WITH_NEIGHBOURS),
    Key("align", choice(ALIGNS), BASREC,
        "'recent': the authors' left-padded layout (positions count back from the most recent item); "
        "'first': RecBole's layout."),
    Key("ssa_weighting", choice(SSA_WEIGHTINGS), BASREC,
        "'batch': each view's loss = (sum of w' over the batch) x mean loss (the authors' code); "
        "'sequence': each sequence's loss times its own w' (the paper's formula).", methods=ONLY_BASREC),
    Key("csa_partner_padding", choice(CSA_PARTNER_PADDINGS), BASREC,
        "What CSA mixes in where a partner sequence has padding: 'encoder': the encoder's output there "
        "(the authors' code; needs the un-augmented pass at full width); 'zero': zeros, so that pass skips "
        "padding like the others (faster on short sequences; not bit-equal to 'encoder').", methods=ONLY_BASREC),
    Key("ce_logits_mib", Count, BASREC,
        "With loss_type CE: the largest block of (slots x items) logits held at once, MiB; the exact "
        "log-sum-exp is taken block by block and recomputed in backward. 0: all at once (autograd keeps them)."),
    Key("reorder_keep_last", StrictBool, BASREC, "M-Reorder's window never includes the most recent input item (the authors' code).", methods=ONLY_BASREC),
    # The comparison methods (augmentation other than basrec).
    Key("aug_views", Annotated[StrictInt, Field(ge=1, le=50)], BASREC, "Heuristic methods: augmented copies of each training sequence per step.", methods=HEURISTIC),
    Key("aug_weight", LossWeight, BASREC, "Heuristic methods: weight of the copies' summed recommendation loss.", methods=HEURISTIC),
    Key("crop_rate", Rate, BASREC, "Crop (cmr, cmrsi, cl4srec): share of the sequence kept, as one contiguous window.", methods=WITH_CMR_OPERATORS),
    Key("mask_rate", Probability, BASREC,
        "Mask (cmr, cmrsi, cl4srec): share of the items read as the mask token.", methods=WITH_CMR_OPERATORS),
    Key("reorder_rate", Rate, BASREC, "Reorder (cmr, cmrsi, cl4srec): share of the sequence shuffled, as one contiguous window.", methods=WITH_CMR_OPERATORS),
    Key("substitute_rate", Rate, BASREC, "Substitute (cmrsi): share of the items replaced by their most similar item.", methods=('cmrsi',)),
    Key("insert_rate", Rate, BASREC,
        "Insert (ran, ran_s, cmrsi): share of the items that get an item inserted before them (random for ran, "
        "the most similar one for ran_s and cmrsi).", methods=('ran', 'ran_s', 'cmrsi')),
    Key("slide_window_length", Annotated[StrictInt, Field(ge=2)], BASREC,
        "slide_window: length of the random contiguous sub-sequence (inputs and target) each copy keeps.", methods=('slide_window',)),
    Key("cl_weight", LossWeight, BASREC, "cl4srec: weight of the contrastive (InfoNCE) loss.", methods=('cl4srec',)),
    Key("cl_temperature", Annotated[float, Field(ge=1e-4, le=1e4, allow_inf_nan=False, strict=True)], BASREC,
        "cl4srec: InfoNCE temperature.", methods=('cl4srec',)),
    Key("cl_similarity", choice(CL_SIMILARITIES), BASREC, "cl4srec: similarity of two representations, dot or cos.", methods=('cl4srec',)),
    Key("cl_operators", Annotated[list[choice(CL_OPERATORS)], Field(min_length=1)], BASREC,
        "cl4srec: operators each view draws one of, uniformly (crop, mask, reorder).", methods=('cl4srec',)),
    Key("stage1_epochs", Count, BASREC,
        "Stage 1: epochs of plain training (early stopped, best weights kept) before stage 2 (BASRec, or plain "
        "training continued with basrec=False); 0: a single stage from random weights."),
    Key("stage1_stopping_step", Positive, BASREC,
        "Stage 1's early stopping: after stage1_stopping_step + 1 validations without improvement."),
    Key("pretrained_path", Optional[StrictStr], BASREC, "Stage-1 checkpoint (ours or the authors') to start BASRec from; skips stage 1."),
    Key("loss_type", choice(LOSS_TYPES), BASREC,
        "'BCE' and 'BPR' sample one negative per target; 'CE' scores every item."),
    # Evaluation and test-time augmentation, for every model of ours.
    Key("eval_mask_history", StrictBool, OURS,
        "Exclude every item the user had before the target from the ranking (the paper's protocol); "
        "False: RecBole's convention for sequential models."),
    Key("exact_valid_score", StrictBool, OURS,
        "Compare validation scores unrounded for early stopping (the authors' code); False rounds them first (RecBole)."),
    Key("valid_start_epoch", Count, OURS, "First epoch (0-based, per stage) that is validated."),
    Key("keep_last_interactions", Union[Annotated[StrictInt, Field(ge=0, le=0)], Annotated[StrictInt, Field(ge=3)]], OURS,
        "Keep only each user's last K interactions (by time) before the split, with a warning naming how "
        "many were dropped: a sparser view of a dense dataset; 0 keeps all."),
    Key("tta", choice(TTA_MODES), OURS, "Test-time augmentation (TTA4SR) at test only: none, tnoise or tmask."),
    Key("tta_views", Annotated[StrictInt, Field(ge=1, le=1000)], OURS,
        "Augmented input copies per test sequence (each costs one more scoring pass)."),
    Key("tta_output_views", Annotated[StrictInt, Field(ge=0, le=1000)], OURS,
        "TNoise: further copies with the noise on the output representation."),
    Key("tta_noise", Annotated[list[Annotated[float, Field(ge=-100, le=100, allow_inf_nan=False, strict=True)]],
                               Field(min_length=2, max_length=2)], OURS,
        "TNoise: noise drawn from U(low, high), written [low, high] with low <= high; beyond +-100 it is "
        "refused as a typo."),
    Key("tta_mask_rate", Probability, OURS,
        "TMask: share of the input items removed."),
    Key("tta_keep_original", StrictBool, OURS, "Average the original input's scores in too (the authors' code: False)."),
    Key("launch_timeout", Positive, OURS,
        "Several processes: seconds each waits for all of them to join (saying every 10 s how many have) "
        "before it stops with one line."),
    Key("show_config", StrictBool, OURS,
        "Show RecBole's configuration, dataset and model dump on the console too (the log file always has it)."),
    Key("strict_keys", StrictBool, OURS,
        "Refuse keys that neither recbole-basrec nor RecBole knows; False accepts them with a warning "
        "(for keys of your own models)."),
    # FMLP-Rec.
    Key("filter_causal", StrictBool, FMLPREC,
        "Causal filter (required for train_mode=sequence); False is the paper's circular filter, which sees future items."),
    # RecBole's own keys that our pipeline relies on.
    Key("epochs", Count, RECBOLE, "Training epochs of stage 2 (or of the only stage); 0 only evaluates pretrained_path."),
    Key("learning_rate", Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)], RECBOLE, "Adam's learning rate."),
    Key("weight_decay", NonNegative, RECBOLE, "L2 weight decay of the optimizer."),
    Key("train_batch_size", Positive, RECBOLE, "Training sequences per step; with several processes the global batch, split over them."),
    Key("eval_batch_size", Positive, RECBOLE, "Evaluation rows per batch."),
    Key("seed", Annotated[StrictInt, Field(ge=0, lt=2 ** 32)], RECBOLE, "Random seed of everything."),
    Key("MAX_ITEM_LIST_LENGTH", Annotated[StrictInt, Field(ge=2)], RECBOLE, "Input sequence length L."),
    Key("stopping_step", Positive, RECBOLE, "Early stopping after stopping_step + 1 validations without improvement."),
    Key("eval_step", Count, RECBOLE, "Validate every eval_step epochs; 0 never validates."),
    Key("topk", Union[Positive, Annotated[list[Positive], Field(min_length=1)]], RECBOLE, "Cut-offs of the ranking metrics."),
    Key("metrics", Union[StrictStr, Annotated[list[StrictStr], Field(min_length=1)]], RECBOLE,
        "Ranking metrics computed at every cut-off (RecBole's names, e.g. Hit, NDCG, MRR, Recall)."),
    Key("valid_metric", StrictStr, RECBOLE, "The metric that selects the best epoch, written name@k with name in metrics and k in topk."),
    Key("checkpoint_dir", StrictStr, RECBOLE, "Folder for checkpoints and the similarity cache (created if missing)."),
    Key("show_progress", StrictBool, RECBOLE, "Progress bars for every batch."),
    Key("reproducibility", StrictBool, RECBOLE, "Deterministic kernels (cudnn)."),
    Key("use_gpu", StrictBool, RECBOLE, "Use a GPU when one is present."),
    Key("log_wandb", StrictBool, RECBOLE, "Log to Weights & Biases (needs wandb installed)."),
    Key("nproc", Optional[Positive], RECBOLE, "Processes of one machine for distributed training (~: one); set by the launcher (--nproc, run(nproc=), torchrun)."),
    # The backbones' own keys.
    Key("n_layers", Annotated[StrictInt, Field(ge=1, le=64)], BACKBONE, "Encoder layers (SASRec, BERT4Rec, FMLP-Rec, ...)."),
    Key("num_layers", Annotated[StrictInt, Field(ge=1, le=64)], BACKBONE, "Recurrent layers (GRU4Rec, NARM, ...)."),
    Key("selected_features", Union[StrictStr, Annotated[list[StrictStr], Field(min_length=1)]], BACKBONE,
        "Item features the feature-aware models read (SASRecF, FDSA, GRU4RecF, ...)."),
    Key("worker", Annotated[StrictInt, Field(ge=0, le=64)], RECBOLE, "Data-loading worker processes (0: the main process)."),
    Key("n_heads", Annotated[StrictInt, Field(ge=1, le=1024)], BACKBONE, "Attention heads; must divide hidden_size."),
    Key("hidden_size", Width, BACKBONE, "Width of the encoder's representations."),
    Key("inner_size", Width, BACKBONE, "Width of the feed-forward layers."),
    Key("embedding_size", Width, BACKBONE, "Width of the item embeddings (GRU4Rec, NARM, ...)."),
    Key("hidden_dropout_prob", Probability, BACKBONE, "Dropout probability of hidden states."),
    Key("attn_dropout_prob", Probability, BACKBONE, "Dropout probability of attention weights."),
    Key("dropout_prob", Probability, BACKBONE, "Dropout probability (GRU4Rec, NARM, ...)."),
    Key("dropout_probs", Annotated[list[Probability], Field(min_length=2, max_length=2)], BACKBONE,
        "NARM: dropout probabilities of the embedding and of the session representation."),
    Key("mask_ratio", Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False, strict=True)], BACKBONE,
        "BERT4Rec: share of the items masked for its cloze task (0 would train nothing, 1 leaves nothing to read)."),
    Key("step", Annotated[StrictInt, Field(ge=1, le=64)], BACKBONE, "SR-GNN / GC-SAN: propagation steps of the session graph."),
    Key("hidden_act", choice(("gelu", "relu", "swish", "tanh", "sigmoid")), BACKBONE,
        "Activation of the feed-forward layers (RecBole's names)."),
    Key("initializer_range", Annotated[float, Field(gt=0, le=10, allow_inf_nan=False, strict=True)], BACKBONE,
        "Standard deviation of the initial weights."),
    Key("ft_ratio", Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, strict=True)], BACKBONE,
        "BERT4Rec: share of training sequences whose last item is masked (fine-tuning)."),
    Key("layer_norm_eps", Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False, strict=True)], BACKBONE,
        "LayerNorm's epsilon."),
)

BY_NAME = {key.name: key for key in KEYS}
assert len(BY_NAME) == len(KEYS), "a key is declared twice"


def keys_for(model_name):
    """The declared keys that apply to ``model_name`` (one of ours)."""
    from recbole_basrec.config.models import backbone_of, is_basrec

    scopes = {OURS, RECBOLE, BACKBONE}
    if is_basrec(model_name):
        scopes.add(BASREC)
    if backbone_of(model_name) == "FMLPRec":
        scopes.add(FMLPREC)
    return [key for key in KEYS if key.scope in scopes]


def check(name, value):
    """Raise a one-line ValueError unless ``value`` is what declared key ``name`` takes."""
    key = BY_NAME[name]
    if not key.accepts(value):
        raise ValueError(f"{name} must be {key.expectation()}, got {value!r}.")


#: The largest and the smallest normal float32: the model computes in float32, where a larger
#: number overflows and a smaller one is (about) 0.
FLOAT32_MAX, FLOAT32_TINY = 3.4028234663852886e38, 1.1754943508222875e-38


def outside_float32(value, path=""):
    """The first NaN, infinite or beyond-float32 number inside ``value`` (nested lists and dicts;
    beyond: larger than float32 holds, or nonzero and smaller), as ``(path, number)``, or None."""
    if isinstance(value, float) and (not math.isfinite(value) or abs(value) > FLOAT32_MAX
                                     or 0 < abs(value) < FLOAT32_TINY):
        return path, value
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = outside_float32(item, f"{path}[{i}]")
            if found:
                return found
    if isinstance(value, dict):
        for k, item in value.items():
            found = outside_float32(item, f"{path}.{k}" if path else str(k))
            if found:
                return found
    return None
