"""Search-space files: every syntax, RecBole's loguniform meaning, every error, shipped files."""
import glob
import math
import os

import numpy as np
import pytest
from ray import tune
from ray.tune.search.sample import Categorical, Float, Integer, LogUniform, Quantized, Uniform

from recbole_basrec.tune.search_space import describe, parse_line, parse_search_space

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = sorted(glob.glob(os.path.join(ROOT, "properties", "search", "*.hyper")))


def samples(domain, n=2000):
    return np.asarray(domain.sample(size=n, random_state=np.random.RandomState(0)))


def test_choice_literals():
    name, d = parse_line("embedding_size choice [64, 0.5, 'a', True, None, [1, 2]]", 1)
    assert name == "embedding_size"
    assert isinstance(d, Categorical)
    assert d.categories == [64, 0.5, "a", True, None, [1, 2]]


def test_choice_recbole_spacing_and_comments():
    # RecBole writes lists without blanks; "#" inside a string is not a comment.
    _, d = parse_line("x choice [1,2,3]   # trailing comment", 3)
    assert d.categories == [1, 2, 3]
    _, d = parse_line("x choice ['#1', \"a # b\"]", 3)
    assert d.categories == ["#1", "a # b"]


def test_grid():
    _, d = parse_line("n_pairs grid [1, 2]", 1)
    assert d == tune.grid_search([1, 2]) == {"grid_search": [1, 2]}


def test_uniform():
    _, d = parse_line("dropout uniform 0.1 0.5", 1)
    assert isinstance(d, Float) and isinstance(d.get_sampler(), Uniform)
    assert (d.lower, d.upper) == (0.1, 0.5)
    s = samples(d)
    assert s.min() >= 0.1 and s.max() <= 0.5


def test_loguniform_uses_recbole_exponents():
    # RecBole (hyperopt's hp.loguniform): the bounds are exponents, values exp(uniform(low, high)).
    _, d = parse_line("learning_rate loguniform -8 0", 1)
    assert isinstance(d, Float) and isinstance(d.get_sampler(), LogUniform)
    assert d.lower == pytest.approx(math.exp(-8)) and d.upper == pytest.approx(1.0)
    s = samples(d)
    assert s.min() >= math.exp(-8) and s.max() <= 1.0
    # uniform in log space: the median sits near exp(-4), far from the arithmetic middle 0.5
    assert abs(np.log(np.median(s)) + 4) < 0.3


def test_recbole_comma_bounds():
    _, d = parse_line("learning_rate loguniform -8,0", 1)
    assert d.lower == pytest.approx(math.exp(-8))
    _, d = parse_line("x quniform 0, 1, 0.25", 1)
    assert (d.lower, d.upper, d.get_sampler().q) == (0.0, 1.0, 0.25)


def test_quniform_float():
    _, d = parse_line("x quniform 0 1 0.25", 1)
    assert isinstance(d, Float) and isinstance(d.get_sampler(), Quantized)
    assert (d.lower, d.upper, d.get_sampler().q) == (0.0, 1.0, 0.25)
    assert set(np.round(samples(d), 6)) <= {0.0, 0.25, 0.5, 0.75, 1.0}


def test_quniform_integers_give_integers():
    _, d = parse_line("hidden_size quniform 16 64 16", 1)
    assert isinstance(d, Integer) and d.get_sampler().q == 16
    s = samples(d)
    assert set(s.tolist()) == {16, 32, 48, 64}  # high inclusive
    assert all(isinstance(d.sample(), int) for _ in range(5))  # Tune samples one at a time


def test_randint():
    _, d = parse_line("n_layers randint 1 4", 1)
    assert isinstance(d, Integer) and isinstance(d.get_sampler(), Uniform)
    assert (d.lower, d.upper) == (1, 4)
    assert set(samples(d).tolist()) == {1, 2, 3}  # high exclusive


def test_blank_and_comment_lines():
    assert parse_line("", 1) is None
    assert parse_line("   ", 1) is None
    assert parse_line("# beta choice [1]", 1) is None


def test_parse_text_and_file(tmp_path):
    text = "# header\n\nbeta choice [0.2, 0.4]\nlearning_rate loguniform -9 -5  # 1e-4..7e-3\n"
    space = parse_search_space(text)
    assert list(space) == ["beta", "learning_rate"]
    path = tmp_path / "s.hyper"
    path.write_text(text)
    for arg in (str(path), path):
        space = parse_search_space(arg)
        assert space["beta"].categories == [0.2, 0.4]
    assert describe(space) == "beta=choice[0.2, 0.4], learning_rate=loguniform(0.0001234, 0.006738)"


@pytest.mark.parametrize(
    "line, message",
    [
        ("x normal 0 1", "unknown distribution 'normal'"),
        ("x", "missing distribution"),
        ("x choice", "missing values"),
        ("x uniform 1", "uniform takes 2 numbers, got 1"),
        ("x uniform 1 2 3", "uniform takes 2 numbers, got 3"),
        ("x quniform 0 1", "quniform takes 3 numbers, got 2"),
        ("x loguniform a 0", "bound 'a' is not a number"),
        ("x uniform 0 True", "bound 'True' is not a number"),
        ("x uniform 2 1", "low 2 > high 1"),
        ("x loguniform 0 -8", "low 0 > high -8"),
        ("x randint 1.5 4", "bound '1.5' is not an integer"),
        ("x randint 3 3", "randint needs low < high"),
        ("x quniform 0 1 0", "q must be > 0"),
        ("x quniform 0 1 0.3", "not a multiple of q=0.3"),
        ("x choice []", "empty value list"),
        ("x grid []", "empty value list"),
        ("x choice [1, 2", "not a Python literal list"),
        ("x choice 5", "not a list"),
        ("x choice [foo]", "not a Python literal list"),
        ("1x choice [1]", "bad parameter name '1x'"),
    ],
)
def test_malformed_line_errors(line, message):
    with pytest.raises(ValueError) as info:
        parse_line(line, 7, source="my.hyper")
    text = str(info.value)
    assert text.startswith("my.hyper:7: ")
    assert message in text
    assert f"'{line}'" in text
    assert "expected:" in text  # the expected syntax is spelled out


def test_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.hyper"
    path.write_text("# ok\nbeta choice [0.2]\n\nrate_min uniform 0.5 0.1\n")
    with pytest.raises(ValueError, match=rf"{path}:4: low 0.5 > high 0.1 in 'rate_min uniform 0.5 0.1'"):
        parse_search_space(str(path))


def test_duplicate_parameter(tmp_path):
    path = tmp_path / "dup.hyper"
    path.write_text("beta choice [0.2]\nn_pairs choice [1]\nbeta uniform 0 1\n")
    with pytest.raises(ValueError, match=r"dup.hyper:3: duplicate parameter 'beta'.*first defined on line 1"):
        parse_search_space(str(path))


def test_missing_file_and_empty_space(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.hyper"):
        parse_search_space(str(tmp_path / "nope.hyper"))
    with pytest.raises(ValueError, match="no parameters found"):
        parse_search_space("# only a comment\n\n")


def test_shipped_search_spaces_parse():
    assert {os.path.basename(p) for p in SHIPPED} >= {"SASRec.hyper", "GRU4Rec.hyper", "FMLPRec.hyper"}
    dropout = {
        "SASRec.hyper": {"hidden_dropout_prob", "attn_dropout_prob"},
        "GRU4Rec.hyper": {"dropout_prob"},
        "FMLPRec.hyper": {"hidden_dropout_prob"},
    }
    for path in SHIPPED:
        space = parse_search_space(path)
        assert {"beta", "rate_min", "rate_max", "n_pairs", "n_whole_level", "learning_rate"} <= set(space)
        assert dropout.get(os.path.basename(path), set()) <= set(space)
        # disjoint ranges: any sampled rate_min <= any sampled rate_max
        assert max(space["rate_min"].categories) <= min(space["rate_max"].categories)
        lr = space["learning_rate"]
        assert isinstance(lr.get_sampler(), LogUniform) and 1e-5 <= lr.lower < lr.upper <= 0.1
        assert describe(space)
