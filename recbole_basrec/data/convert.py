"""Convert the BASRec reference data format into RecBole atomic files.

The reference data (``Beauty.txt``, ``Sports_and_Outdoors.txt``, ...) has one line per user::

    user_id item_id item_id ...

with positive integer ids and items in time order; the last item is the test target and the
second last the validation target. This module writes ``DEST_DIR/NAME/NAME.inter``::

    user_id:token   item_id:token   timestamp:float

one row per interaction, with ``timestamp`` = the item's position in its line (0, 1, 2, ...).
RecBole's time-ordered leave-one-out split (``eval_args: {split: {'LS': 'valid_and_test'},
order: TO}``) then reproduces the reference split exactly.

Usage::

    python -m recbole_basrec.data.convert SRC.txt DEST_DIR [--name NAME]
"""

import argparse
import os
import sys

HEADER = "user_id:token\titem_id:token\ttimestamp:float"


def _parse_line(tokens, line_no):
    """Integer ids of one line; a one-line ValueError naming the line otherwise."""
    # Plain ASCII digits only: int() would also accept '+5', '1_000' or other scripts' digits.
    for token in tokens:
        if not (token.isascii() and token.isdigit()):
            raise ValueError(f"line {line_no}: {token!r} is not a positive integer id")
    ids = [int(token) for token in tokens]
    if 0 in ids:
        raise ValueError(f"line {line_no}: ids must be positive integers, got 0")
    return ids


def _lines(f, src):
    """``(line number, line)`` of a file opened in binary mode, each line decoded on its own so
    that an error names its line; a one-line error naming the file if it is not UTF-8 text."""
    for line_no, raw in enumerate(f, start=1):
        if b"\x00" in raw:
            raise ValueError(f"{src} is binary, not a text file of 'user_id item_id ...' lines")
        if line_no == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # 'UTF-8 with BOM', as utf-8-sig reads it
        try:
            yield line_no, raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{src} is not UTF-8 text (line {line_no}); give a text file of 'user_id item_id ...' "
                             "lines") from None


def convert(src, dest_dir, name=None, force=False):
    """Convert ``src`` (reference format) into ``dest_dir/name/name.inter``.

    Args:
        src (str): path of the ``user item item ...`` text file.
        dest_dir (str): RecBole ``data_path``; the dataset folder is created inside it.
        name (str or None): dataset name; defaults to the stem of ``src`` (``Beauty``).
        force (bool): replace an existing ``name.inter`` (otherwise refused).

    Returns:
        dict: ``{"users", "items", "interactions", "path"}``.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        ValueError: empty file, non-integer or non-positive id, a user without items,
            or a user id given twice.
    """
    src = os.fspath(src)
    if os.path.isdir(src):
        raise ValueError(f"{src} is a directory; give the text file of 'user_id item_id ...' lines")
    if not os.path.isfile(src):
        raise FileNotFoundError(f"source file not found: {src}")
    if name is None:
        name = os.path.splitext(os.path.basename(src))[0]
    if not name or os.sep in name or name in (".", ".."):
        raise ValueError(f"invalid dataset name {name!r}: give a plain name without '{os.sep}' (the folder and the "
                         "file are named after it), e.g. --name Beauty")

    rows = [HEADER]
    first_line_of = {}  # user id -> line number, to report duplicates
    items = set()
    short_users = []  # (user, line, length) of users too short for an exact reference split
    n_inter = 0
    path = os.path.join(os.fspath(dest_dir), name, f"{name}.inter")
    if os.path.exists(path) and not force:
        raise ValueError(f"{path} exists; give --force to replace it (or another DEST_DIR or --name)")
    with open(src, "rb") as f:
        for line_no, line in _lines(f, src):
            tokens = line.split()
            if not tokens:
                continue  # blank lines (e.g. a trailing one) carry nothing
            if line_no == 1 and ":" in tokens[0]:
                raise ValueError(f"{src} is already a RecBole atomic file (header {line.strip()[:60]!r}); give its "
                                 "folder's name and parent with --dataset and --data_path instead of converting it")
            ids = _parse_line(tokens, line_no)
            user, seq = ids[0], ids[1:]
            if not seq:
                raise ValueError(f"line {line_no}: user {user} has no items")
            if user in first_line_of:
                raise ValueError(
                    f"line {line_no}: duplicated user id {user} (first seen on line {first_line_of[user]})"
                )
            first_line_of[user] = line_no
            if len(seq) < 4:
                short_users.append((user, line_no, len(seq)))
            items.update(seq)
            n_inter += len(seq)
            # The position in the line is the timestamp: RecBole's TO ordering then keeps the
            # reference order, and the last two positions become valid and test targets.
            prefix = f"{user}\t"
            rows.extend(f"{prefix}{item}\t{t}" for t, item in enumerate(seq))
    if not first_line_of:
        raise ValueError(f"source file is empty: {src}")

    if short_users:
        # The reference needs 3 items for a train/valid/test split and 4 for a training pair.
        # RecBole's LS split leaves out at most (samples - 1) targets, so for such users it
        # moves the valid target (3 items) or the test target (2 items) into training.
        # The reference data is 5-core, so this never happens there.
        no_train = sum(1 for _, _, n in short_users if n < 3)
        user, line_no, _ = short_users[0]
        print(
            f"warning: {len(short_users)} user(s) have fewer than 4 items ({no_train} with fewer "
            f"than 3, i.e. no training item); RecBole's leave-one-out split differs from the "
            f"reference for them (first: user {user} on line {line_no})",
            file=sys.stderr,
        )

    out_dir = os.path.join(os.fspath(dest_dir), name)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"cannot write under {out_dir}: a file is in the way; choose another DEST_DIR") from None
    tmp = f"{path}.tmp-{os.getpid()}"  # written whole, then renamed: a reader never sees half a file
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(rows))
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

    stats = {"users": len(first_line_of), "items": len(items), "interactions": n_inter, "path": path}
    print(
        f"{name}: {stats['users']} users, {stats['items']} items, "
        f"{stats['interactions']} interactions -> {path}"
    )
    return stats


def main(argv=None):
    """Command-line entry point; returns the exit status (2 on bad input)."""
    parser = argparse.ArgumentParser(
        prog="python -m recbole_basrec.data.convert",
        description="Convert BASRec 'user item item ...' text data into a RecBole .inter file.",
    )
    parser.add_argument("src", help="source text file, one line per user: user_id item_id item_id ...")
    parser.add_argument("dest_dir", help="RecBole data_path; DEST_DIR/NAME/NAME.inter is written")
    parser.add_argument("--name", default=None, help="dataset name (default: the source file's stem)")
    parser.add_argument("--force", action="store_true", help="replace an existing NAME.inter")
    args = parser.parse_args(argv)
    try:
        convert(args.src, args.dest_dir, name=args.name, force=args.force)
    except (ValueError, OSError) as err:
        # OSError covers FileNotFoundError and unwritable destinations: a message, not a traceback.
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
