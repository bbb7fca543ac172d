"""Data: everything that knows a dataset or a file layout.

``catalog.DATASETS`` is the one table of SYSU-MM01, RegDB and LLCM; ``layouts`` reads the official
layouts; ``trials`` builds the test protocols; ``synthetic`` writes synthetic data in those layouts;
``builder`` prepares them as ``datasets`` Arrow data; ``sampler`` draws PK batches. ``datasets`` is
imported only when a builder is used, so ``import mcja_hub.data`` stays light.
"""

from .catalog import DATASETS, Dataset, build_protocols, dataset, detect_layout, generate_synthetic
from .layouts import LayoutError, Record, read_llcm, read_regdb, read_sysu
from .trials import Protocol, Trial, llcm_trials, regdb_trials, sysu_settings, sysu_trials


def load_vireid(name, data_dir, cache_dir=None, split=None, trial=None):
    """See ``mcja_hub.data.builder.load_vireid`` (imported lazily: it needs ``datasets``)."""
    from .builder import load_vireid as _load

    return _load(name, data_dir, cache_dir=cache_dir, split=split, trial=trial)


__all__ = ["DATASETS", "Dataset", "LayoutError", "Protocol", "Record", "Trial", "build_protocols", "dataset",
           "detect_layout", "generate_synthetic", "llcm_trials", "load_vireid", "read_llcm", "read_regdb", "read_sysu",
           "regdb_trials", "sysu_settings", "sysu_trials"]
