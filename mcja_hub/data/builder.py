"""One ``datasets.GeneratorBasedBuilder`` for the three VI-ReID datasets, and ``load_vireid``.

The builder reads a dataset's official layout (its reader in ``catalog.DATASETS``), decodes every image
once to catch corrupt files before any training starts, and writes Arrow shards with the image bytes
embedded, so the prepared dataset is self-contained (and can be ``push_to_hub``-ed as a normal Hub
dataset). Its configs are the datasets (``sysu_mm01``, ``llcm``) and RegDB's splits (``regdb-split1`` ..
``regdb-split10``).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import datasets

from .catalog import DATASETS, dataset, detect_layout
from .layouts import LayoutError, Record, fingerprint, renamed, verify_images

logger = logging.getLogger("mcja_hub.data")

FEATURES = datasets.Features({
    "image": datasets.Image(),
    "person_id": datasets.Value("int32"),  # the dataset's own id
    "label": datasets.Value("int32"),  # contiguous training label (0..N-1), -1 in the test split
    "camera_id": datasets.Value("int8"),
    "modality": datasets.Value("int8"),  # 0 visible, 1 infrared
    "path": datasets.Value("string"),  # relative to the dataset root
})


@dataclass
class VIReIDConfig(datasets.BuilderConfig):
    dataset: str = "sysu_mm01"
    split: int = 1  # RegDB's train/test split; the other datasets have one


def config_name(name: str, split: int = 1) -> str:
    return f"{name}-split{split}" if DATASETS[name].splits > 1 else name


class VIReIDBuilder(datasets.GeneratorBasedBuilder):
    VERSION = datasets.Version("1.1.0")
    BUILDER_CONFIG_CLASS = VIReIDConfig
    BUILDER_CONFIGS = [VIReIDConfig(name=config_name(d.name, s), dataset=d.name, split=s,
                                    description=d.description + (f" Split {s}." if d.splits > 1 else ""))
                       for d in DATASETS.values() for s in range(1, d.splits + 1)]

    def _info(self) -> datasets.DatasetInfo:
        d = DATASETS[self.config.dataset]
        return datasets.DatasetInfo(description=d.description, features=FEATURES, citation=d.citation)

    def _split_generators(self, dl_manager):
        name = self.config.dataset
        if not self.config.data_dir:
            raise ValueError(f"{name}: pass data_dir= (the dataset's root folder; it cannot be downloaded)")
        root = Path(self.config.data_dir).expanduser().resolve()
        actual = detect_layout(root)
        if actual != name:
            raise LayoutError(f"{root}: this is a {actual} layout, not {name}")
        splits = DATASETS[name].read(root, self.config.split)
        verify_images(root, [r for recs in splits.values() for r in recs])
        return [datasets.SplitGenerator(name=part, gen_kwargs={"root": str(root), "records": recs})
                for part, recs in splits.items()]

    def _generate_examples(self, root: str, records: list[Record]):
        for i, r in enumerate(records):
            data = (Path(root) / r.path).read_bytes()
            yield i, {"image": {"bytes": data, "path": r.path}, "person_id": r.person_id, "label": r.label,
                      "camera_id": r.camera_id, "modality": r.modality, "path": r.path}


def load_vireid(name: str | None, data_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                split: int | None = None, trial: int | None = None) -> datasets.DatasetDict:
    """Prepare (once, cached) and load a VI-ReID dataset from its official layout.

    ``name``: "sysu_mm01", "regdb" or "llcm" (None: detect from the folder). RegDB takes ``split=1..10``
    (``trial``: its old name; default 1). Returns a DatasetDict with "train" and "test" splits; the image
    counts per split, modality and camera are logged.
    """
    root = Path(data_dir).expanduser().resolve()
    d = dataset(name) if name else DATASETS[detect_layout(root)]
    split = renamed(split, trial, "split", "trial")
    if d.splits == 1 and split is not None:
        raise TypeError(f"load_vireid({d.name!r}): unexpected option split={split} ({d.name} has one train/test split)")
    builder = VIReIDBuilder(data_dir=str(root), cache_dir=str(cache_dir) if cache_dir else None,
                            config_name=config_name(d.name, split or 1), dataset_name=d.name, hash=fingerprint(root))
    builder.download_and_prepare()
    dsd = builder.as_dataset()
    for part, ds in dsd.items():
        counts = Counter(zip(ds["modality"], ds["camera_id"]))
        per = ", ".join(f"{'IR' if m else 'VIS'} cam{c}: {n}" for (m, c), n in sorted(counts.items()))
        logger.info("%s %s: %d images, %d ids (%s)", d.name, part, len(ds), len(set(ds["person_id"])), per)
    return dsd
