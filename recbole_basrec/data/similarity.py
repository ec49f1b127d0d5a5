"""Top-1 item-neighbour tables for BASRec's M-Substitute operator.

M-Substitute replaces an item by its most similar *other* item. Because only the top-1
neighbour is ever used, the whole similarity model collapses into one integer per item, and
substitution during training becomes a gather (``table[seq]``) instead of a search.

Similarities (Dang et al., AAAI 2025; built from the *training part* of every sequence only):

- ``ItemCF_IUF``: ``sim(i, j) = sum_{u has i and j} 1 / log(1 + |S_u|) / sqrt(N_i * N_j)``
- ``ItemCF``:     ``sim(i, j) = |{u has i and j}| / sqrt(N_i * N_j)``
- ``Random``:     no similarity, every item gets a uniformly random other item.

``N_i`` is the number of users having item ``i`` (a user counts once per item) and ``|S_u|``
the length of ``u``'s training sequence counting repeats.

With ``X`` the binary user x item matrix and ``W`` the diagonal of per-user weights, the
co-occurrence matrix is ``C = X^T W X``. It is computed a block of item columns of ``X`` at a
time (i.e. a block of rows of the symmetric ``C``), so memory stays bounded even for
million-item catalogues; a dense items x items matrix is never formed.

Tie rule: among neighbours whose similarity equals the row maximum (up to a relative
tolerance of ``1e-12``, so that floating-point summation order cannot flip a tie), the
smallest item id wins. Items without any co-occurring neighbour get a uniformly random item
``!= i`` from ``1..n_items-1``, drawn with ``np.random.default_rng(seed)``.
"""

import hashlib
import os
import tempfile

import numpy as np
import scipy.sparse as sp
import torch

from recbole_basrec.config.schema import SIMILARITY_MODELS

METHODS = SIMILARITY_MODELS

# Relative tolerance under which two similarities of one row count as a tie.
_TIE_RTOL = 1e-12
# Default work budget of one block: the number of (user, item) products the block's sparse
# matmul may touch. Bounds the size of the intermediate sparse result.
_BLOCK_WORK = 20_000_000

# In-process cache of built tables: key -> np.ndarray (never handed out directly).
_TOP1_CACHE = {}


# ----------------------------------------------------------------------------- validation
def _validate(user_ptr, items, n_items, method):
    """Return ``(user_ptr, items)`` as contiguous int64 arrays, or raise a one-line ValueError."""
    if method not in METHODS:
        raise ValueError(f"unknown similarity method {method!r}; valid methods: {', '.join(METHODS)}")
    n_items = int(n_items)
    if n_items - 1 < 2:
        raise ValueError(
            f"n_items={n_items} leaves fewer than 2 real items (id 0 is padding); "
            "a top-1 neighbour table needs at least 2"
        )
    user_ptr = np.ascontiguousarray(np.asarray(user_ptr), dtype=np.int64)
    items = np.ascontiguousarray(np.asarray(items), dtype=np.int64)
    if user_ptr.ndim != 1 or user_ptr.size < 1:
        raise ValueError(f"user_ptr must be a 1-D array of length n_users + 1, got shape {user_ptr.shape}")
    if items.ndim != 1:
        raise ValueError(f"items must be a 1-D array, got shape {items.shape}")
    if user_ptr[0] != 0 or user_ptr[-1] != items.size:
        raise ValueError(
            f"user_ptr must start at 0 and end at len(items)={items.size}, "
            f"got {user_ptr[0]} .. {user_ptr[-1]}"
        )
    if np.any(np.diff(user_ptr) < 0):
        raise ValueError("user_ptr must be non-decreasing")
    if items.size and (items.min() < 1 or items.max() >= n_items):
        raise ValueError(
            f"item ids must lie in 1..{n_items - 1} (0 is padding), "
            f"got values in {items.min()}..{items.max()}"
        )
    return user_ptr, items, n_items


# ----------------------------------------------------------------------------- similarity
def _weighted_factors(user_ptr, items, n_items, method):
    """Build ``X^T W`` (items x users, CSR), ``X`` (users x items, CSR) and ``N`` (users per item)."""
    n_users = user_ptr.size - 1
    seq_len = np.diff(user_ptr)
    rows = np.repeat(np.arange(n_users, dtype=np.int64), seq_len)
    x = sp.csr_matrix((np.ones(items.size), (rows, items)), shape=(n_users, n_items))
    x.sum_duplicates()
    x.data[:] = 1.0  # binary: repeats of an item inside one sequence count once
    if method == "ItemCF_IUF":
        # Inverse user frequency: long (power-user) sequences say less about each pair.
        # Empty sequences own no entries, so their weight is irrelevant; keep it finite.
        weight = np.where(seq_len > 0, 1.0 / np.log1p(np.maximum(seq_len, 1)), 0.0)
    else:
        weight = np.ones(n_users)
    xt_w = sp.csr_matrix(x.T.multiply(weight[None, :]))
    n_users_per_item = np.diff(x.tocsc().indptr).astype(np.float64)
    return xt_w, x, n_users_per_item


def _block_bounds(x, n_items, block_size):
    """Row ranges ``[(start, stop), ...]`` of ``C`` to compute at once.

    A fixed ``block_size`` gives equal blocks. Otherwise blocks adapt to the data: the work of
    row ``i`` is ``sum_{u has i} |X_u|``, and a block is closed once it reaches ``_BLOCK_WORK``.
    """
    if block_size is not None:
        block_size = int(block_size)
        if block_size < 1:
            raise ValueError(f"block_size must be a positive integer, got {block_size}")
        starts = np.arange(0, n_items, block_size)
        return [(int(s), int(min(s + block_size, n_items))) for s in starts]
    user_nnz = np.diff(x.indptr).astype(np.float64)
    work = np.cumsum(x.T @ user_nnz)
    bounds, start = [], 0
    while start < n_items:
        base = work[start - 1] if start else 0.0
        # the first row whose cumulative work exceeds the budget closes the block (>= 1 row)
        stop = int(np.searchsorted(work, base + _BLOCK_WORK, side="right"))
        stop = min(max(stop, start + 1), n_items)
        bounds.append((start, stop))
        start = stop
    return bounds


def _similarity_blocks(user_ptr, items, n_items, method, block_size=None):
    """Yield ``(start, S_block)``: rows ``start..start+len`` of the similarity matrix, CSR.

    The diagonal is removed and stored values are the exact similarities of the definition.
    """
    xt_w, x, n_per_item = _weighted_factors(user_ptr, items, n_items, method)
    for start, stop in _block_bounds(x, n_items, block_size):
        block = (xt_w[start:stop] @ x).tocsr()  # rows start..stop of C = X^T W X
        block.sum_duplicates()
        row = np.repeat(np.arange(start, stop, dtype=np.int64), np.diff(block.indptr))
        col = block.indices.astype(np.int64)
        keep = col != row  # an item is never its own neighbour
        data = block.data[keep] / np.sqrt(n_per_item[row[keep]] * n_per_item[col[keep]])
        sim = sp.csr_matrix((data, (row[keep] - start, col[keep])), shape=(stop - start, n_items))
        yield start, sim


def _similarity_matrix(user_ptr, items, n_items, method="ItemCF_IUF", block_size=None):
    """Full sparse item x item similarity matrix (diagonal excluded). For tests and inspection."""
    user_ptr, items, n_items = _validate(user_ptr, items, n_items, method)
    if method == "Random":
        raise ValueError("the Random method has no similarity matrix")
    blocks = [sim for _, sim in _similarity_blocks(user_ptr, items, n_items, method, block_size)]
    return sp.vstack(blocks, format="csr")


def _row_top1(sim):
    """Top-1 column of each row of CSR ``sim`` (``-1`` for rows without a positive entry).

    Vectorised over the CSR layout: row maxima by ``np.maximum.reduceat``, then the smallest
    column among the entries tied with the maximum by ``np.minimum.reduceat``.
    """
    n_rows = sim.shape[0]
    best = np.full(n_rows, -1, dtype=np.int64)
    nnz_per_row = np.diff(sim.indptr)
    filled = np.flatnonzero(nnz_per_row > 0)
    if filled.size == 0:
        return best
    # Segments start at non-empty rows only; the empty rows in between add no entries, so each
    # segment ends exactly where its row ends.
    starts = sim.indptr[:-1][filled]
    row_max = np.maximum.reduceat(sim.data, starts)
    row_of_entry = np.repeat(np.arange(n_rows), nnz_per_row)
    tied = sim.data >= row_max[np.searchsorted(filled, row_of_entry)] * (1.0 - _TIE_RTOL)
    candidate = np.where(tied, sim.indices.astype(np.int64), np.iinfo(np.int64).max)
    top = np.minimum.reduceat(candidate, starts)
    best[filled] = np.where(row_max > 0, top, -1)
    return best


# ----------------------------------------------------------------------------- public API
def top1_neighbours(user_ptr, items, n_items, method="ItemCF_IUF", seed=0, block_size=None):
    """Most similar other item for every item id.

    Args:
        user_ptr (array of int64): CSR row pointer, length ``n_users + 1``; user ``u``'s training
            sequence is ``items[user_ptr[u]:user_ptr[u + 1]]`` (time order, repeats allowed).
        items (array of int64): concatenated sequences, ids in ``1..n_items-1``.
        n_items (int): size of the item id space including the padding id 0.
        method (str): ``'ItemCF_IUF'`` (default), ``'ItemCF'`` or ``'Random'``.
        seed (int): seed of the random fallback for items without a co-occurring neighbour.
        block_size (int or None): rows of the similarity matrix computed at once; ``None``
            picks blocks from a fixed work budget.

    Returns:
        np.ndarray: int64 table ``t`` of length ``n_items`` with ``t[0] == 0`` and, for
        ``i >= 1``, ``t[i]`` in ``1..n_items-1`` and ``t[i] != i``.
    """
    user_ptr, items, n_items = _validate(user_ptr, items, n_items, method)
    table = np.full(n_items, -1, dtype=np.int64)
    if method != "Random":
        for start, sim in _similarity_blocks(user_ptr, items, n_items, method, block_size):
            table[start:start + sim.shape[0]] = _row_top1(sim)
    table[0] = 0  # padding maps to padding

    # Random fallback: uniform over 1..n_items-1 without i, by drawing from n_items-2 values
    # and shifting those >= i up by one.
    lonely = np.flatnonzero(table < 0)
    rng = np.random.default_rng(seed)
    draw = rng.integers(1, n_items - 1, size=lonely.size, dtype=np.int64)
    table[lonely] = draw + (draw >= lonely)
    return table


def _cache_key(user_ptr, items, n_items, method, seed):
    digest = hashlib.sha1()
    digest.update(f"{method}|{int(n_items)}|{int(seed)}|".encode())
    digest.update(b"ptr:" + user_ptr.tobytes())
    digest.update(b"items:" + items.tobytes())
    return digest.hexdigest()


def _valid_table(table, n_items):
    """Whether a table read back from disk is usable (guards against corrupt/stale files)."""
    if not isinstance(table, np.ndarray) or table.dtype != np.int64 or table.shape != (n_items,):
        return False
    rest = table[1:]
    ids = np.arange(1, n_items)
    return bool(table[0] == 0 and np.all((rest >= 1) & (rest < n_items) & (rest != ids)))


def _load_table(path, n_items):
    try:
        table = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return table if _valid_table(table, n_items) else None


def _save_table(path, table):
    # Write to a temporary file and rename, so a concurrent reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, table, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_or_build_top1(user_ptr, items, n_items, method="ItemCF_IUF", seed=0, cache_dir=None):
    """:func:`top1_neighbours` as a ``torch.LongTensor``, cached in-process and optionally on disk.

    The cache key is a sha1 of ``method``, ``n_items``, ``seed`` and the bytes of both arrays.
    With ``cache_dir`` the table is stored as ``<cache_dir>/basrec-top1-<method>-<hash16>.npy``;
    a file that cannot be read or has the wrong shape/dtype/content is rebuilt and overwritten.
    """
    user_ptr, items, n_items = _validate(user_ptr, items, n_items, method)
    key = _cache_key(user_ptr, items, n_items, method, seed)
    table = _TOP1_CACHE.get(key)
    path, on_disk = None, None
    if cache_dir is not None:
        os.makedirs(cache_dir, exist_ok=True)
        path = os.path.join(cache_dir, f"basrec-top1-{method}-{key[:16]}.npy")
        if os.path.exists(path):
            on_disk = _load_table(path, n_items)
        if table is None:
            table = on_disk
    if table is None:
        table = top1_neighbours(user_ptr, items, n_items, method=method, seed=seed)
    if path is not None and on_disk is None:
        _save_table(path, table)
    _TOP1_CACHE[key] = table
    # Hand out a copy: callers may move or modify the tensor, the cache must stay intact.
    return torch.from_numpy(table.copy())


def clear_top1_cache():
    """Forget every table cached in this process (the disk cache is left alone)."""
    _TOP1_CACHE.clear()
