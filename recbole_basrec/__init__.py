"""recbole-basrec: BASRec (Dang et al., AAAI 2025) as a plug-in for RecBole's sequential models.

After ``import recbole_basrec``, RecBole's ``recbole.quick_start`` (``run_recbole``, ``run``,
``run_recboles``, ``objective_function``, ``load_data_and_model``) trains and loads our models
(``BASRecSASRec``, ``BASRecGRU4Rec``, ``BASRecFMLPRec``, ``FMLPRec`` and ``BASRec<Model>`` for the
stock models of the generic path) as it does stock ones, and stock RecBole 1.2.1 runs on numpy 2
and pandas 3. Our own pieces are in :mod:`recbole_basrec.utils` (``Config``, ``get_model``,
``get_trainer``, ``create_dataset``) and :mod:`recbole_basrec.quick_start`.

The import itself is light: it loads neither RecBole's modules nor torch; the patches of
:mod:`recbole_basrec.compat` apply when the RecBole module each covers is imported.
"""
__version__ = "0.1.0"

_INSTALL = 'pip install --no-deps "recbole==1.2.1"'
_MODELS = ("BASRecFMLPRec", "BASRecGRU4Rec", "BASRecSASRec", "FMLPRec")


def setup():
    """Check that RecBole 1.2.1 is installed (our runner and API call this before anything else).

    Raises:
        ImportError: recbole is missing or not 1.2.1 (the message names the install command).
    """
    try:
        import recbole
    except ImportError:
        raise ImportError(f"recbole-basrec needs recbole 1.2.1, which is not installed: {_INSTALL}") from None
    if recbole.__version__ != compat.RECBOLE_VERSION:
        raise ImportError(f"recbole-basrec supports recbole 1.2.1, found {recbole.__version__}: {_INSTALL}")


def __getattr__(name):
    """``recbole_basrec.BASRecSASRec`` and the other hand-written model classes."""
    if name in _MODELS:
        setup()
        from recbole_basrec.model import sequential_recommender

        return getattr(sequential_recommender, name)
    raise AttributeError(f"module 'recbole_basrec' has no attribute '{name}'")


from recbole_basrec import compat  # noqa: E402

compat.attach()
