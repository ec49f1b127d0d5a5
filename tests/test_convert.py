"""Tests of the reference-format -> RecBole atomic file converter (``recbole_basrec.data.convert``)."""
import os
import subprocess
import sys

import pytest

from recbole_basrec.data.convert import HEADER, convert, main

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEAUTY = os.path.join(REPO_ROOT, "..", "shared", "data", "Beauty.txt")

# Every user has >= 4 items, so the reference split is reproducible; user 7 repeats item 3.
TINY_LINES = {
    3: [11, 12, 13, 14],
    7: [3, 5, 3, 9, 12, 21],
    12: [21, 11, 5, 13, 8],
    40: [8, 9, 10, 11, 12, 13, 14, 15, 16, 17],
}


def write_src(path, text):
    path.write_text(text)
    return str(path)


@pytest.fixture
def tiny_src(tmp_path):
    text = "".join(f"{u} {' '.join(map(str, seq))}\n" for u, seq in TINY_LINES.items())
    return write_src(tmp_path / "tiny.txt", text)



def _stock_sasrec_config(dataset, data_path, tmp_path):
    """Stock RecBole SASRec with the paper's leave-one-out split on converted data."""
    from recbole_basrec.utils import Config

    return Config(
        model="SASRec",
        dataset=dataset,
        config_dict={
            "data_path": data_path,
            "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
            "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
            "train_neg_sample_args": None,
            "MAX_ITEM_LIST_LENGTH": 50,
            "loss_type": "CE",
            "state": "ERROR",
            "use_gpu": False,
            "checkpoint_dir": str(tmp_path / "saved"),
        },
    )

def test_exact_inter_content(tmp_path, capsys):
    src = write_src(tmp_path / "Toy.txt", "1 5 6 7\n2 7 9 5 5\n")
    stats = convert(src, str(tmp_path / "out"))
    expected_path = str(tmp_path / "out" / "Toy" / "Toy.inter")
    assert stats == {"users": 2, "items": 4, "interactions": 7, "path": expected_path}
    with open(expected_path) as f:
        assert f.read() == (
            "user_id:token\titem_id:token\ttimestamp:float\n"
            "1\t5\t0\n1\t6\t1\n1\t7\t2\n"
            "2\t7\t0\n2\t9\t1\n2\t5\t2\n2\t5\t3\n"
        )
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and "2 users, 4 items, 7 interactions" in out
    assert "warning: 1 user(s) have fewer than 4 items" in err  # user 1 has 3 items


def test_name_option_blank_lines_and_header(tmp_path):
    src = write_src(tmp_path / "raw.txt", "\n5 1 2 3 4\n\n6  2 3\t4 1\n\n")
    stats = convert(src, str(tmp_path), name="Other")
    assert stats["path"] == str(tmp_path / "Other" / "Other.inter")
    lines = open(stats["path"]).read().splitlines()
    assert lines[0] == HEADER
    assert lines[1:] == [f"5\t{i}\t{t}" for t, i in enumerate([1, 2, 3, 4])] + [
        f"6\t{i}\t{t}" for t, i in enumerate([2, 3, 4, 1])
    ]


def test_recbole_split_matches_reference(tiny_src, tmp_path):
    from recbole.data import data_preparation
    from recbole_basrec.utils import create_dataset

    convert(tiny_src, str(tmp_path / "data"))
    config = _stock_sasrec_config("tiny", str(tmp_path / "data"), tmp_path)
    dataset = create_dataset(config)
    assert dataset.user_num - 1 == len(TINY_LINES)
    assert dataset.inter_num == sum(len(s) for s in TINY_LINES.values())
    train, valid, test = data_preparation(config, dataset)

    def samples(loader):
        """{user token: [(history tokens, target token), ...]} in dataset order."""
        feat = loader._dataset.inter_feat
        users = dataset.id2token("user_id", feat["user_id"].numpy())
        targets = dataset.id2token("item_id", feat["item_id"].numpy())
        out = {}
        for k, (user, target) in enumerate(zip(users, targets)):
            length = int(feat["item_length"][k])
            history = dataset.id2token("item_id", feat["item_id_list"][k][:length].numpy())
            out.setdefault(int(user), []).append(([int(i) for i in history], int(target)))
        return out

    train_s, valid_s, test_s = samples(train), samples(valid), samples(test)
    assert set(train_s) == set(valid_s) == set(test_s) == set(TINY_LINES)
    for user, seq in TINY_LINES.items():
        assert test_s[user] == [(seq[:-1], seq[-1])]  # test target: last item
        assert valid_s[user] == [(seq[:-2], seq[-2])]  # valid target: second last
        # train targets: items 2..n-2 of the line, each predicted from its full prefix
        assert sorted(train_s[user], key=lambda s: len(s[0])) == [(seq[:t], seq[t]) for t in range(1, len(seq) - 2)]


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "source file is empty"),
        ("\n  \n", "source file is empty"),
        ("1 2 3\n2 4 x5 6\n", "line 2: 'x5' is not a positive integer id"),
        ("1 2 3\n2 4 -5\n", "line 2: '-5' is not a positive integer id"),
        ("1 2 3\n2 4 2.5\n", "line 2: '2.5' is not a positive integer id"),
        ("1 2 3\n2 0 3\n", "line 2: ids must be positive integers"),
        ("1 2 3\n2\n", "line 2: user 2 has no items"),
        ("1 2 3 4\n2 3 4 5\n1 5 6 7\n", "line 3: duplicated user id 1 (first seen on line 1)"),
    ],
)
def test_errors(tmp_path, text, message):
    src = write_src(tmp_path / "bad.txt", text)
    with pytest.raises(ValueError) as info:
        convert(src, str(tmp_path / "out"))
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_missing_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="source file not found"):
        convert(str(tmp_path / "nope.txt"), str(tmp_path))


def test_cli_errors_exit_2_without_traceback(tmp_path, capsys):
    assert main([str(tmp_path / "nope.txt"), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: source file not found") and "Traceback" not in err
    src = write_src(tmp_path / "bad.txt", "1 2 3\n1 4 5\n")
    assert main([src, str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: line 2: duplicated user id 1 (first seen on line 1)"


def test_cli_module_entry_point(tmp_path):
    # One subprocess only (importing the package is slow); main() covers the other CLI paths.
    src = write_src(tmp_path / "tiny.txt", "1 2 3 4\n2 9\n")
    result = subprocess.run(
        [sys.executable, "-m", "recbole_basrec.data.convert", src, str(tmp_path), "--name", "cli"],
        capture_output=True, text=True, cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "2 users, 4 items, 4 interactions" in result.stdout
    assert result.stderr.startswith("warning: 2 user(s)") and "Traceback" not in result.stderr
    assert (tmp_path / "cli" / "cli.inter").is_file()


def test_beauty(tmp_path):
    if not os.path.isfile(BEAUTY):
        pytest.skip(f"reference data not available: {os.path.normpath(BEAUTY)}")
    from recbole_basrec.utils import create_dataset

    stats = convert(BEAUTY, str(tmp_path))
    assert (stats["users"], stats["items"], stats["interactions"]) == (22363, 12101, 198502)
    config = _stock_sasrec_config("Beauty", str(tmp_path), tmp_path)
    dataset = create_dataset(config)  # dataset only: data_preparation on Beauty is too slow for CI
    assert dataset.user_num - 1 == 22363
    assert dataset.item_num - 1 == 12101
    assert dataset.inter_num == 198502


def test_short_users_kept_with_warning(tmp_path, capsys):
    src = write_src(tmp_path / "short.txt", "1 4\n2 4 5\n3 4 5 6\n4 4 5 6 7\n")
    stats = convert(src, str(tmp_path))
    assert stats["users"] == 4 and stats["interactions"] == 10
    err = capsys.readouterr().err
    assert "warning: 3 user(s) have fewer than 4 items (2 with fewer than 3, i.e. no training item)" in err
    assert "first: user 1 on line 1" in err


def test_a_bad_byte_is_named_on_its_own_line_even_deep_in_a_large_file(tmp_path):
    lines = [f"{u} " + " ".join(str(i) for i in range(1, 40)) for u in range(1, 900)]
    src = tmp_path / "late.txt"
    src.write_bytes(("\n".join(lines) + "\n").encode() + b"900 1 \xff 2\n")
    with pytest.raises(ValueError, match=r"is not UTF-8 text \(line 900\)"):
        convert(str(src), str(tmp_path / "out"))


def test_a_folder_as_source_is_named_a_directory(tmp_path):
    with pytest.raises(ValueError, match="is a directory; give the text file"):
        convert(str(tmp_path), str(tmp_path / "out"))


def test_an_existing_dataset_is_replaced_only_with_force_and_written_whole(tmp_path, capsys):
    src = write_src(tmp_path / "d.txt", "1 2 3 4 5\n2 3 4 5 6\n")
    convert(src, str(tmp_path), name="d")
    target = tmp_path / "d" / "d.inter"
    before = target.read_text()
    other = write_src(tmp_path / "e.txt", "1 7 8 9 10\n")
    with pytest.raises(ValueError, match=r"d.inter exists; give --force to replace it"):
        convert(other, str(tmp_path), name="d")
    assert target.read_text() == before
    assert main([other, str(tmp_path), "--name", "d"]) == 2 and "--force" in capsys.readouterr().err
    assert main([other, str(tmp_path), "--name", "d", "--force"]) == 0
    assert target.read_text() != before and "\t7\t" in target.read_text()
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["d.inter"]  # no temporary left


def test_an_atomic_file_and_a_path_as_name_are_named(tmp_path):
    inter = tmp_path / "x.inter"
    inter.write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n")
    with pytest.raises(ValueError, match="is already a RecBole atomic file"):
        convert(str(inter), str(tmp_path / "out"))
    src = write_src(tmp_path / "d.txt", "1 2 3 4\n")
    with pytest.raises(ValueError, match="invalid dataset name 'a/b': give a plain name without"):
        convert(src, str(tmp_path / "out"), name="a/b")


def test_a_byte_order_mark_is_read_as_utf8_sig(tmp_path):
    # Editors that save 'UTF-8 with BOM' put U+FEFF before the first user id.
    src = tmp_path / "bom.txt"
    src.write_bytes("\ufeff1 2 3 4 5\n2 3 4 5 6\n".encode("utf-8"))
    stats = convert(str(src), str(tmp_path / "out"))
    assert stats["users"] == 2 and stats["interactions"] == 8
    with open(stats["path"], encoding="utf-8") as f:
        assert f.readline().rstrip("\n") == HEADER and f.readline() == "1\t2\t0\n"
