"""``python run_recbole_basrec.py [--key=value ...]``: the ``recbole-basrec`` command (:mod:`recbole_basrec.cli`)."""
import sys

from recbole_basrec.cli import cli, main, parse_args  # noqa: F401  (the runner's functions, importable from here)

if __name__ == "__main__":
    sys.exit(cli())
