"""The shared ``datasets.GeneratorBasedBuilder`` of the three VI-ReID datasets, and ``load_vireid``.

A builder reads the official layout (``layouts.py``), decodes every image once to catch corrupt
files before any training starts, and writes Arrow shards with the image bytes embedded, so the
prepared dataset is self-contained (and can be ``push_to_hub``-ed as a normal Hub dataset).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import datasets

from ..layouts import READERS, LayoutError, Record, detect_layout, fingerprint, verify_images

logger = logging.getLogger("mcja_hub.data")

FEATURES = datasets.Features({
    "image": datasets.Image(),
    "person_id": datasets.Value("int32"),  # the dataset's own id
    "label": datasets.Value("int32"),  # contiguous training label (0..N-1), -1 in the test split
    "camera_id": datasets.Value("int8"),
    "modality": datasets.Value("int8"),  # 0 visible, 1 infrared
    "path": datasets.Value("string"),  # relative to the dataset root
})


class VIReIDBuilder(datasets.GeneratorBasedBuilder):
    """Base of the per-dataset builders; subclasses set ``LAYOUT`` and the citation."""

    VERSION = datasets.Version("1.0.0")
    LAYOUT = ""
    CITATION = ""
    DESCRIPTION = ""

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(description=self.DESCRIPTION, features=FEATURES, citation=self.CITATION)

    def _read(self, root: Path) -> dict[str, list[Record]]:
        return READERS[self.LAYOUT](root)

    def _split_generators(self, dl_manager):
        if not self.config.data_dir:
            raise ValueError(f"{self.LAYOUT}: pass data_dir= (the dataset's root folder; it cannot be downloaded)")
        root = Path(self.config.data_dir).expanduser().resolve()
        actual = detect_layout(root)
        if actual != self.LAYOUT:
            raise LayoutError(f"{root}: this is a {actual} layout, not {self.LAYOUT}")
        splits = self._read(root)
        verify_images(root, [r for recs in splits.values() for r in recs])
        return [datasets.SplitGenerator(name=name, gen_kwargs={"root": str(root), "records": recs})
                for name, recs in splits.items()]

    def _generate_examples(self, root: str, records: list[Record]):
        for i, r in enumerate(records):
            data = (Path(root) / r.path).read_bytes()
            yield i, {"image": {"bytes": data, "path": r.path}, "person_id": r.person_id, "label": r.label,
                      "camera_id": r.camera_id, "modality": r.modality, "path": r.path}


def builder_class(name: str) -> type[VIReIDBuilder]:
    from . import llcm, regdb, sysu_mm01

    classes = {"sysu_mm01": sysu_mm01.SYSUMM01, "regdb": regdb.RegDB, "llcm": llcm.LLCM}
    if name not in classes:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(classes)}")
    return classes[name]


def load_vireid(name: str | None, data_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                **config) -> datasets.DatasetDict:
    """Prepare (once, cached) and load a VI-ReID dataset from its official layout.

    ``name``: "sysu_mm01", "regdb" or "llcm" (None: detect from the folder). RegDB takes
    ``trial=1..10``. Returns a DatasetDict with "train" and "test" splits; the image counts per split,
    modality and camera are logged.
    """
    root = Path(data_dir).expanduser().resolve()
    name = name or detect_layout(root)
    cls = builder_class(name)
    config_name = None
    if name == "regdb":
        config_name = f"trial{int(config.pop('trial', 1))}"
    if config:
        raise TypeError(f"load_vireid({name!r}): unexpected options {sorted(config)}")
    builder = cls(data_dir=str(root), cache_dir=str(cache_dir) if cache_dir else None, config_name=config_name,
                  hash=fingerprint(root))
    builder.download_and_prepare()
    dsd = builder.as_dataset()
    for split, ds in dsd.items():
        counts = Counter(zip(ds["modality"], ds["camera_id"]))
        per = ", ".join(f"{'IR' if m else 'VIS'} cam{c}: {n}" for (m, c), n in sorted(counts.items()))
        logger.info("%s %s: %d images, %d ids (%s)", name, split, len(ds), len(set(ds["person_id"])), per)
    return dsd
