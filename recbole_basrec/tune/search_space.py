"""Read a hyper-parameter search space file into Ray Tune sampling objects.

File format (a superset of RecBole's ``hyper.test``), one parameter per line::

    # comment lines and blank lines are ignored; so is a trailing "# ..." after a value
    name choice [v1, v2, ...]     # tune.choice: one of the values
    name grid [v1, v2, ...]       # tune.grid_search: every value (multiplies num_samples)
    name uniform low high         # tune.uniform(low, high)
    name loguniform low high      # RecBole's meaning: low/high are natural-log exponents,
                                  # i.e. tune.loguniform(exp(low), exp(high))
    name quniform low high q      # tune.quniform(low, high, q); all-integer bounds and q give
                                  # tune.qrandint (integer values, high inclusive)
    name randint low high         # tune.randint(low, high): integers, high exclusive

Values of ``choice``/``grid`` are one Python literal list (``ast.literal_eval``): numbers,
strings, bools, ``None``, nested lists. Numeric bounds may be separated by blanks or, as in
RecBole's own files, by commas (``learning_rate loguniform -8,0``). A parameter may appear once.

Example::

    learning_rate loguniform -9.2 -6.9     # about 1e-4 .. 1e-3
    beta choice [0.2, 0.3, 0.4, 0.5]
    n_layers randint 1 4
"""
import ast
import math
import os
import re

from ray import tune
from ray.tune.search.sample import Categorical, Domain, Integer, LogUniform

#: Distribution name -> the syntax shown in error messages.
SYNTAX = {
    "choice": "name choice [v1, v2, ...]",
    "grid": "name grid [v1, v2, ...]",
    "uniform": "name uniform low high",
    "loguniform": "name loguniform low high  (exponents: tune.loguniform(exp(low), exp(high)))",
    "quniform": "name quniform low high q",
    "randint": "name randint low high  (integers, high exclusive)",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _strip_comment(line):
    """Drop a ``#`` comment, but not a ``#`` inside a quoted string value."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _where(source, lineno):
    return f"{source or '<search space>'}:{lineno}"


def _fail(source, lineno, text, problem, dist=None):
    expected = SYNTAX[dist] if dist in SYNTAX else "; ".join(SYNTAX.values())
    raise ValueError(f"{_where(source, lineno)}: {problem} in '{text}'; expected: {expected}")


def _number(token, integer, fail):
    try:
        value = ast.literal_eval(token)
    except (ValueError, SyntaxError):
        value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"bound '{token}' is not a number")
    if integer and not isinstance(value, int):
        fail(f"bound '{token}' is not an integer")
    if not math.isfinite(value):
        fail(f"bound '{token}' is not finite")
    return value


def parse_line(line, lineno, source=None):
    """Parse one line of a search-space file.

    Args:
        line (str): the line, comments allowed.
        lineno (int): its 1-based number, for error messages.
        source (str): the file name, for error messages.

    Returns:
        tuple or None: ``(name, tune sampler)``; ``None`` for a blank or comment line.

    Raises:
        ValueError: naming the file, line, text and the expected syntax.
    """
    text = _strip_comment(line).strip()
    if not text:
        return None
    parts = text.split(None, 2)
    if len(parts) < 2:
        _fail(source, lineno, text, "missing distribution and values")
    name, dist, rest = parts[0], parts[1], parts[2] if len(parts) > 2 else ""
    if dist not in SYNTAX:
        _fail(source, lineno, text, f"unknown distribution '{dist}' (known: {', '.join(SYNTAX)})")
    if not _NAME.match(name):
        _fail(source, lineno, text, f"bad parameter name '{name}'", dist)
    if not rest:
        _fail(source, lineno, text, "missing values", dist)

    def fail(problem):
        _fail(source, lineno, text, problem, dist)

    if dist in ("choice", "grid"):
        try:
            values = ast.literal_eval(rest.strip())
        except (ValueError, SyntaxError):
            fail(f"values '{rest.strip()}' are not a Python literal list")
        if not isinstance(values, (list, tuple)):
            fail(f"values '{rest.strip()}' are not a list in [...]")
        if not values:
            fail("empty value list")
        values = list(values)
        return name, tune.choice(values) if dist == "choice" else tune.grid_search(values)

    # RecBole writes "low,high"; blanks are just as good.
    tokens = [t for t in re.split(r"[\s,]+", rest.strip()) if t]
    want = 3 if dist == "quniform" else 2
    if len(tokens) != want:
        fail(f"{dist} takes {want} numbers, got {len(tokens)}")
    nums = [_number(t, dist == "randint", fail) for t in tokens]
    low, high = nums[0], nums[1]
    if low > high:
        fail(f"low {low} > high {high}")
    if dist == "uniform":
        return name, tune.uniform(low, high)
    if dist == "loguniform":
        # hyperopt's hp.loguniform (what RecBole uses) samples exp(uniform(low, high)).
        return name, tune.loguniform(math.exp(low), math.exp(high))
    if dist == "randint":
        if low == high:
            fail(f"randint needs low < high (high is exclusive), got {low} {high}")
        return name, tune.randint(low, high)
    q = nums[2]
    if q <= 0:
        fail(f"q must be > 0, got {q}")
    for bound in (low, high):
        # Ray rejects bounds that are not multiples of q; say so with the line number.
        if not math.isclose(bound / q, round(bound / q), abs_tol=1e-9):
            fail(f"bound {bound} is not a multiple of q={q}")
    if all(isinstance(v, int) for v in nums):
        return name, tune.qrandint(low, high, q)
    return name, tune.quniform(float(low), float(high), float(q))


def _looks_like_path(value):
    if isinstance(value, os.PathLike):
        return True
    if "\n" in value:
        return False
    return os.path.isfile(value) or value.endswith((".hyper", ".test", ".txt")) or len(value.split()) < 3


def parse_search_space(path_or_text):
    """Parse a search-space file (a path) or its text into ``{name: tune sampler}``.

    A string with a newline, or one that is a whole parameter line, is read as text;
    anything else as a path.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: a malformed or duplicate line (file and line number in the message).
    """
    if _looks_like_path(path_or_text):
        path = os.fspath(path_or_text)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"Search space file '{path}' not found; pass an existing .hyper file, "
                "e.g. properties/search/SASRec.hyper"
            )
        with open(path, encoding="utf-8") as f:
            text, source = f.read(), path
    else:
        text, source = path_or_text, None

    space, first_seen = {}, {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        parsed = parse_line(line, lineno, source)
        if parsed is None:
            continue
        name, sampler = parsed
        if name in space:
            raise ValueError(
                f"{_where(source, lineno)}: duplicate parameter '{name}' in '{line.strip()}' "
                f"(first defined on line {first_seen[name]}); keep one line per parameter"
            )
        space[name], first_seen[name] = sampler, lineno
    if not space:
        raise ValueError(
            f"{source or '<search space>'}: no parameters found; add lines like "
            f"'{SYNTAX['choice']}'"
        )
    return space


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


def describe_one(sampler):
    """One sampler as a short string, e.g. ``loguniform(0.0001, 0.01)``."""
    if isinstance(sampler, dict) and "grid_search" in sampler:
        return f"grid{list(sampler['grid_search'])}"
    if isinstance(sampler, Categorical):
        return f"choice{list(sampler.categories)}"
    if isinstance(sampler, Domain):
        inner = sampler.get_sampler()
        q = getattr(inner, "q", None)
        if q is not None:
            inner = inner.get_sampler()
        kind = "log" if isinstance(inner, LogUniform) else ""
        kind += "randint" if isinstance(sampler, Integer) else "uniform"
        args = [_fmt(sampler.lower), _fmt(sampler.upper)] + ([_fmt(q)] if q is not None else [])
        return f"{'q' if q is not None else ''}{kind}({', '.join(args)})"
    return repr(sampler)


def describe(space):
    """The whole space as one short line for logs: ``beta=choice[0.3, 0.4], ...``."""
    return ", ".join(f"{name}={describe_one(s)}" for name, s in space.items())
