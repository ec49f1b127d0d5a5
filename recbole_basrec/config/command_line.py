"""RecBole-style ``--key=value`` arguments, read once and checked: a key given twice, or an
argument that is not ``--key=value``, is an error instead of being dropped or overwritten."""
import ast

_WORDS = {"true": True, "false": False, "none": None}


def parse_value(text):
    """A command-line value as RecBole reads it: a Python literal where it is one
    (``2``, ``1e-3``, ``[5, 10]``, ``True``), ``true``/``false``/``none`` in any case, else the string."""
    if text.strip().lstrip("+-").isdigit():  # "01": Python's literals refuse leading zeros
        return int(text)
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return _WORDS.get(text.strip().lower(), text)


def _numbers_with(text):
    """Whether ``text`` (a list or dict literal) is one once ``nan``/``inf`` are read as numbers."""
    import re

    try:
        ast.literal_eval(re.sub(r"(?<![\w'\"])-?(nan|inf)(?![\w'\"])", "0", text, flags=re.I))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def parse_overrides(arguments):
    """``["--epochs=2", ...]`` as ``{"epochs": 2, ...}``."""
    result, raw = {}, {}
    for arg in arguments:
        key, sep, value = arg[2:].partition("=")
        if not arg.startswith("--") or not sep or not key:
            raise ValueError(f"cannot read argument '{arg}': write options as --key=value")
        if key in raw:
            raise ValueError(f"--{key} is given twice ({raw[key]} and {value}); give it once.")
        raw[key] = value
        if not value.strip():
            raise ValueError(f"--{key}= has no value: write --{key}=VALUE (or leave --{key} out for its default)")
        result[key] = parse_value(value)
        if result[key] is None and _takes_the_word_none(key):
            result[key] = "none"  # tta=none, augmentation=none: the value, not Python's None
        text = value.strip()
        if isinstance(result[key], str) and text[0] in "[{" and text[-1] in "]}" and _numbers_with(text):
            raise ValueError(f"--{key}={value} holds nan or inf: every number in the configuration must be finite.")
        if isinstance(result[key], str) and text[0] in "[{" and text[-1] in "]}":
            # RecBole would keep it as one string, which list keys then read character by character.
            raise ValueError(f"--{key}={value} is not a Python literal: quote the names in it, "
                             f"e.g. --{key}=\"{_quoted(text)}\".")
    return result



def _quoted(text):
    """``[Hit, NDCG]`` as ``['Hit', 'NDCG']``: the literal the user meant (a dict: the form of one)."""
    if text[0] == "{":
        return "{'name': 'value'}"
    inner = [part.strip().strip("'\"") for part in text[1:-1].split(",") if part.strip()]
    return "[" + ", ".join(repr(part) for part in inner) + "]"


def _takes_the_word_none(key):
    from recbole_basrec.config import schema

    declared = schema.BY_NAME.get(key)
    return declared is not None and declared.accepts("none") and not declared.accepts(None)
