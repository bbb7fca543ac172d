"""The benchmarks' test trials as query / gallery index sets over one list of test images (docs/method.md §5).

A ``Protocol`` holds every test image any of its trials uses, so each image is embedded once; a
``Trial`` holds index arrays into that list; ``Protocol.dataset`` names the dataset whose metric rules
(``DATASETS[...].discard`` / ``dedup_cmc``) apply to its trials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .layouts import LayoutError, Record, read_llcm, read_regdb, read_sysu, renamed

SYSU_GALLERY_CAMERAS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}


@dataclass
class Trial:
    setting: str  # e.g. "all-search single-shot", "visible->thermal"
    number: int  # 1-based trial number
    query: np.ndarray  # indices into Protocol.records
    gallery: np.ndarray


@dataclass
class Protocol:
    dataset: str  # a key of catalog.DATASETS
    records: list[Record]
    trials: list[Trial] = field(default_factory=list)

    def settings(self) -> list[str]:
        return list(dict.fromkeys(t.setting for t in self.trials))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """person ids, camera ids and modalities of ``records`` as arrays."""
        return (np.array([r.person_id for r in self.records]), np.array([r.camera_id for r in self.records]),
                np.array([r.modality for r in self.records]))


def load_rand_perm_cam(path: Path) -> np.ndarray:
    """The official SYSU gallery permutations: a (6,) array of per-camera (N,) object arrays."""
    from scipy.io import loadmat

    if not path.is_file():
        raise LayoutError(f"{path}: missing; expected the official SYSU-MM01 exp/rand_perm_cam.mat")
    try:
        mat = loadmat(str(path))
    except Exception as e:
        raise LayoutError(f"{path}: not a readable MATLAB file ({e})") from e
    if "rand_perm_cam" not in mat:
        raise LayoutError(f"{path}: no variable 'rand_perm_cam' (found {sorted(k for k in mat if not k.startswith('__'))})")
    perm = mat["rand_perm_cam"]
    if perm.shape != (6, 1):
        raise LayoutError(f"{path}: rand_perm_cam has shape {perm.shape}, expected a (6, 1) cell array")
    cameras = np.empty(6, dtype=object)  # per camera: entry [pid - 1] is a (10, n) matrix or empty
    for c in range(6):
        cameras[c] = perm[c, 0].reshape(-1)
    return cameras


def sysu_trials(data_dir: str | Path, mode: str = "all", shots: int = 1, trials: int = 10) -> Protocol:
    """SYSU-MM01: IR queries (cams 3, 6) of the test ids vs the trial's visible gallery.

    Gallery of trial t: for each gallery camera ({1,2,4,5} all-search, {1,2} indoor-search) and test
    id, the first ``shots`` image numbers of row t of that id's permutation in exp/rand_perm_cam.mat.
    """
    return sysu_settings(data_dir, [(mode, shots)], trials)[0]


def sysu_settings(data_dir: str | Path, settings: list[tuple[str, int]], trials: int = 10) -> list[Protocol]:
    """``sysu_trials`` for several (mode, shots) settings, reading the dataset and the .mat file once."""
    for mode, shots in settings:
        if mode not in SYSU_GALLERY_CAMERAS:
            raise ValueError(f"mode must be 'all' or 'indoor', got {mode!r}")
        if shots not in (1, 10):
            raise ValueError(f"shots must be 1 (single-shot) or 10 (multi-shot), got {shots}")
    if not 1 <= trials <= 10:
        raise ValueError(f"SYSU-MM01 has 10 official trials, asked for {trials}")
    root = Path(data_dir)
    records = read_sysu(root)["test"]
    perm = load_rand_perm_cam(root / "exp" / "rand_perm_cam.mat")
    by_name = {r.path.rsplit(".", 1)[0]: i for i, r in enumerate(records)}  # "cam1/0001/0003" -> index
    query = np.array([i for i, r in enumerate(records) if r.modality == 1])
    protocols = []
    images_of = {}  # (camera, pid) -> number of images
    for r in records:
        images_of[r.camera_id, r.person_id] = images_of.get((r.camera_id, r.person_id), 0) + 1
    for (cam, pid), n in sorted(images_of.items()):
        if cam in SYSU_GALLERY_CAMERAS["all"]:
            _check_perm_cell(perm[cam - 1], cam, pid, n, root / "exp" / "rand_perm_cam.mat")
    for mode, shots in settings:
        cams = SYSU_GALLERY_CAMERAS[mode]
        test_ids = sorted({r.person_id for r in records if r.camera_id in cams})
        setting = f"{mode}-search {'single' if shots == 1 else 'multi'}-shot"
        protocol = Protocol("sysu_mm01", records)
        for t in range(trials):
            gallery = []
            for cam in cams:
                cam_perm = perm[cam - 1]
                for pid in test_ids:
                    if pid - 1 >= len(cam_perm) or cam_perm[pid - 1].size == 0:
                        continue
                    for number in np.asarray(cam_perm[pid - 1])[t][:shots].tolist():
                        name = f"cam{cam}/{pid:04d}/{int(number):04d}"
                        if name not in by_name:
                            raise LayoutError(f"rand_perm_cam.mat names {name}.* (trial {t + 1}), which is not in {root}")
                        gallery.append(by_name[name])
            protocol.trials.append(Trial(setting, t + 1, query, np.array(gallery)))
        protocols.append(protocol)
    return protocols


def _check_perm_cell(cells: np.ndarray, cam: int, pid: int, n_images: int, path: Path) -> None:
    """Camera ``cam``'s entry for ``pid`` must hold 10 trials, each a permutation of the id's image numbers
    1..n_images: a short or malformed cell would crash or silently shrink the gallery."""
    where = f"{path}: camera {cam}, id {pid}"
    if pid - 1 >= len(cells):
        raise LayoutError(f"{where}: no entry (the camera's cell has {len(cells)} ids) but the id has {n_images} "
                          f"image(s) there")
    rows = np.asarray(cells[pid - 1])
    if rows.ndim != 2 or rows.shape != (10, n_images):
        raise LayoutError(f"{where}: permutations of shape {rows.shape}, expected (10 trials, {n_images} images)")
    expected = np.arange(1, n_images + 1)
    for t in range(10):
        if not np.array_equal(np.sort(rows[t].astype(np.int64)), expected):
            raise LayoutError(f"{where}, trial {t + 1}: {rows[t].tolist()[:12]} is not a permutation of 1..{n_images}")


def regdb_trials(data_dir: str | Path, split: int | None = None, trial: int | None = None) -> Protocol:
    """RegDB split ``split`` (``trial``: its old name): all test images, visible->thermal and thermal->visible.

    Each split must be evaluated with the model trained on that split's training ids (the paper
    protocol averages 10 such models); a model from another split has seen these test ids.
    """
    split = renamed(split, trial, "split", "trial")
    if split is None:
        raise ValueError("RegDB trials need the split (1..10) the model was trained on")
    records = read_regdb(Path(data_dir), split)["test"]
    modality = np.array([r.modality for r in records])
    vis, ir = np.flatnonzero(modality == 0), np.flatnonzero(modality == 1)
    return Protocol("regdb", records, [Trial("visible->thermal", split, vis, ir),
                                       Trial("thermal->visible", split, ir, vis)])


def llcm_trials(data_dir: str | Path, trials: int = 10) -> Protocol:
    """LLCM: all test images of one modality query a gallery of one random image of the other
    modality per (identity, camera); trial t draws with seed t. Same identity + camera is discarded."""
    if trials < 1:
        raise ValueError(f"LLCM needs at least 1 trial, asked for {trials}")
    records = read_llcm(Path(data_dir))["test"]
    protocol = Protocol("llcm", records)
    for setting, q_mod in (("infrared->visible", 1), ("visible->infrared", 0)):
        query = np.array([i for i, r in enumerate(records) if r.modality == q_mod])
        groups: dict[tuple[int, int], list[int]] = {}
        for i, r in enumerate(records):
            if r.modality != q_mod:
                groups.setdefault((r.person_id, r.camera_id), []).append(i)
        for t in range(1, trials + 1):
            rng = np.random.default_rng(t)
            gallery = np.array([int(rng.choice(groups[key])) for key in sorted(groups)])
            protocol.trials.append(Trial(setting, t, query, gallery))
    return protocol
