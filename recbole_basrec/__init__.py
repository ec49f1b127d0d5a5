"""recbole-basrec: BASRec (Dang et al., AAAI 2025) as a plug-in for RecBole's sequential models.

``import recbole_basrec`` registers ``BASRecSASRec``, ``BASRecGRU4Rec``, ``BASRecFMLPRec`` and
``FMLPRec`` with RecBole, so ``run_recbole(model='BASRecSASRec', ...)`` works as for stock models.
"""
_INSTALL = 'pip install --no-deps "recbole==1.2.1"'
try:
    import recbole as _recbole
except ImportError:
    raise ImportError(f"recbole-basrec needs recbole 1.2.1, which is not installed: {_INSTALL}") from None
if _recbole.__version__ != "1.2.1":
    raise ImportError(
        f"recbole-basrec supports recbole 1.2.1, found {_recbole.__version__}: {_INSTALL}"
    )

from recbole_basrec import compat as _compat  # noqa: E402

_compat.apply()  # before anything builds a RecBole Config or Dataset

from recbole_basrec.config import install as _install_config_hook  # noqa: E402

_install_config_hook()

from recbole_basrec.registry import register as _register  # noqa: E402

_register()

from recbole_basrec.quick_start import install as _install_quick_start  # noqa: E402

_install_quick_start()

from recbole_basrec.model.sequential_recommender import (  # noqa: E402
    BASRecFMLPRec,
    BASRecGRU4Rec,
    BASRecSASRec,
    FMLPRec,
)

__version__ = "0.1.0"
