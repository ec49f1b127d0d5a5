"""``python run_recbole_basrec.py [--key=value ...]``: the ``recbole-basrec`` command (:mod:`recbole_basrec.cli`)."""
import sys

from recbole_basrec.cli import cli

if __name__ == "__main__":
    sys.exit(cli())
