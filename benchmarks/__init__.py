"""Experiments on recbole-basrec, outside the installed package: ``python -m benchmarks <job>``
from the repository root (see ``docs/reproducing.md``)."""
