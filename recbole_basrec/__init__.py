"""recbole-basrec: BASRec (Dang et al., AAAI 2025) as a plug-in for RecBole's sequential models.

``import recbole_basrec`` registers our models with RecBole (``BASRecSASRec``, ``BASRecGRU4Rec``,
``BASRecFMLPRec``, ``FMLPRec`` and ``BASRec<Model>`` for the stock models of the generic path),
so ``run_recbole(model='BASRecSASRec', ...)`` works as for stock models.

Two commands do without that: the data converter (``python -m recbole_basrec.data.convert``)
is plain Python and loads neither RecBole nor torch, and the runner (``recbole-basrec``,
``python -m recbole_basrec.cli``) calls :func:`setup` itself, so a missing or wrong RecBole is
one line there.
"""
import os
import sys

__version__ = "0.1.0"

_INSTALL = 'pip install --no-deps "recbole==1.2.1"'
#: ``python -m`` targets and console scripts that call :func:`setup` themselves, or never need it.
_COMMANDS = ("recbole_basrec.data.convert", "recbole_basrec.cli")
_SCRIPTS = ("recbole-basrec", "run_recbole_basrec.py")
_DONE = False


def setup():
    """Check RecBole's version, patch it for today's numpy and pandas (:mod:`recbole_basrec.compat`)
    and register our models (:mod:`recbole_basrec.registry`). Idempotent.

    Raises:
        ImportError: recbole is missing or not 1.2.1 (the message names the install command).
    """
    global _DONE
    if _DONE:
        return
    try:
        import recbole
    except ImportError:
        raise ImportError(f"recbole-basrec needs recbole 1.2.1, which is not installed: {_INSTALL}") from None
    if recbole.__version__ != "1.2.1":
        raise ImportError(f"recbole-basrec supports recbole 1.2.1, found {recbole.__version__}: {_INSTALL}")
    from recbole_basrec import compat

    compat.apply()  # before anything builds a RecBole Config or Dataset
    from recbole_basrec.config import install as install_config_hook

    install_config_hook()
    from recbole_basrec.registry import register

    register()
    from recbole_basrec.quick_start import install as install_quick_start

    install_quick_start()
    _DONE = True


def _running_a_command():
    argv = getattr(sys, "orig_argv", [])
    module = next((b for a, b in zip(argv, argv[1:]) if a == "-m"), None)
    return module in _COMMANDS or os.path.basename(sys.argv[0] if sys.argv else "") in _SCRIPTS


def __getattr__(name):
    """``recbole_basrec.BASRecSASRec`` and the other hand-written model classes."""
    if name in ("BASRecFMLPRec", "BASRecGRU4Rec", "BASRecSASRec", "FMLPRec"):
        setup()
        from recbole_basrec.model import sequential_recommender

        return getattr(sequential_recommender, name)
    raise AttributeError(f"module 'recbole_basrec' has no attribute '{name}'")


if not _running_a_command():
    setup()
