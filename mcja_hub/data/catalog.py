"""The three VI-ReID datasets in one table, and what dispatches through it.

Everything that depends on which dataset it is (the CLI's choices, the builders, the trials, the metric
rules, re-ranking constants, synthetic writers, cards) looks it up here, under one name per dataset:
``sysu_mm01``, ``regdb``, ``llcm``. Earlier spellings (``sysu``, ``sysu-mm01``) still work, with a
deprecation warning, until the next release.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from . import synthetic
from .layouts import SYNTHETIC_MARKER, LayoutError, read_llcm, read_regdb, read_sysu
from .trials import Protocol, llcm_trials, regdb_trials, sysu_settings


def _sysu_discard(q_pids, g_pids, q_cams, g_cams) -> torch.Tensor:
    # same camera as the query, with cam3 (indoor IR) counted as cam2: the same room
    q = torch.where(q_cams == 3, torch.full_like(q_cams, 2), q_cams)
    return q[:, None] == g_cams[None, :]


def _llcm_discard(q_pids, g_pids, q_cams, g_cams) -> torch.Tensor:
    # same identity seen by the same (dual-mode) camera
    return (q_pids[:, None] == g_pids[None, :]) & (q_cams[:, None] == g_cams[None, :])


def _sysu_protocols(root, modes, shots, trials, split) -> list[Protocol]:
    return sysu_settings(root, [(m, s) for m in modes for s in shots], trials)


def _regdb_protocols(root, modes, shots, trials, split) -> list[Protocol]:
    if split is None:  # no default: a model evaluated on another split's test ids has seen them in training
        raise ValueError("RegDB evaluation needs the split the model was trained on (split= / --split 1..10)")
    return [regdb_trials(root, split)]


def _llcm_protocols(root, modes, shots, trials, split) -> list[Protocol]:
    return [llcm_trials(root, trials)]


@dataclass(frozen=True)
class Dataset:
    name: str  # the one key
    display_name: str
    hub_id: str  # the Hub's dataset id / the cards' model-index dataset type
    signature: str  # a file only this layout has (detect_layout)
    num_train_ids: int  # identities of the training split (the released checkpoints' classifier rows)
    splits: int  # official train/test splits, one model each (RegDB: 10), else 1
    read: Callable  # (root, split) -> {"train": [Record], "test": [Record]}
    protocols: Callable  # (root, modes, shots, trials, split) -> [Protocol]: the test trials
    discard: Callable | None  # (q_pids, g_pids, q_cams, g_cams) -> (Q, G) True = does not count for that query
    dedup_cmc: bool  # CMC on the identity-deduplicated list, as the reference code does
    mser: tuple[int, int, float, bool]  # re-ranking k1, k2, lambda, gallery items never neighbours
    write_synthetic: Callable  # (out, ids, seed, size, images_per_camera, workers)
    min_synthetic_ids: int  # to fill every split
    description: str
    citation: str


DATASETS = {d.name: d for d in (
    Dataset(
        name="sysu_mm01", display_name="SYSU-MM01", hub_id="sysu-mm01", signature="exp/train_id.txt",
        num_train_ids=395, splits=1, read=lambda root, split=None: read_sysu(root), protocols=_sysu_protocols,
        discard=_sysu_discard, dedup_cmc=True, mser=(40, 20, 0.3, True), write_synthetic=synthetic.write_sysu,
        min_synthetic_ids=5,
        description=("SYSU-MM01: 491 identities, 4 RGB cameras (cam1, cam2 indoor; cam4, cam5 outdoor) and 2 IR "
                     "cameras (cam3 indoor, cam6 outdoor). train = train_id + val_id (395 ids), test = test_id (96)."),
        citation="""@inproceedings{wu2017rgb,
  title={RGB-Infrared Cross-Modality Person Re-Identification},
  author={Wu, Ancong and Zheng, Wei-Shi and Yu, Hong-Xing and Gong, Shaogang and Lai, Jianhuang},
  booktitle={ICCV}, year={2017}}"""),
    Dataset(
        name="regdb", display_name="RegDB", hub_id="regdb", signature="idx/train_visible_1.txt",
        num_train_ids=206, splits=10, read=lambda root, split=1: read_regdb(root, split), protocols=_regdb_protocols,
        # the released MCJA code de-duplicates RegDB's CMC too (AGW's code does not; Rank-1 is the same)
        discard=None, dedup_cmc=True, mser=(50, 10, 0.2, False), write_synthetic=synthetic.write_regdb,
        min_synthetic_ids=2,
        description=("RegDB: 412 identities, 10 visible + 10 thermal images each; 10 official train/test splits "
                     "of 206/206 ids (idx/{train,test}_{visible,thermal}_{split}.txt)."),
        citation="""@article{nguyen2017person,
  title={Person Recognition System Based on a Combination of Body Images from Visible Light and Thermal Cameras},
  author={Nguyen, Dat Tien and Hong, Hyung Gil and Kim, Ki Wan and Park, Kang Ryoung},
  journal={Sensors}, volume={17}, number={3}, pages={605}, year={2017}}"""),
    Dataset(
        name="llcm", display_name="LLCM", hub_id="llcm", signature="idx/train_vis.txt",
        num_train_ids=713, splits=1, read=lambda root, split=None: read_llcm(root), protocols=_llcm_protocols,
        # not in the released code: its SYSU-MM01 re-ranking constants (an assumption); plain CMC as LLCM's own code
        discard=_llcm_discard, dedup_cmc=False, mser=(40, 20, 0.3, True), write_synthetic=synthetic.write_llcm,
        min_synthetic_ids=3,
        description=("LLCM: 1,064 identities, 9 dual-mode cameras (same index = same physical camera in both "
                     "modalities); 713 training ids from idx/train_{vis,nir}.txt, test ids in idx/test_id.txt."),
        citation="""@inproceedings{zhang2023diverse,
  title={Diverse Embedding Expansion Network and Low-Light Cross-Modality Benchmark for Visible-Infrared Person Re-identification},
  author={Zhang, Yukang and Wang, Hanzi}, booktitle={CVPR}, year={2023}}"""),
)}
OLD_NAMES = {"sysu": "sysu_mm01", "sysu-mm01": "sysu_mm01"}  # accepted until the next release


def dataset(name: str) -> Dataset:
    """The table entry of ``name`` (one of DATASETS, or an old spelling, with a FutureWarning)."""
    key = str(name).lower()
    if key in OLD_NAMES:
        warnings.warn(f"dataset name {name!r} is now {OLD_NAMES[key]!r}; the old name works until the next release",
                      FutureWarning, stacklevel=3)
        key = OLD_NAMES[key]
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}")
    return DATASETS[key]


def detect_layout(root: str | Path) -> str:
    """Which dataset's official layout a folder has, or a LayoutError saying what each would need."""
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"{root}: no such folder")
    found = [d.name for d in DATASETS.values() if (root / d.signature).is_file()]
    if len(found) == 1:
        return found[0]
    expected = "; ".join(f"{d.name}: {d.signature}" for d in DATASETS.values())
    if not found:
        raise LayoutError(f"{root}: matches no known dataset layout (looked for {expected})")
    raise LayoutError(f"{root}: looks like several layouts at once ({found}); point at one dataset's root")


def build_protocols(name: str, data_dir: str | Path, modes=("all", "indoor"), shots=(1, 10), trials: int = 10,
                    split: int | None = None) -> list[Protocol]:
    """The test trials of a dataset: SYSU-MM01 every (mode, shots) setting over ``trials`` official trials;
    RegDB ``split`` (required), both directions; LLCM ``trials`` seeded galleries, both directions."""
    return dataset(name).protocols(data_dir, modes, shots, trials, split)


def generate_synthetic(out: str | os.PathLike, layout: str = "sysu_mm01", ids: int = 60, seed: int = 0,
                       size: tuple[int, int] = (128, 64), images_per_camera: tuple[int, int] = (4, 8),
                       workers: int | None = None) -> Path:
    """Write a synthetic dataset in the official layout of dataset ``layout`` under ``out``, with a marker
    file (``mcja_synthetic.json``: generator, version, seed, ids) that reports and cards read.

    Deterministic for a seed (also across worker counts). ``images_per_camera`` is the (min, max)
    number of images per identity and camera (RegDB always has 10 + 10 per identity).
    """
    from .. import __version__

    d = dataset(layout)
    if ids < d.min_synthetic_ids:
        raise ValueError(f"the {d.name} layout needs at least {d.min_synthetic_ids} identities to fill its splits, "
                         f"got {ids}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    marker = {"generator": "mcja_hub.data.generate_synthetic", "version": __version__, "layout": d.name,
              "ids": ids, "seed": seed, "size": list(size), "images_per_camera": list(images_per_camera)}
    (out / SYNTHETIC_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    d.write_synthetic(out, ids, seed, size, images_per_camera, workers)
    return out
