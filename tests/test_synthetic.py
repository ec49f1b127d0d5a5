"""The synthetic data of the scale job and the authors'-argument reader of the reference job."""
import numpy as np

from benchmarks.reference import _authors_parser
from benchmarks.synthetic import write_synthetic


def test_synthetic_file_has_the_requested_size_power_law_popularity_and_ordered_sequences(tmp_path):
    info = write_synthetic(str(tmp_path), "syn", n_users=2000, n_interactions=40000, n_items=3000, seed=3)
    rows = np.loadtxt(info["path"], skiprows=1, dtype=np.int64)
    assert abs(len(rows) - 40000) <= 400 and len(rows) == info["interactions"]
    users, items, stamps = rows.T
    lengths = np.bincount(users)[1:]
    assert lengths.min() >= 5 and lengths.max() <= 500 and len(lengths) == 2000
    assert items.min() >= 1 and items.max() <= 3000
    counts = np.sort(np.bincount(items))[::-1]
    assert counts[:30].sum() > 10 * counts[-300:].sum()  # head items dominate the tail
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    assert (stamps[starts] == 0).all() and (np.diff(stamps)[np.diff(users) == 0] == 1).all()
    again = write_synthetic(str(tmp_path / "b"), "syn", 2000, 40000, 3000, seed=3)
    assert open(again["path"]).read() == open(info["path"]).read()


def test_authors_arguments_are_read_without_running_their_script(tmp_path):
    script = tmp_path / "main.py"
    script.write_text(
        "import argparse\n"
        "def main():\n"
        "    parser = argparse.ArgumentParser()\n"
        "    parser.add_argument('--beta', type=float, default=0.3)\n"
        "    parser.add_argument('--load_pretrain', action='store_true')\n"
        "    parser.add_argument('--n_pairs', default=1, type=int)\n"
        "    raise SystemExit('the script ran')\n"
        "main()\n"
    )
    args = _authors_parser(str(script)).parse_args(["--beta=0.4", "--load_pretrain"])
    assert (args.beta, args.load_pretrain, args.n_pairs) == (0.4, True, 1)


def test_synthetic_blocks_do_not_change_the_data(tmp_path):
    from benchmarks.synthetic import _ranks

    whole = write_synthetic(str(tmp_path / "a"), "syn", 300, 3000, 200, seed=1, block=1 << 20)
    pieces = write_synthetic(str(tmp_path / "b"), "syn", 300, 3000, 200, seed=1, block=7)
    assert open(whole["path"]).read() == open(pieces["path"]).read() and whole == {**pieces, "path": whole["path"]}
    one = _ranks(1000, 50, np.random.default_rng(2), block=1 << 20)
    assert np.array_equal(one, _ranks(1000, 50, np.random.default_rng(2), block=13))
