"""Data: dataset builders (SYSU-MM01, RegDB, LLCM), the synthetic generator and the PK sampler.

``datasets`` is imported only when a builder is used, so ``import mcja_hub.data`` stays light.
"""

from ..layouts import LayoutError, Record, detect_layout, read_llcm, read_regdb, read_sysu
from .synthetic import LAYOUTS, generate_synthetic


def load_vireid(name, data_dir, cache_dir=None, **config):
    """See ``mcja_hub.data.builder.load_vireid`` (imported lazily: it needs ``datasets``)."""
    from .builder import load_vireid as _load

    return _load(name, data_dir, cache_dir=cache_dir, **config)


__all__ = ["LAYOUTS", "LayoutError", "Record", "detect_layout", "generate_synthetic", "load_vireid",
           "read_llcm", "read_regdb", "read_sysu"]
