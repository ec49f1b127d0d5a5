"""Memory a run needs and keeps: the activation estimate checked before the first batch, and
glibc told to keep freed tensor memory for the next step."""
import torch


def keep_freed_memory():
    """Let glibc keep freed tensor memory in the process for the next training step.

    By default glibc serves blocks above 128 KiB with fresh ``mmap``s and hands them back on
    free (and trims its heap), so every step faults its large tensors in again page by page.
    Here blocks up to 32 MiB come from the heap and up to 1 GiB of freed heap stays mapped.
    Returns False where the C library is not glibc (nothing is changed there)."""
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


def activation_bytes(config, train_rows, eval_rows, views=1):
    """A lower bound of the largest activations of one step, in bytes: the attention scores
    ``rows x heads x L x L`` of every layer (kept for backward in training, one layer at a time in
    evaluation) and ``rows x L x width`` per layer; ``views`` multiplies the training rows (BASRec's
    and the other methods' extra copies)."""
    length = int(config["MAX_ITEM_LIST_LENGTH"])
    width = _model_size(config, ("hidden_size", "embedding_size"), absent=64)
    heads = _model_size(config, ("n_heads",), absent=0)
    layers = _model_size(config, ("n_layers", "num_layers"), absent=1)
    per_row = heads * length * length * 2 + length * width * 4  # scores and softmax; inputs, FFN
    return 4 * max(train_rows * views * per_row * layers, eval_rows * per_row)


def _model_size(config, keys, absent):
    """The first of ``keys`` the configuration sets (``None``: not set): backbones name their sizes
    differently (SASRec ``hidden_size``, NARM ``embedding_size``, GRU4Rec ``num_layers``, ...)."""
    for key in keys:
        if config[key] is not None:
            return int(config[key])
    return absent


def available_bytes(device):
    """Memory a run can still take on ``device``: free GPU memory, or the kernel's MemAvailable."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_activation_memory(config, model, train_rows, eval_rows):
    """Refuse, before the first batch, a sequence length and batch whose activations cannot fit."""
    views = 1
    method = getattr(model, "augmentation", "none")
    if method == "basrec":
        views = 1 + 2 * model.n_pairs
    elif method == "cl4srec":
        views = 3
    elif method != "none":
        views = 1 + model.aug_views
    needed = activation_bytes(config, train_rows, eval_rows, views)
    free = available_bytes(config["device"])
    if free is not None and needed > free:
        raise ValueError(
            f"MAX_ITEM_LIST_LENGTH={config['MAX_ITEM_LIST_LENGTH']} with batches of {train_rows} (training) and "
            f"{eval_rows} (evaluation) rows needs at least {needed / 2**30:.1f} GiB of activations, more than the "
            f"{free / 2**30:.1f} GiB available on {config['device']}: lower MAX_ITEM_LIST_LENGTH, train_batch_size "
            "or eval_batch_size.")
